"""Pipeline benchmark: ocrflow vs OCRmyPDF vs raw tesseract on the same generated scans.

Prints pages/s, their ratios and the character error rate (CER) per rotation for each, the
text-layer read rate, and the peak memory of a 10-page and a 300-page document. Run it through
`scripts/bench pipeline`, which sets up first.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from pypdf import PdfReader, PdfWriter
from rapidfuzz.distance import Levenshtein

from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import OcrOptions, Runtime
from ocrflow.pipeline.result import Line, PageResult, Word
from ocrflow.pipeline.searchable import write_searchable_pdf
from ocrflow.runtime.pool import OcrPool
from ocrflow.worker.recognition import run_document
from tests.fixtures.corpus import Style, available_fonts, page_image, scan_page

ROTATIONS = (0, 90, 180, 270)
OCRMYPDF_VENV = Path.home() / ".cache" / "ocrflow-bench" / "ocrmypdf-venv"
SINGLE_THREAD = {**os.environ, "OMP_THREAD_LIMIT": "1"}


@dataclass
class Corpus:
    directory: Path
    pdfs: dict[int, Path] = field(default_factory=dict)  # rotation -> image-only PDF
    pngs: dict[int, list[Path]] = field(default_factory=dict)
    truths: dict[int, list[str]] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return sum(len(t) for t in self.truths.values())


def build_corpus(directory: Path, per_rotation: int) -> Corpus:
    corpus = Corpus(directory)
    fonts = available_fonts() or [""]
    seed = 0
    for rotation in ROTATIONS:
        images, truths, pngs = [], [], []
        for n in range(per_rotation):
            seed += 1
            style = Style(
                rotation=rotation,
                skew=(-2.5, 1.5, 0.0, 3.0)[seed % 4],
                columns=1 + seed % 2,
                font_size=(30, 34, 38)[seed % 3],
                font=fonts[seed % len(fonts)],
                noise=seed % 2 == 0,
            )
            page = scan_page(seed, style)
            png = directory / f"r{rotation}-{n}.png"
            page.image.save(png, dpi=(300, 300))
            images.append(page.image)
            truths.append(page.truth)
            pngs.append(png)
        pdf = directory / f"r{rotation}.pdf"
        images[0].save(pdf, save_all=True, append_images=images[1:], resolution=300)
        corpus.pdfs[rotation], corpus.pngs[rotation], corpus.truths[rotation] = pdf, pngs, truths
    return corpus


def cer(found: list[str], truth: list[str]) -> float:
    norm = [(" ".join(f.split()), " ".join(t.split())) for f, t in zip(found, truth, strict=True)]
    return sum(Levenshtein.distance(f, t) for f, t in norm) / sum(len(t) for _, t in norm)


@dataclass
class Run:
    name: str
    seconds: float = 0.0  # wall time for the whole batch
    pages: int = 0
    cer: dict[int, float] = field(default_factory=dict)
    page_seconds: dict[int, float] = field(default_factory=dict)  # mean core-seconds per page

    @property
    def rate(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0


def run_ocrflow(corpus: Corpus, processes: int, engine: str) -> Run:
    """All documents at once through one pool, as a worker running several jobs would."""
    run = Run(f"ocrflow ({engine})")
    pool = OcrPool(processes)
    options, runtime = OcrOptions(), Runtime(engine=engine)  # type: ignore[arg-type]
    try:
        asyncio.run(_warm(pool, corpus.directory, runtime))
        with tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            results = asyncio.run(_all_documents(pool, corpus, Path(work), options, runtime))
            run.seconds = time.perf_counter() - started
    finally:
        pool.close()
    for rotation, pages in results.items():
        run.pages += len(pages)
        run.cer[rotation] = cer([p.text for p in pages], corpus.truths[rotation])
        run.page_seconds[rotation] = statistics.mean(p.seconds for p in pages)
    return run


async def _all_documents(
    pool: OcrPool, corpus: Corpus, work: Path, options: OcrOptions, runtime: Runtime
) -> dict[int, list[PageResult]]:
    async def one(rotation: int, pdf: Path) -> tuple[int, list[PageResult]]:
        workdir = work / str(rotation)
        workdir.mkdir()
        return rotation, await run_document(
            pool, pdf, MediaType.PDF, workdir, options, runtime, _quiet
        )

    return dict(await asyncio.gather(*(one(r, pdf) for r, pdf in corpus.pdfs.items())))


async def _quiet(done: int, total: int, page: object) -> None:
    return None


async def _warm(pool: OcrPool, directory: Path, runtime: Runtime) -> None:
    """Start every pool process (and load its model) before the clock runs, as a worker would."""
    small = directory / "warm.png"
    page_image(["warm up"]).save(small, dpi=(300, 300))
    with tempfile.TemporaryDirectory() as work:
        options = OcrOptions()
        tasks = [
            run_document(pool, small, MediaType.PNG, Path(work), options, runtime, _quiet)
            for _ in range(pool.processes * 2)
        ]
        await asyncio.gather(*tasks)


def ensure_ocrmypdf() -> Path:
    binary = OCRMYPDF_VENV / "bin" / "ocrmypdf"
    if not binary.exists():
        print("installing OCRmyPDF into a throwaway venv at", OCRMYPDF_VENV, file=sys.stderr)
        venv.create(OCRMYPDF_VENV, with_pip=True)
        subprocess.run([OCRMYPDF_VENV / "bin" / "pip", "install", "-q", "ocrmypdf"], check=True)
    return binary


def run_ocrmypdf(corpus: Corpus, processes: int) -> Run:
    """One PDF of every page, so OCRmyPDF keeps all its workers busy too."""
    binary = ensure_ocrmypdf()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    run = Run(f"OCRmyPDF {version}")
    merged, writer = corpus.directory / "all.pdf", PdfWriter()
    for pdf in corpus.pdfs.values():
        writer.append(str(pdf))
    writer.write(merged)
    sidecar = corpus.directory / "ocrmypdf.txt"
    command = [
        binary,
        "-q",
        "-j",
        str(processes),
        "--force-ocr",
        "--rotate-pages",
        "--deskew",
        "--output-type",
        "none",
        "--sidecar",
        sidecar,
        merged,
        "-",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=SINGLE_THREAD, stdout=subprocess.DEVNULL)
    run.seconds = time.perf_counter() - started
    texts = sidecar.read_text().split("\f")
    for rotation, truths in corpus.truths.items():
        mine, texts = texts[: len(truths)], texts[len(truths) :]
        run.pages += len(mine)
        run.cer[rotation] = cer(mine, truths)
    return run


def run_tesseract(corpus: Corpus, processes: int) -> Run:
    """The tesseract binary on every PNG, one process per core: no orientation, no deskew."""
    run = Run("tesseract (raw)")

    def one(png: Path) -> tuple[str, float]:
        base, started = png.with_suffix(""), time.perf_counter()
        subprocess.run(
            ["tesseract", png, base, "-l", "eng"],
            check=True,
            env=SINGLE_THREAD,
            capture_output=True,
        )
        return base.with_suffix(".txt").read_text(), time.perf_counter() - started

    pngs = [(rotation, png) for rotation, files in corpus.pngs.items() for png in files]
    started = time.perf_counter()
    with ThreadPoolExecutor(processes) as threads:
        done = list(threads.map(one, [png for _, png in pngs]))
    run.seconds, run.pages = time.perf_counter() - started, len(done)
    for rotation in ROTATIONS:
        mine = [result for (r, _), result in zip(pngs, done, strict=True) if r == rotation]
        run.cer[rotation] = cer([text for text, _ in mine], corpus.truths[rotation])
        run.page_seconds[rotation] = statistics.mean(seconds for _, seconds in mine)
    return run


def text_layer_rate(
    directory: Path, pages: int, processes: int, font_size: int
) -> tuple[float, int]:
    """Pages per second through the runner for a PDF whose pages all carry a text layer, and
    the words on each page."""
    unique = []
    for seed in range(10):
        page = scan_page(1000 + seed, Style(columns=1 + seed % 2, font_size=font_size))
        unique.append((page, _known_result(seed + 1, page.words, page.image.size)))
    images = directory / "text-images.pdf"
    unique[0][0].image.save(
        images, save_all=True, append_images=[p.image for p, _ in unique[1:]], resolution=300
    )
    searchable = directory / "text-10.pdf"
    write_searchable_pdf([r for _, r in unique], images, MediaType.PDF, searchable)
    reader, writer = PdfReader(searchable), PdfWriter()
    for n in range(pages):
        writer.add_page(reader.pages[n % len(reader.pages)])
    long_pdf = directory / f"text-{pages}-{font_size}.pdf"
    writer.write(long_pdf)
    pool, runtime = OcrPool(processes), Runtime(max_pages=pages)
    try:
        asyncio.run(_warm(pool, directory, runtime))
        with tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            read = asyncio.run(
                run_document(
                    pool, long_pdf, MediaType.PDF, Path(work), OcrOptions(), runtime, _quiet
                )
            )
            seconds = time.perf_counter() - started
    finally:
        pool.close()
    assert [p.method for p in read] == ["text-layer"] * pages, "text-layer pages were OCRed"
    return pages / seconds, sum(page.words for page in read) // pages


def _known_result(
    number: int, words: tuple[tuple[str, tuple[int, int, int, int]], ...], size: tuple[int, int]
) -> PageResult:
    lines = tuple(Line(bbox=box, words=(Word(text, 100.0, box),)) for text, box in words)
    return PageResult(
        number=number,
        method="ocr",
        width=size[0],
        height=size[1],
        dpi=300,
        text="",
        lines=lines,
        source_size=size,
    )


@contextmanager
def peak_memory() -> Iterator[Callable[[], int]]:
    """Peak memory of this process and all its children, sampled every 20 ms.

    Proportional set size, not RSS: a child forked to start poppler or tesseract briefly
    shows its parent's whole RSS, which RSS would count twice.
    """
    me, peak, stop = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child may exit while we look
                    total += proc.memory_full_info().pss
            peak[0] = max(peak[0], total)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        thread.join()


def memory_for(directory: Path, pages: int, processes: int) -> int:
    lines = ["Memory stays flat as documents grow", "page after page after page"]
    pdf = directory / f"memory-{pages}.pdf"
    image = page_image(lines)
    image.save(pdf, save_all=True, append_images=[image] * (pages - 1), resolution=300)
    pool = OcrPool(processes)
    try:
        with tempfile.TemporaryDirectory() as work, peak_memory() as peak:
            runtime = Runtime(max_pages=pages)
            asyncio.run(
                run_document(pool, pdf, MediaType.PDF, Path(work), OcrOptions(), runtime, _quiet)
            )
            return peak()
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2, help="scanned pages per rotation")
    parser.add_argument("-j", "--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-ocrmypdf", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrflow-bench-") as tmp:
        directory = Path(tmp)
        corpus = build_corpus(directory, args.pages)
        print(
            f"corpus: {corpus.pages} scanned letter pages, {args.pages} per rotation; "
            f"{args.processes} processes\n"
        )
        runs = [
            run_ocrflow(corpus, args.processes, "tesserocr"),
            run_ocrflow(corpus, args.processes, "tesseract"),
            run_tesseract(corpus, args.processes),
        ]
        if not args.skip_ocrmypdf:
            runs.append(run_ocrmypdf(corpus, args.processes))
        report(runs)
        for font_size in (36, 56):
            rate, words = text_layer_rate(directory, 300, args.processes, font_size)
            print(f"text-layer pages: {rate:.0f} pages/s (300 letter pages of ~{words} words)")
        if not args.skip_memory:
            small, large = (memory_for(directory, n, args.processes) for n in (10, 300))
            print(
                f"peak memory: 10 pages {small / 2**20:.0f} MiB, 300 pages "
                f"{large / 2**20:.0f} MiB, ratio {large / small:.2f}"
            )


def report(runs: list[Run]) -> None:
    base = runs[0]
    header = "".join(f"{f'CER {r}':>10}" for r in ROTATIONS)
    print(f"{'engine':<28}{'pages/s':>9}{'ocrflow is':>12}{header}{'s/page upright':>16}")
    for run in runs:
        ratio = base.rate / run.rate if run.rate else float("nan")
        cers = "".join(f"{run.cer.get(r, float('nan')):>10.4f}" for r in ROTATIONS)
        upright = f"{run.page_seconds[0]:>16.2f}" if 0 in run.page_seconds else f"{'-':>16}"
        print(f"{run.name:<28}{run.rate:>9.3f}{ratio:>11.2f}x{cers}{upright}")
    print(
        "(pages/s: every page of the batch, wall time; s/page upright: mean time one core spent "
        "on an upright page; raw tesseract reads turned pages as noise, fast and wrong)"
    )


if __name__ == "__main__":
    main()
