"""Pages of large text are read at a smaller scale; their text and boxes come out as if not."""

from pathlib import Path

import pytest
from PIL import Image

from ocrflow.pipeline.document import plan_document
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import OcrOptions, Runtime
from ocrflow.pipeline.page import MIN_SCALE, TARGET_PITCH, process_page, text_scale
from ocrflow.pipeline.skew import measure_rows
from tests.support import Style, scan_page


@pytest.mark.parametrize("font_size", [22, 34, 56])
@pytest.mark.parametrize("skew", [0.0, 2.5])
def test_the_line_pitch_is_measured(font_size: int, skew: float) -> None:
    page = scan_page(font_size, Style(font_size=font_size, skew=skew, columns=2, noise=True))
    rows = measure_rows(page.image)
    assert rows.pitch == pytest.approx(int(font_size * 1.5), rel=0.02)
    assert rows.skew == pytest.approx(-skew, abs=0.3)


def test_no_pitch_without_a_rhythm_of_lines() -> None:
    assert measure_rows(Image.new("L", (2000, 2600), 255)).pitch is None
    two_lines = scan_page(1, Style(font_size=40)).image.crop((0, 0, 2550, 320))
    assert measure_rows(two_lines).pitch is None


def test_only_large_text_is_scaled_and_never_too_far() -> None:
    assert text_scale(None) == 1.0
    assert text_scale(TARGET_PITCH - 1) == 1.0
    assert text_scale(2 * TARGET_PITCH) == pytest.approx(0.5)
    assert text_scale(100 * TARGET_PITCH) == MIN_SCALE


def test_a_page_read_scaled_down_has_its_words_where_they_are(tmp_path: Path) -> None:
    page = scan_page(7, Style(font_size=60))
    png = tmp_path / "large.png"
    page.image.save(png, dpi=(300, 300))
    plan = plan_document(png, MediaType.PNG, tmp_path, OcrOptions(), Runtime())
    result = process_page(plan.tasks[0])
    assert text_scale(measure_rows(page.image).pitch) < 0.5  # it was read scaled down
    assert result.text.split() == page.truth.split()
    assert (result.width, result.height) == page.image.size
    found = [word for line in result.lines for word in line.words]
    assert [word.text for word in found] == [text for text, _ in page.words]
    for word, (_, truth) in zip(found, page.words, strict=True):
        # Tesseract's boxes hug the ink, the drawn ones the font's metrics: centres agree to half
        # the text size (boxes left at the scale they were read at would be 2.5x off).
        for axis in (0, 1):
            centre, expected = (
                (word.bbox[axis] + word.bbox[axis + 2]) / 2,
                (truth[axis] + truth[axis + 2]) / 2,
            )
            assert abs(centre - expected) <= 30, (word, truth)


@pytest.mark.parametrize("engine", ["tesserocr", "tesseract"])
def test_a_blank_page_reads_as_no_words(tmp_path: Path, engine: str) -> None:
    png = tmp_path / "blank.png"
    Image.new("L", (1700, 2200), 255).save(png, dpi=(200, 200))
    runtime = Runtime(engine=engine)  # type: ignore[arg-type]
    plan = plan_document(png, MediaType.PNG, tmp_path, OcrOptions(), runtime)
    page = process_page(plan.tasks[0])
    assert page.error is None and page.text == "" and page.lines == ()
