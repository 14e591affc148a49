"""`ocrflow submit`: many files or URLs to a running service (see ocrflow.client.bulk)."""

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ocrflow.cli.config import load_settings
from ocrflow.client.bulk import Plan, read_url_list, submit_many


def run_submit(args: argparse.Namespace) -> int:
    settings = load_settings("submit")
    if settings is None:
        return 2
    fields = {
        name: str(value)
        for name in ("outputs", "languages", "dpi", "psm", "priority")
        if (value := getattr(args, name)) is not None
    }
    if args.force_ocr:
        fields["force_ocr"] = "true"
    if args.handler:
        try:
            fields["handlers"] = json.dumps(handler_requests(args.handler))
        except ValueError as exc:
            print(f"ocrflow submit: --handler: {exc}", file=sys.stderr)
            return 2
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
        wait=args.wait or args.out is not None or args.report is not None,
        out=args.out,
        fields=fields,
        manifest=manifest,
        retry_failed=args.retry_failed,
        report=args.report,
    )
    return asyncio.run(submit_many(plan, args.paths, urls))


def handler_requests(given: list[str]) -> dict[str, Any]:
    """`NAME`, `NAME={...}` or `NAME=@params.json`, in order: name -> parameters."""
    requests: dict[str, Any] = {}
    for item in given:
        name, _, params = item.partition("=")
        if not name:
            raise ValueError(f"{item!r} names no handler")
        if params.startswith("@"):
            try:
                params = Path(params[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"{params[1:]}: {exc.strerror}") from exc
        try:
            value = json.loads(params) if params else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"the parameters of {name} are not JSON: {exc.msg}") from exc
        if not isinstance(value, dict):
            raise ValueError(f"the parameters of {name} must be a JSON object")
        requests[name] = value
    return requests
