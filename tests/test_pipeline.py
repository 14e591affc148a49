"""The pipeline on its own: no server, real poppler and Tesseract."""

import itertools
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from ocrflow.pipeline.document import plan_document
from ocrflow.pipeline.errors import InvalidImage, InvalidPdf, PipelineError, TooManyPages
from ocrflow.pipeline.media import MediaType, sniff
from ocrflow.pipeline.options import OcrOptions, Runtime
from ocrflow.pipeline.outputs import check_pages
from ocrflow.pipeline.page import process_page, render_dpi
from ocrflow.pipeline.poppler import text_layer
from ocrflow.pipeline.result import Line, PageError, PageResult, Word
from ocrflow.pipeline.tsv import parse_tsv
from tests.support import (
    page_image,
    pdf_of,
    stream_of,
    write_image_pdf,
    write_png,
    write_searchable_pdf,
)

PAGES = [["Alpha page one"], ["Beta page two"], ["Gamma page three"]]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n", MediaType.PDF),
        (b"\r\n\r\n%PDF-1.4 junk before the header", MediaType.PDF),
        (b"\x89PNG\r\n\x1a\n....", MediaType.PNG),
        (b"\xff\xd8\xff\xe0..JFIF", MediaType.JPEG),
        (b"II*\x00....", MediaType.TIFF),
        (b"MM\x00*....", MediaType.TIFF),
    ],
)
def test_sniff_knows_the_four_types(head: bytes, expected: MediaType) -> None:
    assert sniff(head) is expected


@pytest.mark.parametrize("head", [b"", b"GIF89a", b"PK\x03\x04 a zip", b"hello %PD"])
def test_sniff_refuses_everything_else(head: bytes) -> None:
    with pytest.raises(PipelineError) as error:
        sniff(head)
    assert error.value.code == "unsupported_media_type"


def test_text_layer_pages_are_read_not_ocred(tmp_path: Path) -> None:
    pdf = write_searchable_pdf(tmp_path / "searchable.pdf", PAGES)
    plan = plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(), Runtime())
    assert plan.page_count == 3
    assert plan.tasks == ()
    assert [page.method for page in plan.text_pages] == ["text-layer"] * 3
    assert [page.text.split() for page in plan.text_pages] == [p[0].split() for p in PAGES]
    assert plan.text_pages[0].lines[0].words[0].bbox[2] > 0


def test_force_ocr_sends_every_page_to_recognition(tmp_path: Path) -> None:
    pdf = write_searchable_pdf(tmp_path / "searchable.pdf", PAGES)
    plan = plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(force_ocr=True), Runtime())
    assert plan.text_pages == ()
    assert [task.number for task in plan.tasks] == [1, 2, 3]
    page = process_page(plan.tasks[1])
    assert page.method == "ocr"
    assert page.text.split() == ["Beta", "page", "two"]


@pytest.mark.parametrize(("scanned", "rendered"), [(150, 300), (300, 300), (400, 400), (1200, 600)])
def test_scans_render_at_their_own_resolution(tmp_path: Path, scanned: int, rendered: int) -> None:
    pdf = write_image_pdf(tmp_path / "scan.pdf", PAGES[:1], dpi=scanned)
    plan = plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(dpi=200), Runtime())
    assert plan.text_pages == ()
    (task,) = plan.tasks
    assert render_dpi(task) == rendered


def test_pages_without_images_or_text_render_at_the_option_dpi(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    pdf = tmp_path / "blank.pdf"
    writer.write(pdf)
    plan = plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(dpi=150), Runtime())
    assert [render_dpi(task) for task in plan.tasks] == [150]


def test_page_pixel_limit_lowers_the_rendering_dpi(tmp_path: Path) -> None:
    pdf = write_image_pdf(tmp_path / "scan.pdf", PAGES[:1])
    runtime = Runtime(max_page_pixels=200_000)
    plan = plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(dpi=300), runtime)
    (task,) = plan.tasks
    page = process_page(task)
    assert page.dpi < 300
    width, height = page.source_size
    assert width * height <= 200_000
    assert page.text.split() == ["Alpha", "page", "one"]


def test_too_many_pages(tmp_path: Path) -> None:
    pdf = write_image_pdf(tmp_path / "long.pdf", PAGES)
    with pytest.raises(TooManyPages):
        plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(), Runtime(max_pages=2))


def test_truncated_png_is_invalid_image(tmp_path: Path) -> None:
    png = write_png(tmp_path / "page.png", ["some text"])
    png.write_bytes(png.read_bytes()[:300])
    with pytest.raises(InvalidImage):
        plan_document(png, MediaType.PNG, tmp_path, OcrOptions(), Runtime())


def test_image_over_the_pixel_limit_fails_before_decoding(tmp_path: Path) -> None:
    png = write_png(tmp_path / "page.png", ["some text"])
    with pytest.raises(PipelineError) as error:
        plan_document(png, MediaType.PNG, tmp_path, OcrOptions(), Runtime(max_page_pixels=1000))
    assert error.value.code == "page_too_large"


def test_multi_page_tiff_is_one_task_per_frame(tmp_path: Path) -> None:
    frames = [page_image(lines) for lines in PAGES]
    tiff = tmp_path / "fax.tif"
    frames[0].save(tiff, save_all=True, append_images=frames[1:], compression="tiff_lzw")
    plan = plan_document(tiff, MediaType.TIFF, tmp_path, OcrOptions(), Runtime())
    assert [task.number for task in plan.tasks] == [1, 2, 3]
    assert process_page(plan.tasks[2]).text.split() == ["Gamma", "page", "three"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fax.tif"], "scratch files left behind"


def test_corrupt_pdf(tmp_path: Path) -> None:
    pdf = tmp_path / "bad.pdf"
    pdf.write_bytes(b"%PDF-1.4\nnot really a pdf\n%%EOF\n")
    with pytest.raises(InvalidPdf):
        plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(), Runtime())


def test_one_failed_page_does_not_fail_the_document() -> None:
    good = PageResult(number=1, method="ocr", width=1, height=1, dpi=300, text="ok")
    bad = PageResult(
        number=2,
        method="ocr",
        width=0,
        height=0,
        dpi=300,
        text="",
        error=PageError("page_timeout", "too slow"),
    )
    check_pages([good, bad])
    with pytest.raises(PipelineError) as error:
        check_pages([bad])
    assert error.value.code == "page_timeout"


def test_tesseract_tsv_rows_become_lines_of_words() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight"
    tsv = "\n".join(
        [
            header + "\tconf\ttext",
            "1\t1\t0\t0\t0\t0\t0\t0\t500\t100\t-1\t",
            "2\t1\t1\t0\t0\t0\t10\t10\t200\t60\t-1\t",
            "3\t1\t1\t1\t0\t0\t10\t10\t200\t60\t-1\t",
            "4\t1\t1\t1\t1\t0\t10\t10\t200\t20\t-1\t",
            "5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96.5\tHello",
            "5\t1\t1\t1\t1\t2\t70\t12\t60\t18\t91.25\tworld",
            "4\t1\t1\t1\t2\t0\t10\t40\t200\t20\t-1\t",
            "5\t1\t1\t1\t2\t1\t10\t40\t40\t20\t-1\t ",
            '5\t1\t1\t1\t2\t2\t10\t40\t40\t20\t88\t"quoted"',
            "5\t1\t1\t1\t2\t3\tten\t40\t40\t20\t88\tdamaged",
            "5\t1\t1\t1\t2",
        ]
    )
    (page,) = parse_tsv(tsv.encode())
    assert (page.width, page.height) == (500, 100)
    first, second = page.lines
    assert first.text == "Hello world"
    assert first.bbox == (10, 10, 130, 30)  # the union of its words
    assert [w.confidence for w in first.words] == [96.5, 91.25]
    assert second.text == '"quoted"'


def test_text_layer_words_come_back_as_written_with_their_boxes(tmp_path: Path) -> None:
    content = b"BT /F1 24 Tf 72 700 Td (AT&T <b> gr\\374\\337e) Tj ET"
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    pdf = tmp_path / "plain-text.pdf"
    pdf.write_bytes(
        pdf_of(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                b" /Resources << /Font << /F1 6 0 R >> >> >>",
                stream_of(content),
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 400] >>",
                font,
            ]
        )
    )
    first, second = text_layer(pdf, first=1, last=2, timeout=30, max_page_words=100)
    assert (first.width, first.height, second.width, second.height) == (612, 792, 300, 400)
    assert second.lines == ()  # a page without text is still a page, in its place
    (line,) = first.lines
    assert [word.text for word in line.words] == ["AT&T", "<b>", "grüße"]
    # In points from the top left: the text starts at x 72 on a baseline at 792 - 700 = 92.
    boxes = [word.bbox for word in line.words]
    assert boxes[0][0] == 72
    assert all(top < 92 < bottom and 18 <= bottom - top <= 30 for _, top, _, bottom in boxes)
    assert all(a[0] < a[2] < b[0] for a, b in itertools.pairwise(boxes))  # left to right
    assert all(word.confidence == 100.0 for word in line.words)


def test_mixed_document_reads_text_pages_and_recognises_the_scan(tmp_path: Path) -> None:
    text = PdfReader(write_searchable_pdf(tmp_path / "text.pdf", [PAGES[0], PAGES[2]]))
    scan = PdfReader(write_image_pdf(tmp_path / "scan.pdf", [PAGES[1]]))
    writer = PdfWriter()
    for page in (text.pages[0], scan.pages[0], text.pages[1]):
        writer.add_page(page)
    mixed = tmp_path / "mixed.pdf"
    writer.write(mixed)
    plan = plan_document(mixed, MediaType.PDF, tmp_path, OcrOptions(), Runtime())
    assert [page.number for page in plan.text_pages] == [1, 3]
    assert [page.text for page in plan.text_pages] == [PAGES[0][0], PAGES[2][0]]
    assert [task.number for task in plan.tasks] == [2]
    assert process_page(plan.tasks[0]).text == PAGES[1][0]


def test_pages_cross_processes_whole(tmp_path: Path) -> None:
    pdf = write_searchable_pdf(tmp_path / "searchable.pdf", PAGES[:1])
    (page,) = plan_document(pdf, MediaType.PDF, tmp_path, OcrOptions(), Runtime()).text_pages
    page = replace(page, error=PageError("page_timeout", "late"), rotation=90, skew=0.5)
    copy = pickle.loads(pickle.dumps(page))
    assert copy == page
    assert isinstance(copy.lines[0], Line)
    assert isinstance(copy.lines[0].words[0], Word)
    assert copy.lines[0].words[0].bbox == page.lines[0].words[0].bbox


def test_password_protected_pdf_is_encrypted_pdf(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=write_image_pdf(tmp_path / "plain.pdf", PAGES[:1]))
    writer.encrypt(user_password="secret", owner_password="owner")
    locked = tmp_path / "locked.pdf"
    writer.write(locked)
    with pytest.raises(PipelineError) as error:
        plan_document(locked, MediaType.PDF, tmp_path, OcrOptions(), Runtime())
    assert error.value.code == "encrypted_pdf"


def test_a_page_over_its_time_fails_alone_with_page_timeout(tmp_path: Path) -> None:
    pdf = write_image_pdf(tmp_path / "scan.pdf", PAGES[:1])
    options = OcrOptions(rotate=False, force_ocr=True)
    plan = plan_document(pdf, MediaType.PDF, tmp_path, options, Runtime(page_timeout=0.001))
    page = process_page(plan.tasks[0])
    assert page.error is not None
    assert page.error.code == "page_timeout"
