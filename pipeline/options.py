"""What a caller may ask of the pipeline, and the runtime an operator sets."""

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ocrflow.pipeline.errors import UnsupportedLanguage

Output = Literal["text", "json", "hocr", "csv", "pdf"]
OUTPUTS: tuple[Output, ...] = ("text", "json", "hocr", "csv", "pdf")
Engine = Literal["auto", "tesserocr", "tesseract"]
LANGUAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{1,31}$")
# Page segmentation modes that recognise text (0 and 2 only analyse layout).
_QUOTED = re.compile(r'"([^"]+)"')
PSMS = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})


class OcrOptions(BaseModel):
    """Per-job recognition options; frozen and small, so it crosses into pool processes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    languages: Annotated[tuple[str, ...], Field(min_length=1, max_length=8)] = ("eng",)
    dpi: Annotated[int, Field(ge=72, le=600)] = 300
    psm: int = 3
    force_ocr: bool = False
    rotate: bool = True
    deskew: bool = True
    rescale: bool = True  # scale large text down to the size Tesseract reads it at
    outputs: Annotated[tuple[Output, ...], Field(min_length=1)] = ("text", "json")

    @field_validator("languages")
    @classmethod
    def _language_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not LANGUAGE.match(name):
                raise ValueError(f"{name!r} is not a Tesseract language name")
        return tuple(dict.fromkeys(value))

    @field_validator("psm")
    @classmethod
    def _recognising_psm(cls, value: int) -> int:
        if value not in PSMS:
            raise ValueError(f"psm must be one of {sorted(PSMS)}")
        return value

    @field_validator("outputs")
    @classmethod
    def _unique_outputs(cls, value: tuple[Output, ...]) -> tuple[Output, ...]:
        return tuple(dict.fromkeys(value))

    @property
    def tesseract_lang(self) -> str:
        return "+".join(self.languages)


@dataclass(frozen=True)
class Runtime:
    """How the operator runs the pipeline: bounds on one document, and the Tesseract binding."""

    max_pages: int = 500
    max_page_pixels: int = 80_000_000
    # A dense page holds a few thousand words; a page past this is a glyph bomb, and a
    # document past the second would hold more than a worker should (~350 B a word in memory).
    max_page_words: int = 10_000
    max_document_words: int = 500_000
    page_timeout: float = 120.0
    # tesserocr keeps the model loaded in each pool process; tesseract spawns the binary per
    # page (through pytesseract); auto takes tesserocr when it is installed.
    engine: Engine = "auto"
    # Keep a small picture of each page read (`preview_path`): the service's page pictures.
    previews: bool = False


@dataclass(frozen=True)
class Tessdata:
    directory: str
    languages: frozenset[str]


@cache
def tessdata() -> Tessdata:
    """Where the local Tesseract keeps its traineddata, and which languages are there."""
    listing = subprocess.run(
        ["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30, check=True
    )
    lines = listing.stdout.splitlines()
    directory = _QUOTED.search(lines[0]) if lines else None
    return Tessdata(
        directory=directory[1] if directory else "",
        languages=frozenset(line.strip() for line in lines[1:] if line.strip()),
    )


def installed_languages() -> frozenset[str]:
    return tessdata().languages - {"osd"}  # osd detects orientation; it reads no text


def debian_package(language: str) -> str:
    """The Debian/Ubuntu package that brings a language's traineddata (chi_sim:
    tesseract-ocr-chi-sim)."""
    return "tesseract-ocr-" + language.lower().replace("_", "-")


def check_languages(options: OcrOptions) -> None:
    missing = [name for name in options.languages if name not in installed_languages()]
    if missing:
        packages = " ".join(debian_package(name) for name in missing)
        raise UnsupportedLanguage(
            f"language data not installed: {', '.join(missing)} "
            f"(installed: {', '.join(sorted(installed_languages()))}; on Debian or Ubuntu "
            f"`apt-get install {packages}`, or set OCRFLOW_LANGUAGES before scripts/setup "
            "or the image build)"
        )
