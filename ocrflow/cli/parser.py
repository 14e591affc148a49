"""The `ocrflow` command line, as argparse parsers: every command, option and exit code.

Building them imports nothing but argparse, so `--help` answers at once."""

import argparse
from pathlib import Path
from typing import Any

# Spelled out here rather than imported, so the parser loads nothing heavy; tests/test_cli.py
# checks them against ocrflow.pipeline.options.OUTPUTS and ocrflow.jobs.records.Priority.
OUTPUTS = ("text", "json", "hocr", "csv", "pdf")
PRIORITIES = ("high", "normal", "low")

SUBMIT_EXIT_CODES = """exit codes:
  0  every file (or URL) succeeded, or was submitted when not waiting
  1  some failed or were cancelled: the summary and the manifest name them
  2  nothing to submit, a path that does not exist, or options the server refuses
  3  the server cannot be reached, or refuses the API key
  4  every file was read, and some failed their checks (the validate handler's verdict):
     the summary and the manifest name the failed rules"""
STATUS_EXIT_CODES = """exit codes:
  0  the overview was printed
  2  the server refused the key (401), or the caller is not an operator (403)
  3  the server could not be reached"""

OCR_EXIT_CODES = """exit codes:
  0    every document read (pages may come from their text layers)
  1    some documents or pages could not be read; every other document's outputs are written
  2    usage: an option refused, a path that does not exist, nothing to read, an output that
       exists (without --force) or would replace an input
  3    no document could be read: not a PDF, PNG, JPEG or TIFF, damaged, encrypted, or past a
       limit
  4    a language asked for is not installed (the message names the package that brings it)
  130  interrupted (Ctrl-C); no output is left half written"""

OCR_DESCRIPTION = """Read documents on this machine, with no server.

IN is a PDF, PNG, JPEG or TIFF file, or a directory (its documents, walked). OUT is where the
results go:
  a name ending .pdf  the searchable PDF of the one IN (add --sidecar for its text)
  a directory         for each document its outputs, named after it (scan.pdf: scan.txt,
                      scan.json, scan.hocr, scan.csv, scan.pdf), subdirectories kept
  -                   the text of the one IN, on standard output
Given several paths, the last is OUT unless -o names it; given one, OUT is a directory
IN-ocrflow beside it. Documents and their pages are spread over the pool; progress and the
summary go to standard error."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrflow", description="OCR job service: documents in, text and OCR results out."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="run everything on this machine: a private Redis (unless REDIS_URL is set), "
        "the HTTP ingress and a worker",
    )
    web_cmd = commands.add_parser(
        "web", help="run the HTTP ingress only (Redis: REDIS_URL, default 127.0.0.1:6379)"
    )
    for command in (up, web_cmd):
        command.add_argument(
            "--host",
            help="address to listen on (default 127.0.0.1; any other needs OCRFLOW_API_KEYS or "
            "OCRFLOW_JWT_*, or OCRFLOW_ALLOW_UNAUTHENTICATED=true)",
        )
        command.add_argument("--port", type=int, help="port to listen on (default 8080, or PORT)")
    up.add_argument("--data-dir", type=Path, help="where Redis data and stored files live")
    for command in (up, web_cmd):
        command.add_argument(
            "--processes",
            type=int,
            dest="web_processes",
            metavar="N",
            help="ingress processes sharing the port (default 1, or OCRFLOW_WEB_PROCESSES)",
        )
    # Internal: one ingress process of several, started by the supervisor.
    web_cmd.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    worker_cmd = commands.add_parser(
        "worker",
        help="run an OCR worker only (Redis: REDIS_URL, default 127.0.0.1:6379)",
        description="Run an arq worker: it takes runs of jobs from the queue on Redis "
        "(REDIS_URL or OCRFLOW_REDIS_URL) and reads their pages in a pool of Tesseract "
        "processes. Start more on the same Redis to scale out. Every OCRFLOW_* setting "
        "applies; these override two.",
    )
    worker_cmd.add_argument(
        "--processes",
        type=int,
        dest="pool_processes",
        metavar="N",
        help="OCR processes in the pool, one Tesseract thread each "
        "(default: one per core, or OCRFLOW_POOL_PROCESSES)",
    )
    worker_cmd.add_argument(
        "--max-jobs",
        type=int,
        dest="worker_max_jobs",
        metavar="N",
        help="documents run side by side (default: pool processes + 1, or OCRFLOW_WORKER_MAX_JOBS)",
    )
    worker_cmd.add_argument(
        "--burst",
        action="store_true",
        help="run until the queue is empty, then exit 0 (for workers started per backlog: "
        "Render jobs, Kubernetes Jobs through KEDA)",
    )
    keys_cmd = commands.add_parser("keys", help="make API keys")
    keys_sub = keys_cmd.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new_key = keys_sub.add_parser(
        "new",
        help="print a new API key (give it to the caller) and its OCRFLOW_API_KEYS entry "
        "(only a hash: the server never stores the key)",
    )
    new_key.add_argument("name", help="the caller's name: letters, digits, '.', '_', '-'")
    _add_ocr_parser(commands)
    _add_submit_parser(commands)
    status = commands.add_parser(
        "status",
        help="what a running ocrflow is doing: workers, queue, the last hour",
        description="Print a running ocrflow's workers (alive, pool, what they run, last "
        "heard), its queue (waiting per priority, running, oldest wait), its counts and the "
        "last five minutes' jobs and pages a minute: what /dashboard shows, for a terminal. "
        "Needs an operator's key when the server authenticates (OCRFLOW_ADMIN_CALLERS).",
        epilog=STATUS_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument(
        "--server",
        default="http://127.0.0.1:8080",
        help="ocrflow's base URL (default: %(default)s)",
    )
    status.add_argument("--api-key", help="sent as a bearer token (default: OCRFLOW_API_KEY)")
    status.add_argument("--json", action="store_true", help="print the overview as JSON")
    return parser


def _add_submit_parser(commands: Any) -> None:
    submit = commands.add_parser(
        "submit",
        help="submit many files or URLs to a running ocrflow, resumably",
        description="Submit files (directories are walked, globs expanded) or URLs to a "
        "running ocrflow, with bounded concurrency; follow each job, download its outputs, "
        "and write one manifest line a file. Run it again to resume: files done are skipped.",
        epilog=SUBMIT_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument("paths", nargs="*", help="files, directories (walked) or glob patterns")
    submit.add_argument(
        "--server",
        default="http://127.0.0.1:8080",
        help="ocrflow's base URL (default: %(default)s)",
    )
    submit.add_argument("--api-key", help="sent as a bearer token (default: OCRFLOW_API_KEY)")
    submit.add_argument(
        "-c", "--concurrency", type=int, default=8, help="requests at once (default: %(default)s)"
    )
    submit.add_argument("--wait", action="store_true", help="wait for every job to end")
    submit.add_argument("--out", type=Path, help="download outputs here (implies --wait)")
    submit.add_argument(
        "--report",
        type=Path,
        help="write the run as one CSV (and an HTML page beside it): a row per document with its "
        "state, verdict, failed rules and every field's value (implies --wait)",
    )
    submit.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again the files that failed for good last time (a damaged or encrypted PDF, "
        "an unsupported file); a rerun sends only those that failed for a passing fault",
    )
    submit.add_argument(
        "--outputs",
        help=f"comma-separated: {', '.join(OUTPUTS)} (default: the server's, text,json)",
    )
    submit.add_argument(
        "-l", "--languages", help="Tesseract languages, e.g. eng+deu (default: the server's)"
    )
    submit.add_argument(
        "--dpi",
        type=int,
        help="rendering resolution for PDF pages that are not scans (default: the server's, 300)",
    )
    submit.add_argument("--psm", type=int, help="Tesseract page segmentation mode (default: 3)")
    submit.add_argument(
        "--force-ocr", action="store_true", help="OCR pages that carry a text layer too"
    )
    submit.add_argument("--priority", choices=PRIORITIES, help="(default: normal)")
    submit.add_argument(
        "--handler",
        action="append",
        metavar="NAME[=PARAMS]",
        help="run a handler after recognition, with its parameters as JSON or @FILE.json; "
        "repeat for several, in the order they run (e.g. --handler fields=@spec.json "
        "--handler validate=@rules.json)",
    )
    submit.add_argument("--url-list", type=Path, help="a file of URLs, one a line ('#' comments)")
    submit.add_argument(
        "--manifest",
        type=Path,
        help="JSONL manifest (default: manifest.jsonl in --out, or "
        "./ocrflow-manifest.jsonl); a rerun skips files it lists as done",
    )


OCR_USAGE = "ocrflow ocr [options] IN [IN ...] [OUT]"


def _add_ocr_parser(commands: Any) -> None:
    # Listed here; `main` parses the command with ocr_parser, which takes options between
    # paths (`ocrflow ocr IN -q OUT`).
    commands.add_parser("ocr", help="OCR files or directories on this machine, with no server")


def ocr_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrflow ocr",
        usage=OCR_USAGE,
        description=OCR_DESCRIPTION,
        epilog=OCR_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _ocr_arguments(parser)
    return parser


def _ocr_arguments(ocr: argparse.ArgumentParser) -> None:
    ocr.add_argument("paths", nargs="+", metavar="IN [OUT]", help=argparse.SUPPRESS)
    ocr.add_argument(
        "-o", "--out", metavar="OUT", help="where the results go; every path given is then an IN"
    )
    ocr.add_argument(
        "--outputs",
        help=f"comma-separated, of {', '.join(OUTPUTS)} (default: all of them into a "
        "directory; pdf for OUT.pdf)",
    )
    ocr.add_argument(
        "--sidecar",
        metavar="FILE",
        help="also write the text of the one IN to FILE (- for standard output)",
    )
    ocr.add_argument(
        "--pages",
        metavar="LIST",
        help="read only these pages, e.g. 1-3,7,10- (the outputs hold them alone, numbered as "
        "in the document)",
    )
    ocr.add_argument(
        "-l",
        "--lang",
        help="Tesseract languages, e.g. eng+deu (default: OCRFLOW_OCR_LANGUAGES, or eng)",
    )
    ocr.add_argument(
        "--dpi",
        type=int,
        default=300,
        help="resolution for PDF pages that are not scans; scans are read at their own "
        "(default: 300)",
    )
    ocr.add_argument(
        "--psm", type=int, default=3, help="Tesseract page segmentation mode (default: 3)"
    )
    text = ocr.add_mutually_exclusive_group()
    text.add_argument(
        "--skip-text",
        action="store_true",
        help="take a page that has a text layer from it, unread (the default)",
    )
    text.add_argument("--force-ocr", action="store_true", help="read every page, text layer or not")
    for flag, what in (
        ("rotate-pages", "turn pages upright (Tesseract's orientation detection)"),
        ("deskew", "level pages skewed by a degree or more"),
        ("rescale", "read large text scaled down to the size Tesseract reads at"),
    ):
        ocr.add_argument(
            f"--{flag}",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"{what} (default: on)",
        )
    ocr.add_argument(
        "-j",
        "--jobs",
        "--processes",
        type=int,
        dest="processes",
        metavar="N",
        help="OCR processes, one Tesseract thread each (default: one per core, or "
        "OCRFLOW_POOL_PROCESSES); never more than there are pages to read (a lone page "
        "to turn upright: two, one finding its orientation while the other reads it)",
    )
    ocr.add_argument("-f", "--force", action="store_true", help="replace an OUT file that exists")
    ocr.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but errors (no progress bar)"
    )
