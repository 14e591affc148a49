"""Turned and skewed scans read like upright ones, and every output format comes out right."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from ocrflow.pipeline.document import plan_document
from ocrflow.pipeline.hocr import hocr_document
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import OcrOptions, Output, Runtime
from ocrflow.pipeline.outputs import OutputWriter, Totals, output_files, write_outputs
from ocrflow.pipeline.page import MIN_SKEW, process_page
from ocrflow.pipeline.result import PageResult
from tests.support import page_image, write_image_pdf

LINES = [
    "Invoice number 4711 was paid in full",
    "The quick brown fox jumps over the lazy dog",
    "Shipping address and delivery order review",
    "Quarterly figures show an average increase",
]


def words(text: str) -> list[str]:
    return text.split()


def scanned(tmp_path: Path, rotation: int, skew: float) -> Path:
    image = page_image(LINES, font_size=44, width=2000)
    if skew:
        image = image.rotate(skew, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=255)
    if rotation:
        image = image.rotate(rotation, expand=True)
    pdf = tmp_path / f"scan-{rotation}-{skew}.pdf"
    image.save(pdf, resolution=300)
    return pdf


@pytest.mark.parametrize(
    ("rotation", "skew"), [(90, 0.0), (180, 2.5), (270, -3.0), (0, 5.0), (90, -6.0)]
)
def test_turned_and_skewed_pages_read_as_upright(
    tmp_path: Path, rotation: int, skew: float
) -> None:
    plan = plan_document(
        scanned(tmp_path, rotation, skew), MediaType.PDF, tmp_path, OcrOptions(), Runtime()
    )
    page = process_page(plan.tasks[0])
    assert words(page.text) == words(" ".join(LINES))
    assert page.rotation == (360 - rotation) % 360
    # Slight skews are left to Tesseract; steeper pages are turned level first.
    assert page.skew == (pytest.approx(-skew, abs=0.3) if abs(skew) >= MIN_SKEW else 0.0)


def test_switching_orientation_off_leaves_the_page_as_it_is(tmp_path: Path) -> None:
    options = OcrOptions(rotate=False, deskew=False)
    plan = plan_document(scanned(tmp_path, 180, 0.0), MediaType.PDF, tmp_path, options, Runtime())
    page = process_page(plan.tasks[0])
    assert page.rotation == 0 and page.skew == 0.0
    assert words(page.text) != words(" ".join(LINES))


def pdf_text(pdf: Path, *args: str) -> str:
    run = subprocess.run(["pdftotext", *args, str(pdf), "-"], capture_output=True, check=True)
    return run.stdout.decode()


def page_sizes(pdf: Path) -> list[tuple[float, float]]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    sizes = re.findall(r"Page size:\s+([\d.]+) x ([\d.]+)", info)
    return [(float(w), float(h)) for w, h in sizes]


def word_box(bbox_html: str, word: str) -> tuple[float, ...]:
    found = re.search(
        r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">' + word + "<",
        bbox_html,
    )
    assert found, f"{word} not in the text layer"
    return tuple(float(value) for value in found.groups())


def test_searchable_pdf_keeps_the_page_and_adds_its_words(tmp_path: Path) -> None:
    source = scanned(tmp_path, 90, 2.0)
    options = OcrOptions(outputs=("pdf", "hocr"))
    plan = plan_document(source, MediaType.PDF, tmp_path, options, Runtime())
    pages = [process_page(task) for task in plan.tasks]
    out = tmp_path / "out"
    out.mkdir()
    files = write_outputs(pages, out, ["pdf", "hocr"], source=source, media_type=MediaType.PDF)

    assert pdf_text(source).strip() == ""
    assert sorted(words(pdf_text(files["pdf"]))) == sorted(words(" ".join(LINES)))
    assert page_sizes(files["pdf"]) == page_sizes(source)
    # Turned 90 degrees, the first line runs up the left edge of the page from its bottom:
    # "Invoice" sits in the lower left, in a box taller than it is wide.
    box = word_box(pdf_text(files["pdf"], "-bbox"), "Invoice")
    (width, height) = page_sizes(source)[0]
    assert box[0] < width * 0.5 and box[1] > height * 0.5
    assert box[3] - box[1] > 2 * (box[2] - box[0])
    hocr = files["hocr"].read_text()
    assert "ocrx_word" in hocr and "Invoice" in hocr


def test_searchable_pdf_from_an_image(tmp_path: Path) -> None:
    png = tmp_path / "page.png"
    page_image(LINES).save(png, dpi=(300, 300))
    plan = plan_document(png, MediaType.PNG, tmp_path, OcrOptions(), Runtime())
    pages = [process_page(task) for task in plan.tasks]
    files = write_outputs(pages, tmp_path, ["pdf"], source=png, media_type=MediaType.PNG)
    assert words(pdf_text(files["pdf"])) == words(" ".join(LINES))


def test_hocr_pages_have_their_own_ids(tmp_path: Path) -> None:
    pdf = tmp_path / "two.pdf"
    images = [page_image(LINES[:2]), page_image(LINES[2:])]
    images[0].save(pdf, save_all=True, append_images=images[1:], resolution=300)
    plan = plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(outputs=("hocr",)), Runtime())
    document = hocr_document([process_page(task) for task in plan.tasks])
    assert "id='page_1'" in document and "id='page_2'" in document
    assert "id='word_2_" in document
    assert document.count("class='ocr_page'") == 2


def test_the_text_layer_is_stored_compressed(tmp_path: Path) -> None:
    """Stored plain, the words' content streams made a searchable PDF four times its scan."""
    lines = [f"Line {n} of a dense page with many words on it, each placed" for n in range(60)]
    png = tmp_path / "dense.png"
    page_image(lines, font_size=28, width=2400).save(png, dpi=(300, 300))
    source = tmp_path / "dense.pdf"
    Image.open(png).save(source, "PDF", resolution=300.0)
    options = OcrOptions(outputs=("pdf",))
    plan = plan_document(source, MediaType.PDF, tmp_path, options, Runtime())
    pages = [process_page(task) for task in plan.tasks]
    files = write_outputs(pages, tmp_path, ["pdf"], source=source, media_type=MediaType.PDF)
    word_count = sum(page.words for page in pages)
    assert word_count > 500
    for page in PdfReader(files["pdf"]).pages:
        contents = page["/Contents"].get_object()
        streams = contents if isinstance(contents, list) else [contents]
        assert all(s.get_object().get("/Filter") == "/FlateDecode" for s in streams)
    added = files["pdf"].stat().st_size - source.stat().st_size
    assert added < 30 * word_count  # plain, a word takes about 100 bytes
    assert "Line 59" in pdf_text(files["pdf"])


def test_outputs_written_a_range_at_a_time_are_those_written_at_once(tmp_path: Path) -> None:
    """The merge of a document read in ranges writes its outputs part by part: they must be
    what one pass over every page writes, byte for byte."""
    source = tmp_path / "three.pdf"
    write_image_pdf(source, [["Alpha page one"], ["Beta page two & <b>"], ["Gamma page three"]])
    plan = plan_document(source, MediaType.PDF, tmp_path, OcrOptions(), Runtime())
    pages = [process_page(task) for task in plan.tasks]
    names: list[Output] = ["text", "json", "hocr", "csv", "pdf"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    whole.mkdir()
    parts.mkdir()
    at_once = write_outputs(pages, whole, names, source=source, media_type=MediaType.PDF)
    ranges = [
        pages[:1],
        [PageResult.from_state(json.loads(json.dumps(p.state()))) for p in pages[1:]],
    ]
    totals = Totals.of(ranges[0]) + Totals.of(ranges[1])
    files = output_files(parts, names)
    writer = OutputWriter(files, source=source, media_type=MediaType.PDF, totals=totals)
    for batch in ranges:
        writer.add(batch)
    in_parts = writer.close()
    for name in ("text", "json", "hocr", "csv"):
        assert at_once[name].read_bytes() == in_parts[name].read_bytes(), name
    assert pdf_text(at_once["pdf"]) == pdf_text(in_parts["pdf"])
    assert at_once["pdf"].stat().st_size == in_parts["pdf"].stat().st_size
    # The JSON result reads back as the pages it was written from (handlers get them so).
    written = json.loads(at_once["json"].read_text())["pages"]
    again = [PageResult.from_json(page).to_json() for page in written]
    assert json.loads(json.dumps(again)) == written
