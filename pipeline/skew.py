"""Text rows by projection profile: the angle at which they line up sharpest (the skew), and
how far apart they are (the line pitch, which tells the text size)."""

from typing import NamedTuple

import numpy as np
from PIL import Image

MAX_ANGLE = 6.0  # degrees either way; beyond that a page is rotated, not skewed
COARSE_STEP = 0.5
FINE_STEP = 0.05
MIN_INK_PIXELS = 500
MAX_SAMPLES = 150_000
WORK_SIZE = 1400
DARK = 128
# A pitch is believed when the row profile repeats clearly (its autocorrelation at that lag is
# this share of its energy) over at least MIN_PERIODS lines, at a lag of MIN_LAG or more.
MIN_PERIODICITY = 0.2
MIN_PERIODS = 4
MIN_LAG = 3
# Among the autocorrelation's peaks, the shortest this close to the highest is the pitch (the
# profile repeats at every multiple of it too).
PEAK_SHARE = 0.8


class Rows(NamedTuple):
    skew: float  # degrees to turn the page counter-clockwise (Pillow's sense) to level its rows
    pitch: float | None  # pixels from one text line to the next, None if no clear rhythm


def measure_rows(image: Image.Image) -> Rows:
    small = image.convert("L")
    small.thumbnail((WORK_SIZE, WORK_SIZE))
    ys, xs = np.nonzero(np.asarray(small) < DARK)
    if len(ys) < MIN_INK_PIXELS:
        return Rows(0.0, None)
    if len(ys) > MAX_SAMPLES:
        pick = np.random.default_rng(0).choice(len(ys), MAX_SAMPLES, replace=False)
        ys, xs = ys[pick], xs[pick]
    x = xs.astype(np.float64) - small.width / 2
    y = ys.astype(np.float64)
    coarse = _best(x, y, np.arange(-MAX_ANGLE, MAX_ANGLE + COARSE_STEP / 2, COARSE_STEP))
    fine = _best(x, y, np.arange(coarse - COARSE_STEP, coarse + COARSE_STEP, FINE_STEP))
    pitch = _pitch(_profile(x, y, fine))
    # Rows line up when sheared by the page's own skew; turning back undoes it.
    skew = round(-float(fine), 2) + 0.0
    return Rows(skew, pitch * image.height / small.height if pitch else None)


def _profile(x: np.ndarray, y: np.ndarray, angle: float) -> np.ndarray:
    rows = np.rint(y + x * np.tan(np.radians(angle))).astype(np.int64)
    return np.bincount(rows - rows.min())


def _best(x: np.ndarray, y: np.ndarray, angles: np.ndarray) -> float:
    """The angle whose row histogram has the most energy (sharp peaks = level text lines)."""
    scores = []
    for angle in angles:
        counts = _profile(x, y, angle)
        scores.append(float(np.dot(counts, counts)))
    return float(angles[int(np.argmax(scores))])


def _pitch(profile: np.ndarray) -> float | None:
    """The period of the row profile, in its own pixels (to a tenth), if it has a clear one."""
    centred = profile - profile.mean()
    size = len(centred)
    spectrum = np.fft.rfft(centred, 2 * size)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum))[: size // MIN_PERIODS]
    if len(correlation) <= MIN_LAG + 1 or correlation[0] <= 0:
        return None
    share = correlation / correlation[0]
    inner = share[1:-1]
    peaks = np.flatnonzero((inner > share[:-2]) & (inner >= share[2:])) + 1
    peaks = peaks[(peaks >= MIN_LAG) & (share[peaks] >= MIN_PERIODICITY)]
    if not len(peaks):
        return None
    lag = int(peaks[np.argmax(share[peaks] >= PEAK_SHARE * share[peaks].max())])
    # The top of the parabola through the peak and its neighbours: sub-pixel precision.
    left, middle, right = share[lag - 1], share[lag], share[lag + 1]
    bend = left - 2 * middle + right
    return lag + (0.5 * (left - right) / bend if bend else 0.0)
