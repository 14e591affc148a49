"""The `ocrflow` command: up, web, worker, keys, ocr, submit."""

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ocrflow.handlers.client.bulk import Plan, read_url_list, submit_many
from ocrflow.handlers.http.access import AccessLogger
from ocrflow.handlers.http.app import create_app
from ocrflow.handlers.http.auth import exposure_problem, new_api_key
from ocrflow.handlers.jobs.records import Priority
from ocrflow.handlers.runtime import logs
from ocrflow.handlers.runtime.pool import OcrPool
from ocrflow.handlers.runtime.supervisor import run_up, run_web_processes
from ocrflow.handlers.settings import Settings
from ocrflow.handlers.worker.app import run_until_stopped
from ocrflow.handlers.worker.runner import run_document
from ocrflow.pipeline.errors import PipelineError
from ocrflow.pipeline.media import SNIFF_BYTES, sniff
from ocrflow.pipeline.options import OUTPUTS, OcrOptions, Output, check_languages
from ocrflow.pipeline.outputs import write_outputs
from ocrflow.pipeline.result import PageResult

log = logging.getLogger("ocrflow")


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
    return parser


SUBMIT_EXIT_CODES = """exit codes:
  0  every file (or URL) succeeded, or was submitted when not waiting
  1  some failed or were cancelled: the summary and the manifest name them
  2  nothing to submit, a path that does not exist, or options the server refuses
  3  the server cannot be reached, or refuses the API key"""


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
        "--outputs",
        help="comma-separated: text, json, hocr, csv, pdf (default: the server's, text,json)",
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
    submit.add_argument("--priority", choices=[p.value for p in Priority], help="(default: normal)")
    submit.add_argument("--url-list", type=Path, help="a file of URLs, one a line ('#' comments)")
    submit.add_argument(
        "--manifest",
        type=Path,
        help="JSONL manifest (default: manifest.jsonl in --out, or "
        "./ocrflow-manifest.jsonl); a rerun skips files it lists as done",
    )


def _add_ocr_parser(commands: Any) -> None:
    ocr = commands.add_parser("ocr", help="OCR one file locally, with no server")
    ocr.add_argument("file", type=Path, help="a PDF, PNG, JPEG or TIFF file")
    ocr.add_argument("-o", "--out", type=Path, help="output directory (default: FILE-ocrflow)")
    ocr.add_argument("-l", "--lang", default="eng", help="Tesseract languages, e.g. eng+deu")
    ocr.add_argument("--outputs", default=",".join(OUTPUTS), help="comma-separated outputs")
    ocr.add_argument("--dpi", type=int, default=300, help="rendering resolution for PDF pages")
    ocr.add_argument("--psm", type=int, default=3, help="Tesseract page segmentation mode")
    ocr.add_argument("--force-ocr", action="store_true", help="OCR pages with a text layer too")
    ocr.add_argument("-j", "--processes", type=int, help="pool processes (default: all cores)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {
        name: value
        for name in (
            "host",
            "port",
            "data_dir",
            "web_processes",
            "pool_processes",
            "worker_max_jobs",
        )
        if (value := getattr(args, name, None)) is not None
    }
    if args.command == "keys":
        return _new_key(args.name)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            field = "_".join(str(part) for part in error["loc"])
            # Fields read under an alias (OCRFLOW_PORT, PORT, REDIS_URL) report the alias.
            name = field if field.isupper() else "OCRFLOW_" + field.upper()
            print(f"ocrflow: {name}: {error['msg']}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    if args.command in ("up", "web") and (problem := exposure_problem(settings)):
        print(f"ocrflow {args.command}: {problem}", file=sys.stderr)
        return 2
    if args.command == "up":
        return run_up(settings, os.environ)
    if args.command == "web":
        if settings.web_processes > 1 and not args.single:
            return run_web_processes(settings, os.environ)
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            print=None,
            reuse_port=settings.web_processes > 1,
            access_log_class=AccessLogger,
            keepalive_timeout=settings.idle_timeout,
        )
        return 0
    if args.command == "worker":
        return run_until_stopped(settings, burst=args.burst)
    if args.command == "submit":
        return asyncio.run(_submit(args, settings))
    try:
        return asyncio.run(ocr_file(args, settings))
    except (PipelineError, ValidationError, OSError) as exc:
        print(f"ocrflow ocr: {_explain(exc)}", file=sys.stderr)
        return 2


def _new_key(name: str) -> int:
    try:
        key, entry = new_api_key(name)
    except ValueError as exc:
        print(f"ocrflow keys new: {exc}", file=sys.stderr)
        return 2
    print(f"API key (give it to {name}; it is shown only now): {key}")
    print(f"OCRFLOW_API_KEYS entry (comma-separate several): {entry}")
    return 0


def _explain(exc: Exception) -> str:
    if isinstance(exc, PipelineError):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


async def _submit(args: argparse.Namespace, settings: Settings) -> int:
    fields = {
        name: str(value)
        for name in ("outputs", "languages", "dpi", "psm", "priority")
        if (value := getattr(args, name)) is not None
    }
    if args.force_ocr:
        fields["force_ocr"] = "true"
    manifest = args.manifest or (args.out or Path()) / (
        "manifest.jsonl" if args.out else "ocrflow-manifest.jsonl"
    )
    try:
        urls = read_url_list(args.url_list) if args.url_list else []
    except OSError as exc:
        print(f"ocrflow submit: {args.url_list}: {exc.strerror}", file=sys.stderr)
        return 2
    plan = Plan(
        server=args.server,
        api_key=args.api_key or settings.api_key,
        concurrency=max(1, args.concurrency),
        wait=args.wait or args.out is not None,
        out=args.out,
        fields=fields,
        manifest=manifest,
    )
    return await submit_many(plan, args.paths, urls)


async def ocr_file(args: argparse.Namespace, settings: Settings) -> int:
    options = OcrOptions(
        languages=tuple(args.lang.replace(",", "+").split("+")),
        outputs=tuple(name.strip() for name in args.outputs.split(",") if name.strip()),
        dpi=args.dpi,
        psm=args.psm,
        force_ocr=args.force_ocr,
    )
    check_languages(options)
    with args.file.open("rb") as handle:
        media_type = sniff(handle.read(SNIFF_BYTES))
    out_dir: Path = args.out or Path(f"{args.file.stem}-ocrflow")
    out_dir.mkdir(parents=True, exist_ok=True)
    pool = OcrPool(
        args.processes or settings.pool_processes, memory_limit=settings.pool_memory_limit
    )
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="ocrflow-") as workdir:
            pages = await run_document(
                pool,
                args.file.resolve(),
                media_type,
                Path(workdir),
                options,
                settings.runtime,
                _progress_bar(sys.stderr.isatty()),
            )
    finally:
        pool.close()
    files = write_outputs(
        pages, out_dir, options.outputs, source=args.file.resolve(), media_type=media_type
    )
    _print_summary(pages, time.perf_counter() - started, files)
    return 0


def _progress_bar(enabled: bool) -> Any:
    async def show(done: int, total: int, pages: Sequence[PageResult]) -> None:
        if enabled and total:
            filled = int(30 * done / total)
            bar = "#" * filled + "-" * (30 - filled)
            end = "\n" if done == total else ""
            print(f"\r[{bar}] {done}/{total} pages", end=end, file=sys.stderr, flush=True)

    return show


def _print_summary(pages: list[PageResult], seconds: float, files: dict[Output, Path]) -> None:
    failed = [page for page in pages if page.error]
    print(f"{len(pages)} pages in {seconds:.1f} s ({len(pages) / seconds:.2f} pages/s)")
    for page in failed:
        assert page.error is not None
        print(f"page {page.number} failed: {page.error.code}: {page.error.message}")
    for name, path in files.items():
        print(f"{name}: {path}")
