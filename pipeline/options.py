"""What a caller may ask of the pipeline, and the limits an operator sets."""

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.errors import UnsupportedLanguage

Output = Literal["text", "json", "csv"]
OUTPUTS: tuple[Output, ...] = ("text", "json", "csv")
LANGUAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{1,31}$")
# Page segmentation modes that recognise text (0 and 2 only analyse layout).
PSMS = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})


class OcrOptions(BaseModel):
    """Per-job recognition options; frozen and small, so it crosses into pool processes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    languages: Annotated[tuple[str, ...], Field(min_length=1, max_length=8)] = ("eng",)
    dpi: Annotated[int, Field(ge=72, le=600)] = 300
    psm: int = 3
    force_ocr: bool = False
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
class Limits:
    """Operator-set bounds on one document."""

    max_pages: int = 500
    max_page_pixels: int = 80_000_000
    page_timeout: float = 120.0


@cache
def installed_languages() -> frozenset[str]:
    """The traineddata names the local Tesseract can load."""
    listing = subprocess.run(
        ["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30, check=True
    )
    return frozenset(line.strip() for line in listing.stdout.splitlines()[1:] if line.strip())


def check_languages(options: OcrOptions) -> None:
    missing = [name for name in options.languages if name not in installed_languages()]
    if missing:
        raise UnsupportedLanguage(
            f"language data not installed: {', '.join(missing)} "
            f"(installed: {', '.join(sorted(installed_languages()))})"
        )
