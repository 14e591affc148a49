"""The `ocrflow` command: up, web, worker, keys, ocr, submit, status.

Parsing imports nothing but argparse (`parser`): `ocrflow --help` and a command's `--help`
answer at once, and each command imports only what it runs (`serve`, `submit`, `ocr`,
`status`)."""

import sys
from collections.abc import Sequence

from ocrflow.cli.parser import build_parser, ocr_parser

__all__ = ["main"]


INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling of it begins
        print("ocrflow: interrupted", file=sys.stderr)
        return INTERRUPTED


def _run(given: list[str]) -> int:
    if given[:1] == ["ocr"]:
        args = ocr_parser().parse_intermixed_args(given[1:])
        from ocrflow.cli.ocr import run_ocr

        return run_ocr(args)
    args = build_parser().parse_args(given)
    if args.command == "submit":
        from ocrflow.cli.submit import run_submit

        return run_submit(args)
    if args.command == "status":
        from ocrflow.cli.status import run_status

        return run_status(args)
    from ocrflow.cli.serve import run_service

    return run_service(args)
