"""The worlds: one small function each, returning a :class:`~alliancetraj.Cohort`.

Every function takes ``n_dyads`` (its default is the world's usual cohort size),
``seed`` (the only source of randomness), ``shares`` (a preset name from
:data:`~alliancetraj.worlds.SHARE_PRESETS`, a mapping class -> share or four numbers;
default: the world's own) and optional ``outcome_effects`` / ``binary_effects``
(class -> effect relative to linear). See :mod:`alliancetraj.worlds` for the label
convention and the columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..simulate import Cohort
from ._core import SEVEN_POINT, SRS, WAI_SR, Design, simulate_design

__all__ = [
    "ar1_wai",
    "balanced_wai",
    "brief",
    "heavy_tails",
    "long_treatment",
    "mixed",
    "routine_care",
    "seven_point_floor",
    "srs_ceiling",
    "steep_trends",
]

Seed = int | np.random.Generator | None
Effects = Mapping[str, float] | None


def _every(*names: str) -> dict[str, float]:
    return dict.fromkeys(names, 1.0)


LINEAR_ALL = _every("steady", "wandering")
U_ALL = _every("cosine", "asymmetric", "piecewise")
V_ALL = _every("abrupt_repair", "gradual_repair", "partial_repair", "beyond_repair",
               "twice_repaired")
UNREPAIRED_ALL = _every("step", "drift_back", "after_repaired")
ALL_VARIANTS = {
    "linear": LINEAR_ALL, "u_shaped": U_ALL, "v_shaped": V_ALL,
    "unrepaired_rupture": UNREPAIRED_ALL,
}
MIXED_NOISE = {"gaussian": 1.0, "ar1": 1.0, "t": 1.0, "hetero": 1.0}


def _run(name: str, design: Design, n_dyads: int, seed: Seed, shares: Any,
         outcome_effects: Mapping[str, float] | None,
         binary_effects: Mapping[str, float] | None) -> Cohort:
    return simulate_design(name, design, n_dyads, seed, shares, outcome_effects, binary_effects)


def balanced_wai(n_dyads: int = 400, *, seed: Seed = None, shares: Any = None,
                 outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """Balanced classes, WAI-SR (1-5 in steps of 1/12), 8-24 sessions, Gaussian noise
    SD 0.12-0.30, 10% missing; linear trends from -1.0 to +1.2 over treatment; cosine
    U shapes, abruptly repaired ruptures and plain unrepaired drops.

    Examples
    --------
    >>> from alliancetraj.worlds import balanced_wai
    >>> cohort = balanced_wai(12, seed=1)
    >>> sorted(cohort.sessions.columns)
    ['dyad', 'score', 'session']
    """
    design = Design(
        scale=WAI_SR, level=(2.8, 4.2), sessions=(8, 24), sigma=(0.12, 0.30),
        shares="balanced", change=(-1.0, 1.2),
        variants={"linear": _every("steady"), "u_shaped": _every("cosine"),
                  "v_shaped": _every("abrupt_repair"), "unrepaired_rupture": _every("step")},
    )
    return _run("balanced_wai", design, n_dyads, seed, shares, outcome_effects, binary_effects)


def ar1_wai(n_dyads: int = 400, *, seed: Seed = None, shares: Any = None,
            outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """AR(1) residuals (rho 0.2-0.4) on the WAI-SR, 8-24 sessions; wandering as well
    as steady linear dyads, cosine and piecewise U shapes, abrupt and gradual repair,
    unrepaired drops that drift back part of the way."""
    design = Design(
        scale=WAI_SR, level=(2.8, 4.2), sessions=(8, 24), sigma=(0.12, 0.30),
        shares="moderate", noise={"ar1": 1.0},
        variants={"linear": LINEAR_ALL, "u_shaped": _every("cosine", "piecewise"),
                  "v_shaped": _every("abrupt_repair", "gradual_repair"),
                  "unrepaired_rupture": _every("step", "drift_back")},
    )
    return _run("ar1_wai", design, n_dyads, seed, shares, outcome_effects, binary_effects)


def heavy_tails(n_dyads: int = 400, *, seed: Seed = None, shares: Any = None,
                outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """Student-t residuals (3-5 df, same SD) on the WAI-SR, 10-20 sessions, many
    ruptures: repaired partially, beyond the earlier level or abruptly; unrepaired
    drops, some after an earlier repaired rupture; asymmetric U shapes."""
    design = Design(
        scale=WAI_SR, level=(2.8, 4.2), sessions=(10, 20), sigma=(0.12, 0.28),
        shares="rupture_heavy", noise={"t": 1.0}, missing=(0.1, 0.15),
        variants={"linear": LINEAR_ALL, "u_shaped": _every("asymmetric"),
                  "v_shaped": _every("abrupt_repair", "partial_repair", "beyond_repair"),
                  "unrepaired_rupture": _every("step", "after_repaired")},
    )
    return _run("heavy_tails", design, n_dyads, seed, shares, outcome_effects, binary_effects)


def srs_ceiling(n_dyads: int = 30, *, seed: Seed = None, shares: Any = None,
                outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """The Session Rating Scale (0-40 in steps of 0.1) near its ceiling (most ratings
    above 34), 5-12 sessions from session 1 or 2, 10-20% missing, routine-care shares,
    Gaussian or heteroscedastic noise; a small service's cohort by default (30 dyads).
    """
    design = Design(
        scale=SRS, level=(35.0, 38.5), sessions=(5, 12), sigma=(0.10, 0.20),
        shares="routine", noise={"gaussian": 1.0, "hetero": 1.0}, missing=(0.1, 0.2),
        first_two=0.5, change=(-0.8, 0.8), other_change=(-0.3, 0.4),
        variants=ALL_VARIANTS,
    )
    return _run("srs_ceiling", design, n_dyads, seed, shares, outcome_effects, binary_effects)


def seven_point_floor(n_dyads: int = 100, *, seed: Seed = None, shares: Any = None,
                      outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """A 7-point scale (mean of 4 items, steps of 1/4) near its floor: starting levels
    1.6-3.2, 8-16 sessions, balanced classes; falling linear dyads run into the floor."""
    design = Design(
        scale=SEVEN_POINT, level=(1.6, 3.2), sessions=(8, 16), sigma=(0.12, 0.30),
        shares="balanced", change=(-1.5, 1.5), missing=(0.1, 0.15),
        variants=ALL_VARIANTS,
    )
    return _run("seven_point_floor", design, n_dyads, seed, shares, outcome_effects,
                binary_effects)


def brief(n_dyads: int = 100, *, seed: Seed = None, shares: Any = None,
          outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """Brief treatments: 5-8 sessions from session 1 or 2, 10-25% missing (at least
    four rated sessions), WAI-SR, balanced classes, every shape that fits."""
    design = Design(
        scale=WAI_SR, level=(2.8, 4.2), sessions=(5, 8), sigma=(0.12, 0.25),
        shares="balanced", missing=(0.1, 0.25), first_two=0.5, variants=ALL_VARIANTS,
    )
    return _run("brief", design, n_dyads, seed, shares, outcome_effects, binary_effects)


def long_treatment(n_dyads: int = 5000, *, seed: Seed = None, shares: Any = None,
                   outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """Long treatments: 30-50 sessions, 10-25% missing, Gaussian, AR(1) or
    heteroscedastic noise, wandering alliances, two rupture-repair episodes, unrepaired
    ruptures after repaired ones; a registry-sized cohort by default (5,000 dyads)."""
    design = Design(
        scale=WAI_SR, level=(2.8, 4.2), sessions=(30, 50), sigma=(0.12, 0.30),
        shares="moderate", noise={"gaussian": 1.0, "ar1": 1.0, "hetero": 1.0},
        missing=(0.1, 0.25), first_two=0.3,
        variants={"linear": {"steady": 1.0, "wandering": 2.0},
                  "u_shaped": _every("cosine", "piecewise"),
                  "v_shaped": _every("twice_repaired", "gradual_repair", "abrupt_repair"),
                  "unrepaired_rupture": _every("after_repaired", "drift_back")},
    )
    return _run("long_treatment", design, n_dyads, seed, shares, outcome_effects,
                binary_effects)


def routine_care(n_dyads: int = 400, *, seed: Seed = None, shares: Any = None,
                 outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """Routine-care class shares (Larsson et al. 2018 with Stevens et al. 2007: linear
    66%, u_shaped 8.5%, v_shaped 14.7%, unrepaired 10.7%), WAI-SR starting high
    (3.2-4.6: a ceiling), 8-20 sessions, 10-20% missing, every noise kind and shape."""
    design = Design(
        scale=WAI_SR, level=(3.2, 4.6), sessions=(8, 20), sigma=(0.12, 0.30),
        shares="routine", noise=MIXED_NOISE, missing=(0.1, 0.2), first_two=0.3,
        variants=ALL_VARIANTS,
    )
    return _run("routine_care", design, n_dyads, seed, shares, outcome_effects, binary_effects)


def steep_trends(n_dyads: int = 400, *, seed: Seed = None, shares: Any = None,
                 outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """Mostly linear dyads (Stevens et al. 2007: 66%) with steep and shallow trends
    (total change -1.5 to +1.5), the other classes on trends of -1.0 to +1.0; WAI-SR,
    8-20 sessions, Gaussian or AR(1) noise."""
    design = Design(
        scale=WAI_SR, level=(2.5, 4.0), sessions=(8, 20), sigma=(0.12, 0.30),
        shares="routine", noise={"gaussian": 1.0, "ar1": 1.0}, change=(-1.5, 1.5),
        other_change=(-1.0, 1.0), variants=ALL_VARIANTS,
    )
    return _run("steep_trends", design, n_dyads, seed, shares, outcome_effects, binary_effects)


def mixed(n_dyads: int = 400, *, seed: Seed = None, shares: Any = None,
          outcome_effects: Effects = None, binary_effects: Effects = None) -> Cohort:
    """Everything at once: 5-50 sessions from session 1 or 2, 10-25% missing, every
    noise kind, every shape, balanced classes, WAI-SR."""
    design = Design(
        scale=WAI_SR, level=(2.6, 4.4), sessions=(5, 50), sigma=(0.12, 0.30),
        shares="balanced", noise=MIXED_NOISE, missing=(0.1, 0.25), first_two=0.5,
        variants=ALL_VARIANTS,
    )
    return _run("mixed", design, n_dyads, seed, shares, outcome_effects, binary_effects)
