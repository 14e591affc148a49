"""`ocrflow ocr` as a shell user meets it: its shapes, its exit codes, and a quick start."""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pypdf import PdfReader

from ocrflow.cli.ocr import pool_size
from ocrflow.cli.parser import OUTPUTS, PRIORITIES
from ocrflow.cli.targets import Target
from ocrflow.jobs.records import Priority
from ocrflow.pipeline import options
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import OcrOptions, Runtime
from ocrflow.pipeline.result import PageResult
from ocrflow.runtime.pool import OcrPool
from ocrflow.settings import Settings
from ocrflow.worker.recognition import run_document
from tests.support import page_image, words, write_image_pdf, write_png

PAGES = [["Alpha page one"], ["Beta page two"], ["Gamma page three"]]


def ocr(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocrflow", "ocr", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_parser_loads_nothing_heavy_and_its_choices_are_the_pipelines() -> None:
    """`ocrflow --help` answers at once because building the parser imports no server stack."""
    probe = (
        "import sys; from ocrflow.cli.parser import build_parser; build_parser(); "
        "print(sorted(m for m in ('aiohttp', 'pydantic', 'redis', 'arq', 'PIL', 'aioboto3') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
    assert OUTPUTS == options.OUTPUTS
    assert tuple(p.value for p in Priority) == PRIORITIES


def test_a_pdf_into_a_directory_then_only_some_pages(tmp_path: Path) -> None:
    pdf = write_image_pdf(tmp_path / "scan.pdf", PAGES)
    run = ocr(pdf, tmp_path / "out", "--outputs", "text,json,csv")
    assert run.returncode == 0, run.stderr
    assert "1 of 1 document read (3 pages)" in run.stderr
    assert words((tmp_path / "out" / "scan.txt").read_text()) == words(
        "Alpha page one Beta page two Gamma page three"
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "scan.csv",
        "scan.json",
        "scan.txt",
    ]
    some = ocr(pdf, "-o", tmp_path / "some", "--outputs", "json,pdf", "--pages", "1,3-")
    assert some.returncode == 0, some.stderr
    result = json.loads((tmp_path / "some" / "scan.json").read_text())
    assert [page["number"] for page in result["pages"]] == [1, 3]
    assert words(" ".join(page["text"] for page in result["pages"])) == words(
        "Alpha page one Gamma page three"
    )
    # The searchable PDF holds the chosen pages alone, each with its text.
    kept = PdfReader(tmp_path / "some" / "scan.pdf")
    assert [words(page.extract_text()) for page in kept.pages] == [
        words("Alpha page one"),
        words("Gamma page three"),
    ]
    none = ocr(pdf, tmp_path / "none", "--pages", "9-12")
    assert none.returncode == 2, none.stderr
    assert "scan.pdf: it has 3 pages, none of those --pages asks for" in none.stderr
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())


def test_a_directory_in_keeps_its_layout_and_a_searchable_pdf_with_its_text_out(
    tmp_path: Path,
) -> None:
    scans = tmp_path / "scans"
    (scans / "sub").mkdir(parents=True)
    write_png(scans / "a.png", ["First letter"])
    write_png(scans / "sub" / "b.png", ["Second letter"])
    (scans / "notes.txt").write_text("not a document")
    run = ocr(scans, "-q", tmp_path / "out", "--outputs", "text")  # options between paths
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # -q: nothing but errors
    assert words((tmp_path / "out" / "a.txt").read_text()) == words("First letter")
    assert words((tmp_path / "out" / "sub" / "b.txt").read_text()) == words("Second letter")
    assert not (tmp_path / "out" / "notes.txt").exists()

    single = ocr(scans / "a.png", tmp_path / "a.pdf", "--sidecar", "-")
    assert single.returncode == 0, single.stderr
    assert words(single.stdout) == words("First letter")
    assert "First letter" in PdfReader(tmp_path / "a.pdf").pages[0].extract_text()
    to_stdout = ocr(scans / "sub" / "b.png", "-", "-q")
    assert (to_stdout.returncode, words(to_stdout.stdout)) == (0, words("Second letter"))


def test_usage_mistakes_exit_2_and_leave_nothing_behind(tmp_path: Path) -> None:
    png = write_png(tmp_path / "page.png", ["Kept as it was"])
    pdf = write_image_pdf(tmp_path / "scan.pdf", PAGES[:1])
    taken = tmp_path / "taken.pdf"
    taken.write_bytes(b"someone's file")
    cases = {
        "no such file": ocr(tmp_path / "missing.pdf", tmp_path / "out"),
        "--pages 0": ocr(png, tmp_path / "out", "--pages", "0"),
        "--pages x": ocr(png, tmp_path / "out", "--pages", "2-x"),
        "exists": ocr(png, taken),
        "over the input": ocr(pdf, tmp_path, "--outputs", "text,pdf", "--force"),
        "two into a pdf": ocr(png, png, tmp_path / "both.pdf"),
        "--dpi 10": ocr(png, tmp_path / "out", "--dpi", "10"),
        "--outputs": ocr(png, tmp_path / "out", "--outputs", "text,docx"),
    }
    for case, run in cases.items():
        assert run.returncode == 2, (case, run.stderr)
        assert run.stderr.startswith("ocrflow ocr: "), (case, run.stderr)
        assert "Traceback" not in run.stderr, case
    assert "missing.pdf: no such file or directory" in cases["no such file"].stderr
    assert "give --force" in cases["exists"].stderr
    assert "would replace it" in cases["over the input"].stderr
    assert taken.read_bytes() == b"someone's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.png", "scan.pdf", "taken.pdf"]


def test_exit_codes_for_unreadable_documents_partial_runs_and_missing_languages(
    tmp_path: Path,
) -> None:
    good = write_png(tmp_path / "good.png", ["Readable page"])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\nnothing else")
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")

    unreadable = ocr(table, tmp_path / "none")
    assert unreadable.returncode == 3, unreadable.stderr
    assert "table.csv: unsupported_media_type" in unreadable.stderr

    partial = ocr(good, bad, "-o", tmp_path / "out", "--outputs", "text")
    assert partial.returncode == 1, partial.stderr
    assert "bad.pdf: invalid_pdf" in partial.stderr
    assert words((tmp_path / "out" / "good.txt").read_text()) == words("Readable page")
    assert not (tmp_path / "out" / "bad.txt").exists()

    language = ocr(good, tmp_path / "lang", "-l", "eng+klingon")
    assert language.returncode == 4, language.stderr
    assert "apt-get install tesseract-ocr-klingon" in language.stderr
    assert not (tmp_path / "lang").exists()


def test_the_pool_starts_no_more_processes_than_there_are_pages(tmp_path: Path) -> None:
    one = write_png(tmp_path / "one.png", ["One page"])
    three = write_image_pdf(tmp_path / "three.pdf", PAGES)
    settings = Settings(pool_processes=4)

    def target(path: Path) -> Target:
        return Target(path, path.name, {"text": tmp_path / f"{path.stem}.txt"})

    def size(targets: list[Target], pages: frozenset[int] | None, turning: bool = False) -> int:
        return pool_size(targets, pages, settings, turning=turning)

    assert size([target(one)], None) == 1
    assert size([target(three)], None) == 3
    assert size([target(three)], frozenset({2})) == 1
    assert size([target(one), target(three)], None) == 4
    assert size([target(one)] * 4, None) == 4  # not counted: each takes one
    # A lone page to turn upright: one process finds its orientation while another reads it.
    assert size([target(one)], None, turning=True) == 2
    assert size([target(three)], frozenset({2}), turning=True) == 2
    assert size([target(one), target(one)], None, turning=True) == 2  # one page each
    assert size([target(three)], None, turning=True) == 3


async def test_a_lone_page_read_beside_its_orientation_is_read_as_in_turn(tmp_path: Path) -> None:
    """Read as it is while its orientation is found elsewhere: an upright page keeps that
    reading; a page scanned sideways is read again, turned, and comes out as reading it turned
    first would give."""
    asked = OcrOptions(outputs=("text",))
    lines = [f"The quick brown fox jumps over the lazy dog, line {n}" for n in range(12)]
    upright = write_png(tmp_path / "upright.png", lines, font_size=48)
    sideways = tmp_path / "sideways.png"
    page_image(lines, font_size=48).rotate(90, expand=True).save(sideways, dpi=(300, 300))
    pool = OcrPool(2)
    try:
        for path in (upright, sideways):
            found = {}
            for speculate in (True, False):
                workdir = tmp_path / f"{path.stem}-{speculate}"
                workdir.mkdir()
                pages = await run_document(
                    pool,
                    path,
                    MediaType.PNG,
                    workdir,
                    asked,
                    Runtime(),
                    _nothing,
                    speculate=speculate,
                )
                found[speculate] = pages
            assert found[True] == [
                replace(page, seconds=found[True][0].seconds) for page in found[False]
            ]
            assert found[True][0].text.split()[:3] == ["The", "quick", "brown"]
        assert found[True][0].rotation in (90, 270)
    finally:
        pool.close()


async def _nothing(done: int, total: int, batch: Sequence[PageResult]) -> None:
    return None


def test_each_commands_help_lists_every_exit_code_it_returns() -> None:
    returned = {"status": ("0", "2", "3"), "submit": ("0", "1", "2", "3", "4")}
    returned["ocr"] = ("0", "1", "2", "3", "4", "130")
    for command, codes in returned.items():
        run = subprocess.run(
            [sys.executable, "-m", "ocrflow", command, "--help"], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        listed = run.stdout.split("exit codes:")[1]
        found = {line.split()[0] for line in listed.splitlines() if line[:5].strip().isdigit()}
        assert found == set(codes), (command, found)


def test_ctrl_c_ends_a_run_cleanly_whenever_it_comes(tmp_path: Path) -> None:
    documents = [
        write_image_pdf(tmp_path / f"{name}.pdf", [[f"Page {n} of {name}"] * 20 for n in range(8)])
        for name in "ab"
    ]
    for n, delay in enumerate((0.3, 0.9, 1.5, 3.0)):
        run = subprocess.Popen(
            [sys.executable, "-m", "ocrflow", "ocr", *map(str, documents), str(tmp_path / f"o{n}")],
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        assert run.returncode == 130, (delay, err)
        assert "Traceback" not in err and "Exception" not in err, (delay, err)
        assert "interrupted" in err
