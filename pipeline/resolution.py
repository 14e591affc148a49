"""At what resolution a PDF page is rendered: a scan at its own, within the pixel limit."""

import math

POINTS_PER_INCH = 72
LOW_RESOLUTION = 250
TARGET_DPI = 300
MAX_SCAN_DPI = 600
MAX_SIDE = 32767  # the longest side, in pixels, Tesseract reads


def scan_dpi(native: int) -> int:
    """A scanned page's own resolution: low ones raised to where Tesseract reads best, very
    high ones lowered to where it gains nothing more."""
    if native < LOW_RESOLUTION:
        return TARGET_DPI
    return min(native, MAX_SCAN_DPI)


def capped_dpi(size: tuple[float, float], dpi: int, max_pixels: int) -> int:
    """`dpi`, lowered where a page of `size` points would render to more than `max_pixels`, or
    to a side longer than Tesseract reads (a strip 200 inches tall is read at ~160 dpi)."""
    longest = max(size)
    if longest > 0 and math.ceil(longest / POINTS_PER_INCH * dpi) > MAX_SIDE:
        dpi = max(1, math.floor(MAX_SIDE * POINTS_PER_INCH / longest))
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
