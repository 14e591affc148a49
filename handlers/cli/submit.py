"""`ocrflow submit`: many files or URLs to a running service (see ocrflow.handlers.client.bulk)."""

import argparse
import asyncio
import sys
from pathlib import Path

from ocrflow.handlers.cli.config import load_settings
from ocrflow.handlers.client.bulk import Plan, read_url_list, submit_many


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
    return asyncio.run(submit_many(plan, args.paths, urls))
