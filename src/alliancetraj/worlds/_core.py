"""The machinery every world shares: scales, noise, missing sessions, outcomes, truth.

A world is a :class:`Design` (what to draw) turned into a
:class:`~alliancetraj.Cohort` by :func:`simulate_design`. Per dyad, in this order:
class (from the shares), planned number of sessions and first rated session, residual
SD ``sigma`` (points of a 1-5 scale), the shape variant and its deviation from the
trend (:mod:`alliancetraj.worlds.shapes`), the trend (total change over treatment),
the starting level, the noise, the missing sessions and the outcomes.

Everything is drawn in points of a 1-5 scale and mapped to the world's scale by
``low + (value - 1) * unit`` with ``unit = (high - low) / 4``; noise is drawn in the
same units, so a world on the SRS (0-40) has ten times the SD in SRS points. Scores
are clipped to the scale and rounded to its resolution. For every class but
``linear`` the noise-free curve is shifted (not squeezed) into the scale, so a drop or
a dip the truth reports is really in the mean; a linear dyad may run into a bound and
stay there (a stable alliance at the ceiling is still linear).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_int, parameter_error
from ..results import CLASSES
from ..simulate import Cohort
from .shapes import SHAPES

#: The last rupture's drop and a U's amplitude are at least this many noise SDs.
MIN_SIZE_SD = 2.5
#: A linear dyad's deviation from its straight trend spans less than this (noise SDs).
MAX_WANDER_SD = 1.5
#: A repaired rupture has won back at least this share of its drop by the last session.
REPAIRED_SHARE = 0.6
#: An unrepaired rupture has won back at most this share of its drop by the last session.
UNREPAIRED_SHARE = 0.3
#: A U is gradual: no one session carries more than this share of its amplitude.
MAX_STEP_SHARE = 2 / 3

#: Class-share presets (order of :data:`alliancetraj.CLASSES`). ``routine`` combines
#: Larsson et al. (2018, N = 605: no rupture 74.5%, repaired 14.7%, unrepaired 10.7%)
#: with Stevens et al. (2007: linear trends in 66% of 44 cases) for the split of the
#: no-rupture share into linear and u_shaped.
SHARE_PRESETS: dict[str, tuple[float, float, float, float]] = {
    "balanced": (0.25, 0.25, 0.25, 0.25),
    "moderate": (0.4, 0.2, 0.2, 0.2),
    "rupture_heavy": (0.3, 0.15, 0.3, 0.25),
    "routine": (0.66, 0.085, 0.147, 0.107),
}

#: Default class effects on ``recovery`` (SD units) and on the log-odds of ``recovered``,
#: relative to linear: repaired ruptures and U shapes go with better outcomes,
#: unrepaired ruptures with worse (Eubanks et al. 2018; Stiles et al. 2004;
#: Kivlighan & Shaughnessy 2000; McLaughlin et al. 2014).
OUTCOME_EFFECTS: dict[str, float] = {
    "linear": 0.0, "u_shaped": 0.3, "v_shaped": 0.45, "unrepaired_rupture": -0.5,
}
BINARY_EFFECTS: dict[str, float] = {
    "linear": 0.0, "u_shaped": 0.4, "v_shaped": 0.6, "unrepaired_rupture": -0.8,
}
SEVERITY_EFFECT, BINARY_SEVERITY_EFFECT, BINARY_INTERCEPT = -0.4, -0.5, 0.2


@dataclass(frozen=True)
class Scale:
    """A rating scale: bounds, resolution (None: continuous) and a name."""

    low: float
    high: float
    resolution: float | None
    name: str

    @property
    def unit(self) -> float:
        """Scale points per point of a 1-5 scale."""
        return (self.high - self.low) / 4.0


WAI_SR = Scale(1.0, 5.0, 1 / 12, "WAI-SR item mean, 1-5 in steps of 1/12")
SRS = Scale(0.0, 40.0, 0.1, "SRS total, 0-40 in steps of 0.1")
SEVEN_POINT = Scale(1.0, 7.0, 0.25, "7-point scale, mean of 4 items (steps of 1/4)")


@dataclass(frozen=True)
class Design:
    """What a world draws. Ranges are ``(min, max)``, drawn uniformly per dyad.

    ``level`` is the starting level in the world's own scale points; ``change`` the
    total change of a linear dyad's trend over treatment and ``other_change`` that of
    the other classes, both in points of a 1-5 scale; ``sigma`` the residual SD in
    points of a 1-5 scale. ``noise`` maps a noise kind (``gaussian``, ``ar1``, ``t``,
    ``hetero``) to its weight; ``variants`` maps each class to its shape variants and
    their weights. ``first_two`` is the chance that the first rated session is 2.
    """

    scale: Scale
    level: tuple[float, float]
    sessions: tuple[int, int]
    sigma: tuple[float, float]
    shares: str | tuple[float, ...]
    variants: Mapping[str, Mapping[str, float]]
    noise: Mapping[str, float] = field(default_factory=lambda: {"gaussian": 1.0})
    change: tuple[float, float] = (-1.5, 1.5)
    other_change: tuple[float, float] = (-0.4, 0.6)
    missing: tuple[float, float] = (0.10, 0.10)
    first_two: float = 0.0
    rho: tuple[float, float] = (0.2, 0.4)
    df: tuple[float, float] = (3.0, 5.0)


# ------------------------------------------------------------------------------ inputs
def resolve_shares(func: str, shares: Any) -> np.ndarray:
    """Class shares from a preset name, a mapping class -> share or four numbers."""
    if isinstance(shares, str):
        if shares not in SHARE_PRESETS:
            raise parameter_error(func, "shares", f"one of {list(SHARE_PRESETS)}", shares)
        values = SHARE_PRESETS[shares]
    elif isinstance(shares, Mapping):
        unknown = set(shares) - set(CLASSES)
        if unknown:
            raise parameter_error(func, "shares", f"a mapping with keys in {list(CLASSES)}",
                                  shares)
        values = [shares.get(c, 0.0) for c in CLASSES]
    elif isinstance(shares, Sequence) and len(shares) == len(CLASSES):
        values = list(shares)
    else:
        raise parameter_error(
            func, "shares", f"a preset name, a mapping or {len(CLASSES)} numbers", shares
        )
    arr = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or arr.sum() <= 0:
        raise parameter_error(func, "shares", "non-negative numbers with a positive sum", shares)
    return arr / arr.sum()


def world_seed(base: int, name: str, replicate: int) -> int:
    """A seed for (base seed, world name, replicate), stable across runs and sizes."""
    state = np.random.SeedSequence([int(base), zlib.crc32(name.encode()), int(replicate)])
    return int(state.generate_state(1)[0])


# ------------------------------------------------------------------------------- noise
def draw_noise(kind: str, n: int, sigma: float, design: Design, rng: np.random.Generator):
    """Residuals with standard deviation ``sigma`` (root mean square over sessions for
    ``hetero``) and the parameter that characterises them (rho, df or SD ratio)."""
    if kind == "gaussian":
        return rng.normal(0.0, sigma, n), np.nan
    if kind == "ar1":
        rho = rng.uniform(*design.rho)
        e = rng.normal(0.0, sigma * np.sqrt(1 - rho**2), n)
        out = np.empty(n)
        out[0] = rng.normal(0.0, sigma)
        for i in range(1, n):
            out[i] = rho * out[i - 1] + e[i]
        return out, rho
    if kind == "t":
        df = rng.uniform(*design.df)
        return rng.standard_t(df, n) * sigma * np.sqrt((df - 2) / df), df
    if kind == "hetero":
        # the SD changes steadily over treatment (noisier early or late) by a factor 1.5-3
        ratio = rng.uniform(1.5, 3.0) ** rng.choice([-1.0, 1.0])
        sd = np.exp(np.linspace(0.0, np.log(ratio), n))
        sd *= sigma / np.sqrt(np.mean(sd**2))
        return rng.normal(0.0, 1.0, n) * sd, ratio
    raise ValueError(f"Unknown noise kind {kind!r}. Valid kinds: gaussian, ar1, t, hetero.")


# ------------------------------------------------------------------------------- truth
def describe_curve(dev: np.ndarray, rupture: int | None, sigma: float) -> dict[str, float]:
    """What the label convention looks at, measured on a deviation from the trend.

    Returns ``depth_sd`` (the last rupture's one-session drop, in noise SDs),
    ``recovered_share`` (share of that drop won back by the last planned session),
    ``repair`` (index of the first session after the rupture that has won back at
    least half of it; None if none), ``dip_sd`` (the deepest two-sided dip: how far
    the lowest point lies below the lower of the highest points before and after it),
    ``max_step_share`` (the largest one-session change as a share of that dip) and
    ``wander_sd`` (the deviation's range); sizes in noise SDs.
    """
    before = np.maximum.accumulate(dev)
    after = np.maximum.accumulate(dev[::-1])[::-1]
    dip = float(np.max(np.minimum(before, after) - dev))
    steps = np.abs(np.diff(dev))
    out: dict[str, Any] = {
        "dip_sd": dip / sigma,
        "max_step_share": float(steps.max() / dip) if dip > 0 else np.nan,
        "wander_sd": float(np.ptp(dev) / sigma),
        "depth_sd": np.nan,
        "recovered_share": np.nan,
        "repair": None,
    }
    if rupture is not None:
        before, bottom = dev[rupture - 1], dev[rupture]
        drop = before - bottom
        won = (dev[rupture:] - bottom) / drop
        out["depth_sd"] = drop / sigma
        out["recovered_share"] = float(won[-1])
        back = np.flatnonzero(won >= 0.5 - 1e-9)
        out["repair"] = int(rupture + back[0]) if len(back) else None
    return out


# --------------------------------------------------------------------------- outcomes
def draw_outcomes(labels: np.ndarray, rng: np.random.Generator, effects, binary) -> pd.DataFrame:
    """Baseline severity (standardised), continuous ``recovery`` and 0/1 ``recovered``."""
    n = len(labels)
    severity = rng.normal(size=n)
    eff = np.array([effects[c] for c in labels], dtype=float)
    beff = np.array([binary[c] for c in labels], dtype=float)
    recovery = eff + SEVERITY_EFFECT * severity + rng.normal(size=n)
    logit = BINARY_INTERCEPT + beff + BINARY_SEVERITY_EFFECT * severity
    recovered = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {"baseline_severity": severity, "recovery": recovery, "recovered": recovered}
    )


# ------------------------------------------------------------------------- the cohort
def _pick(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.asarray([weights[k] for k in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _missing_mask(n: int, rate: float, keep: set[int], rng: np.random.Generator) -> np.ndarray:
    """True where a planned session is rated; ``keep`` are never missing; at least 4 rated."""
    rated = rng.uniform(size=n) >= rate
    rated[list(keep)] = True
    while rated.sum() < min(4, n):
        rated[rng.choice(np.flatnonzero(~rated))] = True
    return rated


def simulate_design(
    name: str,
    design: Design,
    n_dyads: int,
    seed: int | np.random.Generator | None,
    shares: Any = None,
    outcome_effects: Mapping[str, float] | None = None,
    binary_effects: Mapping[str, float] | None = None,
) -> Cohort:
    """Draw a cohort of ``n_dyads`` from ``design`` (see the module docstring)."""
    n_dyads = check_int(name, "n_dyads", n_dyads, low=1)
    p = resolve_shares(name, design.shares if shares is None else shares)
    effects = {**OUTCOME_EFFECTS, **(outcome_effects or {})}
    binary = {**BINARY_EFFECTS, **(binary_effects or {})}
    rng = np.random.default_rng(seed)
    scale = design.scale
    labels = np.asarray(CLASSES, dtype=object)[rng.choice(len(CLASSES), size=n_dyads, p=p)]
    ids = [f"d{i:05d}" for i in range(n_dyads)]
    frames, rows = [], []
    for i_dyad, (dyad, cls) in enumerate(zip(ids, labels, strict=True)):
        n = int(rng.integers(design.sessions[0], design.sessions[1] + 1))
        first = 2 if rng.uniform() < design.first_two else 1
        sigma = rng.uniform(*design.sigma)
        variant = _pick(rng, design.variants[cls])
        shape = SHAPES[cls][variant](n, sigma, rng)
        change = rng.uniform(*(design.change if cls == "linear" else design.other_change))
        trend = change * np.arange(n) / (n - 1)
        level = rng.uniform(*design.level)
        mean = level + (trend + shape.deviation) * scale.unit
        if cls != "linear":  # shift the signal into the scale; never squeeze a drop
            mean -= max(mean.max() - scale.high, 0.0)
            mean += max(scale.low - mean.min(), 0.0)
        kind = _pick(rng, design.noise)
        noise, noise_par = draw_noise(kind, n, sigma, design, rng)
        score = np.clip(mean + noise * scale.unit, scale.low, scale.high)
        if scale.resolution:
            score = scale.low + np.round((score - scale.low) / scale.resolution) * scale.resolution
            score = np.clip(score, scale.low, scale.high)
        facts = describe_curve(shape.deviation, shape.rupture, sigma)
        rupture = shape.rupture
        repair = facts["repair"] if cls == "v_shaped" else None
        keep = {0} | {i for i in (rupture, repair) if i is not None}
        missing_rate = rng.uniform(*design.missing)
        rated = _missing_mask(n, missing_rate, keep, rng)
        sessions = first + np.arange(n)
        frames.append((np.full(int(rated.sum()), i_dyad), sessions[rated], score[rated]))
        low_idx = int(np.argmin(shape.deviation))
        rows.append({
            "dyad": dyad,
            "true_class": cls,
            "variant": shape.variant,
            "rupture_session": float(sessions[rupture]) if rupture is not None else np.nan,
            "repair_session": float(sessions[repair]) if repair is not None else np.nan,
            "turning_session": float(sessions[low_idx]) if cls == "u_shaped" else np.nan,
            "first_session": first,
            "n_sessions": n,
            "n_rated": int(rated.sum()),
            "level": float(mean[0]),
            "total_change": change * scale.unit,
            "noise_kind": kind,
            "noise_parameter": noise_par,
            "noise_sd": sigma * scale.unit,
            "missing_rate": missing_rate,
            "depth": facts["depth_sd"] * sigma * scale.unit,
            **{k: facts[k] for k in ("depth_sd", "recovered_share", "dip_sd",
                                     "max_step_share", "wander_sd")},
        })
    which, session, score = (np.concatenate(parts) for parts in zip(*frames, strict=True))
    sessions_df = pd.DataFrame({
        "dyad": pd.array(np.asarray(ids, dtype=object)[which], dtype="str"),
        "session": session.astype(np.int64),
        "score": score.astype(np.float64),
    })
    truth = pd.DataFrame(rows).set_index("dyad")
    truth["true_class"] = pd.Categorical(truth["true_class"], categories=list(CLASSES))
    outcomes = draw_outcomes(labels, rng, effects, binary)
    outcomes.index = pd.Index(ids, name="dyad")
    truth.attrs.update({
        "world": name,
        "scale": scale.name,
        "scale_bounds": (scale.low, scale.high),
        "shares": dict(zip(CLASSES, p.tolist(), strict=True)),
        "outcome_effects": effects,
        "binary_effects": binary,
        "severity_effect": SEVERITY_EFFECT,
        "binary_severity_effect": BINARY_SEVERITY_EFFECT,
        "binary_intercept": BINARY_INTERCEPT,
        "outcome_sd": 1.0,
    })
    return Cohort(sessions=sessions_df, outcomes=outcomes, truth=truth)
