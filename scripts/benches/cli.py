"""`ocrflow ocr` from the shell against what people run today, document by document.

For each document of a small set that looks like what users send (1-bit CCITT G4 scans at
300 dpi, 150 dpi colour JPEG pages, letter, A4 and legal paper, a phone photo, one-page and
many-page files), in one run, interleaved:

- raw:      pdftoppm at 300 dpi, then `tesseract` on each page, two at once (an image file
            goes to tesseract as it is): no turning, no levelling, text only;
- ocrflow:  `ocrflow ocr DOC OUT.pdf` (a searchable PDF, pages turned upright and levelled),
            a fresh process each time, as a shell user runs it;
- OCRmyPDF: `ocrmypdf --rotate-pages --deskew -j 2 DOC OUT.pdf` (installed into a throwaway
            venv on first use).

Every command runs with OMP_THREAD_LIMIT=1 and 2 processes. Prints each document's seconds
and the ratios, the totals against the targets (ocrflow >= 1.0x raw and >= 2x OCRmyPDF over
the set, each one-page document within 1.15x of raw), the whole set as one `ocrflow ocr DIR
OUT` command, and how long `ocrflow --help` takes. Run it through `scripts/bench cli`."""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from scripts.benches.pipeline import ensure_ocrmypdf
from tests.fixtures.corpus import bundle_pages, write_scan_pdf

PROCESSES = 2
ENV = {**os.environ, "OMP_THREAD_LIMIT": "1", "OCRFLOW_POOL_PROCESSES": str(PROCESSES)}
OCRFLOW = [sys.executable, "-m", "ocrflow"]


@dataclass
class Document:
    path: Path
    pages: int
    image_dpi: int = 0  # an image file: its resolution (OCRmyPDF asks when the file has none)
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def best(self, tool: str) -> float:
        return min(self.seconds[tool])


def build_corpus(directory: Path) -> list[Document]:
    """Seven documents, 18 pages: four one-page files (a CCITT letter, a colour JPEG page, a
    skewed legal page, a phone photo as a JPEG file) and bundles of 2, 4 and 8 pages."""
    pages = bundle_pages(18, seed=7)
    documents = []
    for name, chosen in (
        ("letter-ccitt", [0]),
        ("colour-jpeg", [2]),
        ("legal-skewed", [5]),
        ("bundle-2", [3, 4]),
        ("bundle-4", [6, 7, 8, 9]),
        ("bundle-8", list(range(10, 18))),
    ):
        path = write_scan_pdf(directory / f"{name}.pdf", [pages[n] for n in chosen])
        documents.append(Document(path, len(chosen)))
    photo = directory / "phone-photo.jpg"
    image, _ = pages[1]
    image.convert("RGB").resize((image.width // 2, image.height // 2)).save(
        photo, quality=80, dpi=(150, 150)
    )
    documents.insert(3, Document(photo, 1, image_dpi=150))
    return documents


def run_raw(document: Document, work: Path) -> None:
    if document.image_dpi:
        images = [document.path]
    else:
        prefix = work / "page"
        subprocess.run(
            ["pdftoppm", "-r", "300", "-gray", "-png", document.path, prefix], check=True, env=ENV
        )
        images = sorted(work.glob("page-*.png"))

    def tesseract(image: Path) -> None:
        out = work / image.stem
        subprocess.run(["tesseract", image, out], check=True, env=ENV, capture_output=True)

    with ThreadPoolExecutor(PROCESSES) as threads:
        list(threads.map(tesseract, images))


def run_ocrflow(document: Document, work: Path) -> None:
    command = [*OCRFLOW, "ocr", "-q", str(document.path), str(work / "out.pdf")]
    subprocess.run(command, check=True, env=ENV)


def run_ocrmypdf(binary: Path) -> Callable[[Document, Path], None]:
    def run(document: Document, work: Path) -> None:
        command = [str(binary), "-q", "--rotate-pages", "--deskew", "-j", str(PROCESSES)]
        if document.image_dpi:
            command += ["--image-dpi", str(document.image_dpi)]
        command += ["--output-type", "pdf", str(document.path), str(work / "out.pdf")]
        subprocess.run(command, check=True, env=ENV)

    return run


def timed(run: Callable[[Document, Path], None], document: Document) -> float:
    with tempfile.TemporaryDirectory(prefix="ocrflow-bench-") as work:
        started = time.perf_counter()
        run(document, Path(work))
        return time.perf_counter() - started


def help_seconds(times: int = 10) -> float:
    runs = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run([*OCRFLOW, "--help"], check=True, env=ENV, capture_output=True)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each command (the best counts)"
    )
    parser.add_argument("--skip-ocrmypdf", action="store_true", help="raw and ocrflow only")
    args = parser.parse_args()
    tools: dict[str, Callable[[Document, Path], None]] = {"raw": run_raw, "ocrflow": run_ocrflow}
    if not args.skip_ocrmypdf:
        tools["OCRmyPDF"] = run_ocrmypdf(ensure_ocrmypdf())
    with tempfile.TemporaryDirectory(prefix="ocrflow-bench-corpus-") as tmp:
        documents = build_corpus(Path(tmp))
        total_pages = sum(d.pages for d in documents)
        print(f"{len(documents)} documents, {total_pages} pages; {PROCESSES} processes each")
        for _ in range(args.repeat):
            for document in documents:
                for name, run in tools.items():
                    document.seconds.setdefault(name, []).append(timed(run, document))
        _table(documents, list(tools))
        _totals(documents, list(tools))
        with tempfile.TemporaryDirectory(prefix="ocrflow-bench-") as work:
            started = time.perf_counter()
            command = [*OCRFLOW, "ocr", "-q", tmp, str(Path(work) / "out")]
            subprocess.run(command, check=True, env=ENV)
            whole = time.perf_counter() - started
        raw = sum(d.best("raw") for d in documents)
        print(
            f"the whole set as one `ocrflow ocr DIR OUT`: {whole:.1f} s "
            f"({total_pages / whole:.2f} pages/s; {raw / whole:.2f}x raw document by document)"
        )
    print(f"`ocrflow --help`: {help_seconds():.3f} s (median of 10; target under 0.25 s)")


def _table(documents: list[Document], tools: list[str]) -> None:
    header = ["document", "pages", *(f"{tool} s" for tool in tools), "raw/ocrflow"]
    if "OCRmyPDF" in tools:
        header.append("OCRmyPDF/ocrflow")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for document in documents:
        mine = document.best("ocrflow")
        row = [document.path.name, str(document.pages)]
        row += [f"{document.best(tool):.1f}" for tool in tools]
        row.append(f"{document.best('raw') / mine:.2f}")
        if "OCRmyPDF" in tools:
            row.append(f"{document.best('OCRmyPDF') / mine:.2f}")
        print("| " + " | ".join(row) + " |")


def _totals(documents: list[Document], tools: list[str]) -> None:
    total = {tool: sum(d.best(tool) for d in documents) for tool in tools}
    pages = sum(d.pages for d in documents)
    for tool in tools:
        print(f"{tool}: {total[tool]:.1f} s over the set ({pages / total[tool]:.2f} pages/s)")
    versus_raw = total["raw"] / total["ocrflow"]
    print(f"ocrflow vs raw over the set: {versus_raw:.2f}x (target >= 1.0)")
    if "OCRmyPDF" in tools:
        versus = total["OCRmyPDF"] / total["ocrflow"]
        print(f"ocrflow vs OCRmyPDF over the set: {versus:.2f}x (target >= 2.0)")
    for document in documents:
        if document.pages == 1:
            ratio = document.best("ocrflow") / document.best("raw")
            verdict = "met" if ratio <= 1.15 else "MISSED"
            print(f"one page, {document.path.name}: ocrflow {ratio:.2f}x raw's time ({verdict})")


if __name__ == "__main__":
    main()
