"""`ocrflow ocr`: documents read on this machine, spread over one pool, with no server.

The pool's first process starts, and loads Tesseract's models, while this process is still
importing what it reads documents with (`reading`): a one-page document pays for one start."""

import argparse
import asyncio
import sys

from pydantic import ValidationError

from ocrflow.cli.config import load_settings
from ocrflow.cli.targets import Target, UsageError, parse_pages, plan_targets, split_paths
from ocrflow.pipeline.document import count_pages
from ocrflow.pipeline.errors import PipelineError, UnsupportedLanguage
from ocrflow.pipeline.media import SNIFF_BYTES, sniff
from ocrflow.pipeline.options import OUTPUTS, OcrOptions, Output, check_languages
from ocrflow.runtime.pool import OcrPool
from ocrflow.settings import Settings

USAGE, LANGUAGE, INTERRUPTED = 2, 4, 130


def run_ocr(args: argparse.Namespace) -> int:
    settings = load_settings("ocr", pool_processes=args.processes)
    if settings is None:
        return USAGE
    try:
        inputs, out = split_paths(args.paths, args.out)
        outputs = _outputs(args.outputs)
        targets = plan_targets(inputs, out, outputs, args.sidecar, force=args.force)
        pages = parse_pages(args.pages, settings.max_pages) if args.pages else None
        options = _options(args, targets, settings)
        check_languages(options)
    except UsageError as exc:
        return _fail(str(exc), USAGE)
    except UnsupportedLanguage as exc:
        return _fail(f"{exc.code}: {exc.message}", LANGUAGE)
    # The first process starts, and loads Tesseract, now; the others as work arrives (a lone
    # page's second process starts now too: it finds the page's orientation).
    size = pool_size(targets, pages, settings, turning=options.rotate)
    pool = OcrPool(size, memory_limit=settings.pool_memory_limit)
    for _ in range(2 if size == 2 and len(targets) == 1 else 1):
        pool.warm(settings.ocr_engine, options.tesseract_lang)
    from ocrflow.cli import reading

    progress = reading.Progress(len(targets), quiet=args.quiet, bar=sys.stderr.isatty())
    try:
        results = asyncio.run(reading.read_all(pool, targets, options, pages, settings, progress))
    except KeyboardInterrupt:
        progress.end()
        return _fail("interrupted; outputs not yet written were left out", INTERRUPTED)
    finally:
        pool.close()
    progress.end()
    return reading.report(results, progress, quiet=args.quiet)


def pool_size(
    targets: list[Target], pages: frozenset[int] | None, settings: Settings, *, turning: bool
) -> int:
    """No more processes than there are pages to read: a one-page document starts one, or two
    when its page is to be turned upright (one finds which way up it is while the other reads
    it as it is). Counted only when there are fewer documents than processes (each takes a
    process)."""
    most = settings.pool_processes
    if len(targets) >= most:
        return most
    total = 0
    for target in targets:
        try:
            with target.source.open("rb") as handle:
                media_type = sniff(handle.read(SNIFF_BYTES))
            count = count_pages(target.source, media_type, timeout=settings.page_timeout)
        except (PipelineError, OSError):
            count = 1  # read, and refused, in the pool like any other
        total += len(pages & set(range(1, count + 1))) if pages is not None else count
    if total == 1 and turning and len(targets) == 1:
        return min(most, 2)
    return max(1, min(most, total))


def _outputs(given: str | None) -> list[Output] | None:
    if given is None:
        return None
    names = [name.strip() for name in given.split(",") if name.strip()]
    chosen = [name for name in OUTPUTS if name in names]
    if not names or len(chosen) < len(set(names)):
        raise UsageError(f"--outputs {given}: choose from {', '.join(OUTPUTS)}")
    return sorted(chosen, key=names.index)


def _languages(given: str) -> tuple[str, ...]:
    return tuple(part for part in given.replace(",", "+").split("+") if part)


def _options(args: argparse.Namespace, targets: list[Target], settings: Settings) -> OcrOptions:
    try:
        return OcrOptions(
            languages=_languages(args.lang) if args.lang else settings.ocr_languages,
            outputs=tuple(dict.fromkeys(name for t in targets for name in t.files)),
            dpi=args.dpi,
            psm=args.psm,
            force_ocr=args.force_ocr,
            rotate=args.rotate_pages,
            deskew=args.deskew,
            rescale=args.rescale,
        )
    except ValidationError as exc:
        flags = {"languages": "--lang", "dpi": "--dpi", "psm": "--psm"}
        said = "; ".join(
            f"{flags.get(str(error['loc'][0]), error['loc'][0])}: {error['msg']}"
            for error in exc.errors()
        )
        raise UsageError(said) from None


def _fail(message: str, code: int) -> int:
    print(f"ocrflow ocr: {message}", file=sys.stderr)
    return code
