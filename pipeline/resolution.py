"""At what resolution a PDF page is rendered: a scan at its own, within the pixel limit."""

import math

POINTS_PER_INCH = 72
LOW_RESOLUTION = 250
TARGET_DPI = 300
MAX_SCAN_DPI = 600


def scan_dpi(native: int) -> int:
    """A scanned page's own resolution: low ones raised to where Tesseract reads best, very
    high ones lowered to where it gains nothing more."""
    if native < LOW_RESOLUTION:
        return TARGET_DPI
    return min(native, MAX_SCAN_DPI)


def capped_dpi(size: tuple[float, float], dpi: int, max_pixels: int) -> int:
    """`dpi`, lowered where a page of `size` points would render to more than `max_pixels`."""
    if pixels(size, dpi) <= max_pixels:
        return dpi
    scaled = math.floor(dpi * math.sqrt(max_pixels / pixels(size, dpi)))
    # poppler rounds each side up, so step down until the rendered size really fits.
    while scaled > 1 and pixels(size, scaled) > max_pixels:
        scaled -= 1
    return max(1, scaled)


def pixels(size: tuple[float, float], dpi: int) -> int:
    width, height = (math.ceil(points / POINTS_PER_INCH * dpi) for points in size)
    return width * height
