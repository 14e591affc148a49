"""The recognition engine behind one interface: tesserocr kept warm, or the tesseract binary."""

from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol

from PIL import Image

from ocrflow.pipeline.options import Engine as EngineName
from ocrflow.pipeline.result import Line

# Below this OSD confidence the page is left as it is: guessing wrong costs more than not turning.
MIN_ORIENTATION_CONFIDENCE = 2.0


@dataclass(frozen=True)
class Recognition:
    text: str
    lines: tuple[Line, ...]


class Engine(Protocol):
    name: str

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
        """One recognition pass over the page, yielding its text and word boxes."""

    def orientation(self, image: Image.Image, *, timeout: float, scratch: Path) -> int:
        """Degrees (counter-clockwise: 0, 90, 180, 270) that turn the page upright."""


@cache
def get_engine(name: EngineName) -> Engine:
    if name == "tesserocr" or (name == "auto" and find_spec("tesserocr") is not None):
        from ocrflow.pipeline.engines.tesseract_api import TesserocrEngine

        return TesserocrEngine()
    from ocrflow.pipeline.engines.tesseract_cli import BinaryEngine

    return BinaryEngine()
