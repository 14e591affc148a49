"""Skew estimation by projection profile: the angle at which text rows line up sharpest."""

import numpy as np
from PIL import Image

MAX_ANGLE = 6.0  # degrees either way; beyond that a page is rotated, not skewed
COARSE_STEP = 0.5
FINE_STEP = 0.05
MIN_INK_PIXELS = 500
MAX_SAMPLES = 150_000
WORK_SIZE = 1400
DARK = 128


def estimate_skew(image: Image.Image) -> float:
    """Degrees to turn the page counter-clockwise (Pillow's sense) so its text rows are level."""
    small = image.convert("L")
    small.thumbnail((WORK_SIZE, WORK_SIZE))
    ys, xs = np.nonzero(np.asarray(small) < DARK)
    if len(ys) < MIN_INK_PIXELS:
        return 0.0
    if len(ys) > MAX_SAMPLES:
        pick = np.random.default_rng(0).choice(len(ys), MAX_SAMPLES, replace=False)
        ys, xs = ys[pick], xs[pick]
    x = xs.astype(np.float64) - small.width / 2
    y = ys.astype(np.float64)
    coarse = _best(x, y, np.arange(-MAX_ANGLE, MAX_ANGLE + COARSE_STEP / 2, COARSE_STEP))
    fine = _best(x, y, np.arange(coarse - COARSE_STEP, coarse + COARSE_STEP, FINE_STEP))
    # Rows line up when sheared by the page's own skew; turning back undoes it.
    return round(-float(fine), 2) + 0.0


def _best(x: np.ndarray, y: np.ndarray, angles: np.ndarray) -> float:
    """The angle whose row histogram has the most energy (sharp peaks = level text lines)."""
    scores = []
    for angle in angles:
        rows = np.rint(y + x * np.tan(np.radians(angle))).astype(np.int64)
        counts = np.bincount(rows - rows.min())
        scores.append(float(np.dot(counts, counts)))
    return float(angles[int(np.argmax(scores))])
