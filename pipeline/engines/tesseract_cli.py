"""The tesseract binary through pytesseract: one process per page, text and TSV in one pass."""

import re
import subprocess
from pathlib import Path

from PIL import Image
from pytesseract import pytesseract

from ocrflow.pipeline.engines import MIN_ORIENTATION_CONFIDENCE, Recognition
from ocrflow.pipeline.errors import EngineFailure, PageTimeout
from ocrflow.pipeline.result import Line
from ocrflow.pipeline.tsv import TextPage, parse_tsv

_ROTATE = re.compile(r"^Rotate: (\d+)$", re.MULTILINE)
_CONFIDENCE = re.compile(r"^Orientation confidence: ([\d.]+)$", re.MULTILINE)


class BinaryEngine:
    name = "tesseract"

    def recognize(
        self,
        image: Image.Image,
        *,
        lang: str,
        psm: int,
        dpi: int,
        timeout: float,
        scratch: Path,
    ) -> Recognition:
        source = scratch.with_suffix(".png")
        image.save(source, compress_level=1)
        _run(
            source,
            scratch,
            "txt",
            lang,
            f"--psm {psm} --dpi {dpi} -c tessedit_create_tsv=1",
            timeout,
        )
        produced = [scratch.with_suffix(ext) for ext in (".txt", ".tsv", ".png")]
        try:
            return Recognition(
                text=produced[0].read_text(encoding="utf-8").strip("\f\n "),
                lines=_lines(parse_tsv(produced[1].read_bytes())),
            )
        except OSError as exc:
            raise EngineFailure(f"tesseract wrote no result: {exc}") from exc
        finally:
            for path in produced:
                path.unlink(missing_ok=True)

    def orientation(self, image: Image.Image, *, timeout: float, scratch: Path) -> int:
        source = scratch.with_suffix(".osd.png")
        image.save(source, compress_level=1)
        try:
            report = pytesseract.image_to_osd(str(source), config="--psm 0", timeout=timeout)
        except pytesseract.TesseractError:
            return 0  # too little text to tell; leave the page as it is
        except RuntimeError as exc:
            raise PageTimeout(f"orientation detection took longer than {timeout:g} s") from exc
        finally:
            source.unlink(missing_ok=True)
        rotate, confidence = _ROTATE.search(report), _CONFIDENCE.search(report)
        if not rotate or not confidence or float(confidence[1]) < MIN_ORIENTATION_CONFIDENCE:
            return 0
        # tesseract says how far to turn clockwise; Pillow turns counter-clockwise.
        return (360 - int(rotate[1])) % 360


def _run(
    source: Path, out_base: Path, renderers: str, lang: str, config: str, timeout: float
) -> None:
    try:
        pytesseract.run_tesseract(
            str(source),
            str(out_base),
            extension=renderers,
            lang=lang,
            config=config,
            timeout=timeout,
        )
    except RuntimeError as exc:
        if "timeout" in str(exc):
            raise PageTimeout(f"recognition took longer than {timeout:g} s") from exc
        raise EngineFailure(f"tesseract failed: {exc}") from exc
    except (pytesseract.TesseractError, OSError, subprocess.SubprocessError) as exc:
        raise EngineFailure(f"tesseract failed: {exc}") from exc


def _lines(pages: list[TextPage]) -> tuple[Line, ...]:
    return tuple(line for page in pages for line in page.lines)
