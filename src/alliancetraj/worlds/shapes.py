"""Trajectory shapes of the independent worlds: the deviation of a dyad from its trend.

Every function here draws one dyad's noise-free *deviation from its own straight-line
trend* on its planned sessions, in points of a 1-5 scale. Sizes are drawn in multiples
of ``sigma`` (the dyad's residual SD, same units) so that every change the label
convention calls meaningful stands clear of the noise. The
trend, the level, the scale, the noise and the missing sessions are added by
:mod:`alliancetraj.worlds._core`.

A shape function takes ``(n, sigma, rng)`` (``n`` planned sessions, at least 5) and
returns a :class:`Shape`: the deviation (length ``n``; index 0 is the first planned
session), the index of the *last* rupture's first dropped session (None for shapes
without a rupture) and the variant's name. Repair sessions, depths and amplitudes are
not taken from the shape's parameters but measured on the curve afterwards
(:func:`alliancetraj.worlds._core.describe_curve`), so the truth table and the label
convention's property tests see the same thing a reader of the curve would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: A sudden drop (the last rupture) and a U's amplitude are at least this many noise
#: SDs; sizes are drawn from ``[SIZE_SD_LOW, SIZE_SD_HIGH]`` noise SDs.
SIZE_SD_LOW, SIZE_SD_HIGH = 2.75, 6.0


class Shape(NamedTuple):
    """One dyad's deviation from its trend, with its last rupture (index) and variant."""

    deviation: np.ndarray
    rupture: int | None
    variant: str


def _size(sigma: float, rng: np.random.Generator) -> float:
    return float(rng.uniform(SIZE_SD_LOW, SIZE_SD_HIGH)) * sigma


# ------------------------------------------------------------------------------ linear
def steady(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """No deviation: the alliance is its trend (stable, rising or falling)."""
    return Shape(np.zeros(n), None, "steady")


def wandering(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A slow wander around the trend: a smoothed, detrended random walk whose range
    is 0.5-1.4 noise SDs (below the 1.5 SD that the convention allows a linear dyad)."""
    x = np.arange(n, dtype=float)
    walk = np.cumsum(rng.normal(size=n))
    width = max(2, n // 5)
    kernel = np.ones(width) / width
    smooth = np.convolve(np.pad(walk, (width, width), mode="edge"), kernel, mode="same")
    smooth = smooth[width:-width]
    resid = smooth - np.polyval(np.polyfit(x, smooth, 1), x)
    span = np.ptp(resid)
    if span <= 0:
        return Shape(np.zeros(n), None, "wandering")
    return Shape(resid / span * rng.uniform(0.5, 1.4) * sigma, None, "wandering")


# ------------------------------------------------------------------------------ u_shaped
def u_cosine(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A smooth cosine dip whose width is 60-100% of the treatment."""
    last = n - 1
    centre = rng.uniform(0.35, 0.65) * last
    room = 2 * min(centre, last - centre)
    width = rng.uniform(0.6 * last, max(0.6 * last, room))
    width = min(width, room)
    amp = _size(sigma, rng)
    dev = _bell(n, centre, width, amp)
    low = int(np.argmin(dev))
    reach = min(dev[: low + 1].max(), dev[low:].max()) - dev[low]
    if np.max(-np.diff(dev)) > 0.6 * reach or np.max(np.diff(dev)) > 0.6 * reach:
        dev = _bell(n, last / 2, last, amp)  # sampled too coarsely: centre it, full width
    low = int(np.argmin(dev))
    reach = min(dev[: low + 1].max(), dev[low:].max()) - dev[low]
    return Shape(dev * amp / reach, None, "cosine")  # the sampled dip is the drawn size


def _bell(n: int, centre: float, width: float, amp: float) -> np.ndarray:
    x = np.arange(n, dtype=float)
    inside = np.abs(x - centre) < width / 2
    dev = np.zeros(n)
    dev[inside] = -amp * (1 + np.cos(2 * np.pi * (x[inside] - centre) / width)) / 2
    return dev


def u_asymmetric(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A lopsided dip: descent and ascent of different lengths and curvature; the far
    end returns to 90-140% of the starting height."""
    last = n - 1
    trough = int(np.clip(round(rng.uniform(0.25, 0.75) * last), 2, last - 2))
    amp = _size(sigma, rng)
    back = rng.uniform(0.92, 1.4)
    p, q = rng.uniform(0.8, 1.6, size=2)
    x = np.arange(n, dtype=float)
    dev = np.where(
        x <= trough,
        -amp * np.clip(x / trough, 0, 1) ** p,
        -amp + back * amp * np.clip((x - trough) / (last - trough), 0, 1) ** q,
    )
    if np.abs(np.diff(dev)).max() > 0.55 * min(1.0, back) * amp:
        # too abrupt for a gradual dip on a short treatment: straight sides, and a far
        # end no higher than keeps each step of the climb within 60% of the dip
        back = min(back, max(1.0, 0.6 * (last - trough)))
        dev = np.where(
            x <= trough, -amp * x / trough, -amp + back * amp * (x - trough) / (last - trough)
        )
    return Shape(dev, None, "asymmetric")


def u_piecewise(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """Straight decline over several sessions, a flat bottom, straight recovery."""
    last = n - 1
    extent = int(rng.integers(max(4, int(np.ceil(0.5 * last))), last + 1))
    flat = int(rng.integers(0, max(1, extent - 4) + 1))
    flat = min(flat, extent - 4)
    down = (extent - flat) // 2 + int(rng.integers(0, 2)) * ((extent - flat) % 2)
    up = extent - flat - down
    start = int(rng.integers(0, last - extent + 1))
    amp = _size(sigma, rng)
    dev = np.zeros(n)
    for i in range(n):
        k = i - start
        if 0 <= k <= down:
            dev[i] = -amp * k / down
        elif down < k <= down + flat:
            dev[i] = -amp
        elif down + flat < k <= extent:
            dev[i] = -amp * (1 - (k - down - flat) / up)
    return Shape(dev, None, "piecewise")


# ------------------------------------------------------------------------------ v_shaped
def _onset(rng: np.random.Generator, low: int, high: int) -> int:
    return int(rng.integers(low, max(low, high) + 1))


def v_abrupt(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A sudden drop for 1-4 sessions, then a sudden return to the trend."""
    length = int(rng.integers(1, min(4, n - 3) + 1))
    r = _onset(rng, 2, n - 1 - length)
    dev = np.zeros(n)
    dev[r : r + length] = -_size(sigma, rng)
    return Shape(dev, r, "abrupt_repair")


def v_gradual(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A sudden drop, 0-1 further sessions at the bottom, then a straight climb back
    to the trend over 1-4 sessions."""
    ramp = int(rng.integers(1, min(4, n - 3) + 1))
    bottom = int(rng.integers(0, 2)) if n - 3 - ramp >= 1 else 0
    r = _onset(rng, 2, n - 1 - ramp - bottom)
    depth = _size(sigma, rng)
    dev = np.zeros(n)
    dev[r : r + bottom + 1] = -depth
    for k in range(1, ramp + 1):
        if r + bottom + k < n:
            dev[r + bottom + k] = -depth * (1 - k / ramp)
    return Shape(dev, r, "gradual_repair")


def v_partial(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A sudden drop repaired 65-90% of the way: the alliance stays a little lower."""
    length = int(rng.integers(1, min(3, n - 3) + 1))
    r = _onset(rng, 2, n - 1 - length)
    depth = _size(sigma, rng)
    dev = np.zeros(n)
    dev[r : r + length] = -depth
    dev[r + length :] = -depth * (1 - rng.uniform(0.65, 0.9))
    return Shape(dev, r, "partial_repair")


def v_beyond(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A sudden drop repaired beyond the earlier level (by 10-50% of the drop)."""
    length = int(rng.integers(1, min(3, n - 3) + 1))
    r = _onset(rng, 2, n - 1 - length)
    depth = _size(sigma, rng)
    dev = np.zeros(n)
    dev[r : r + length] = -depth
    dev[r + length :] = depth * rng.uniform(0.1, 0.5)
    return Shape(dev, r, "beyond_repair")


def v_twice(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """Two rupture-repair episodes, each a sudden drop for 1-3 sessions and a return;
    too short a treatment (under 10 sessions) gets one (variant ``abrupt_repair``)."""
    if n < 10:
        return v_abrupt(n, sigma, rng)
    l1, l2 = (int(v) for v in rng.integers(1, 4, size=2))
    while l1 + l2 > n - 5:
        l1, l2 = max(1, l1 - 1), max(1, l2 - 1)
    r1 = _onset(rng, 2, n - 3 - l1 - l2)
    r2 = _onset(rng, r1 + l1 + 2, n - 1 - l2)
    dev = np.zeros(n)
    dev[r1 : r1 + l1] = -_size(sigma, rng)
    dev[r2 : r2 + l2] = -_size(sigma, rng)
    return Shape(dev, r2, "twice_repaired")


# ---------------------------------------------------------------------- unrepaired
def unrepaired_step(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A sudden drop that lasts to the end (at least two sessions at the lower level)."""
    r = _onset(rng, 2, n - 2)
    dev = np.zeros(n)
    dev[r:] = -_size(sigma, rng)
    return Shape(dev, r, "step")


def unrepaired_drift(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A sudden drop that drifts back 5-30% of the way by the last session."""
    r = _onset(rng, 2, n - 2)
    depth = _size(sigma, rng)
    back = rng.uniform(0.05, 0.3)
    dev = np.zeros(n)
    span = n - 1 - r
    dev[r:] = -depth + depth * back * np.arange(span + 1) / max(span, 1)
    return Shape(dev, r, "drift_back")


def unrepaired_after_repair(n: int, sigma: float, rng: np.random.Generator) -> Shape:
    """A repaired rupture (1-2 sessions), later a second drop that is not repaired;
    too short a treatment (under 8 sessions) gets only the unrepaired drop
    (variant ``step``)."""
    if n < 8:
        return unrepaired_step(n, sigma, rng)
    l1 = int(rng.integers(1, 3))
    r1 = _onset(rng, 2, n - 4 - l1)
    r2 = _onset(rng, r1 + l1 + 1, n - 2)
    dev = np.zeros(n)
    dev[r1 : r1 + l1] = -_size(sigma, rng)
    dev[r2:] = -_size(sigma, rng)
    return Shape(dev, r2, "after_repaired")


ShapeFunction = Callable[[int, float, np.random.Generator], Shape]

#: Every shape by class and variant name.
SHAPES: dict[str, dict[str, ShapeFunction]] = {
    "linear": {"steady": steady, "wandering": wandering},
    "u_shaped": {"cosine": u_cosine, "asymmetric": u_asymmetric, "piecewise": u_piecewise},
    "v_shaped": {
        "abrupt_repair": v_abrupt,
        "gradual_repair": v_gradual,
        "partial_repair": v_partial,
        "beyond_repair": v_beyond,
        "twice_repaired": v_twice,
    },
    "unrepaired_rupture": {
        "step": unrepaired_step,
        "drift_back": unrepaired_drift,
        "after_repaired": unrepaired_after_repair,
    },
}
