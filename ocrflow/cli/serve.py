"""`ocrflow up`, `web`, `worker` and `keys`: the service's processes, and its API keys."""

import argparse
import os
import sys

from aiohttp import web

from ocrflow.cli.config import load_settings
from ocrflow.http.access import AccessLogger
from ocrflow.http.app import create_app
from ocrflow.http.auth import exposure_problem, new_api_key
from ocrflow.runtime import logs
from ocrflow.runtime.supervisor import run_up, run_web_processes
from ocrflow.worker.app import run_until_stopped


def run_service(args: argparse.Namespace) -> int:
    if args.command == "keys":
        return _new_key(args.name)
    settings = load_settings(
        args.command,
        **{
            name: getattr(args, name, None)
            for name in (
                "host",
                "port",
                "data_dir",
                "web_processes",
                "pool_processes",
                "worker_max_jobs",
            )
        },
    )
    if settings is None:
        return 2
    logs.configure(settings.log_level)
    if args.command in ("up", "web") and (problem := exposure_problem(settings)):
        print(f"ocrflow {args.command}: {problem}", file=sys.stderr)
        return 2
    if args.command == "up":
        return run_up(settings, os.environ)
    if args.command == "worker":
        return run_until_stopped(settings, burst=args.burst)
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


def _new_key(name: str) -> int:
    try:
        key, entry = new_api_key(name)
    except ValueError as exc:
        print(f"ocrflow keys new: {exc}", file=sys.stderr)
        return 2
    print(f"API key (give it to {name}; it is shown only now): {key}")
    print(f"OCRFLOW_API_KEYS entry (comma-separate several): {entry}")
    return 0
