"""Independent worlds: cohorts this package's models were not built from.

A robustness benchmark for trajectory classifiers. Each world is a small generator
written from the psychotherapy literature (ruptures and repair: Safran & Muran 2000;
Eubanks, Muran & Safran 2018; Stiles et al. 2004; class shares in routine care:
Larsson et al. 2018; Stevens et al. 2007), *not* from the package's change-point
model or :func:`~alliancetraj.simulate_cohort`: other scales, lengths, shapes, noise
and class shares. A classifier that holds only on the simulator its authors wrote
is caught here. Run it with ``run_benchmark(worlds="all")`` (any classifier, see
:func:`alliancetraj.bench.run_benchmark`) or ``benchmarks/bench_worlds.py``.

Label convention
----------------
The true class of a dyad follows one rule, whatever the world:

* **the last rupture decides**: a drop not repaired by the last observed session is
  ``unrepaired_rupture``, even after earlier repaired ones;
* one or more ruptures, all repaired, is ``v_shaped``;
* a gradual dip spread over a large part of treatment is ``u_shaped``;
* a stable, wandering or steadily changing alliance without either is ``linear``.

Made measurable (sizes in units of the dyad's residual SD, ``noise_sd``; the trend
is the dyad's straight-line change over treatment):

* a *rupture* is a drop below the trend from one session to the next of at least
  :data:`MIN_SIZE_SD` (2.5) noise SDs (drawn 2.75-6); it is *repaired* when at least
  :data:`REPAIRED_SHARE` (60%) of the drop is won back by the last session (repairs
  may be abrupt, gradual over 1-4 sessions, partial (65-90%) or go beyond the earlier
  level) and *unrepaired* when at most :data:`UNREPAIRED_SHARE` (30%) is (the drop
  lasts at least two planned sessions and may drift back part of the way);
* a *U* is a dip of at least 2.5 noise SDs below the lower of its two ends, spread
  over at least half of treatment (a cosine bell 60-100% of treatment wide, an
  asymmetric dip or a piecewise-linear decline, bottom and recovery), with no single
  session carrying more than :data:`MAX_STEP_SHARE` (2/3) of it;
* a *linear* dyad's deviation from its trend spans less than :data:`MAX_WANDER_SD`
  (1.5) noise SDs (a slow wander of 0.5-1.4 SDs, or none). A linear dyad may run into
  the scale's floor or ceiling and stay there; for the other classes the noise-free
  curve is shifted into the scale, so no drop or dip is cut off by a bound.

The ``truth`` reports the measured sizes (``depth_sd``, ``recovered_share``,
``dip_sd``, ``max_step_share``, ``wander_sd``), so these rules are property tests.
``rupture_session`` is the last rupture's first dropped session, ``repair_session``
the first session after it that has won back at least half of the drop (v_shaped
only); neither is ever missing, nor is the first planned session. Other sessions are
missing completely at random (10-25% by world; at least four rated sessions).

Every world returns a :class:`~alliancetraj.Cohort`:

``sessions``
    Long: ``dyad``, ``session`` (int64, from 1 or 2, gaps where missing), ``score``.
``outcomes``
    Index dyad: ``baseline_severity`` (standard normal), ``recovery`` (continuous:
    class effect + ``-0.4 * severity`` + N(0, 1)) and ``recovered`` (0/1: logistic with
    intercept 0.2, class effect on the log-odds and ``-0.5 * severity``). The true
    effects (relative to linear) are in ``truth.attrs["outcome_effects"]`` and
    ``truth.attrs["binary_effects"]``: u_shaped +0.3 / +0.4, v_shaped +0.45 / +0.6,
    unrepaired_rupture -0.5 / -0.8 by default.
``truth``
    Index dyad: ``true_class`` (categorical in the order of
    :data:`alliancetraj.CLASSES`), ``variant``, ``rupture_session``,
    ``repair_session``, ``turning_session`` (the bottom of a U), ``first_session``,
    ``n_sessions`` (planned), ``n_rated``, ``level`` (the noise-free score at the
    first planned session), ``total_change`` (the trend, scale points), ``noise_kind``, ``noise_parameter`` (rho, df or SD ratio),
    ``noise_sd`` (scale points), ``missing_rate``, ``depth`` (scale points) and the
    measured sizes above. ``truth.attrs`` holds the world, the scale, the class
    shares and the outcome model.

Examples
--------
>>> from alliancetraj.worlds import WORLDS, simulate_world
>>> sorted(WORLDS)[:3]
['ar1_wai', 'balanced_wai', 'brief']
>>> cohort = simulate_world("srs_ceiling", seed=3)
>>> len(cohort.truth), cohort.truth.attrs["scale_bounds"]
(30, (0.0, 40.0))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_int
from ..simulate import Cohort
from ._core import (
    BINARY_EFFECTS,
    MAX_STEP_SHARE,
    MAX_WANDER_SD,
    MIN_SIZE_SD,
    OUTCOME_EFFECTS,
    REPAIRED_SHARE,
    SHARE_PRESETS,
    UNREPAIRED_SHARE,
    world_seed,
)
from .generators import (
    ar1_wai,
    balanced_wai,
    brief,
    heavy_tails,
    long_treatment,
    mixed,
    routine_care,
    seven_point_floor,
    srs_ceiling,
    steep_trends,
)
from .scoring import WORLD_SCORES, score_world, world_table, worlds_summary, worst_worlds

__all__ = [
    "BINARY_EFFECTS",
    "MAX_STEP_SHARE",
    "MAX_WANDER_SD",
    "MIN_SIZE_SD",
    "OUTCOME_EFFECTS",
    "REPAIRED_SHARE",
    "SHARE_PRESETS",
    "UNREPAIRED_SHARE",
    "WORLDS",
    "WORLD_SCORES",
    "World",
    "ar1_wai",
    "balanced_wai",
    "brief",
    "describe_worlds",
    "heavy_tails",
    "long_treatment",
    "mixed",
    "resolve_worlds",
    "routine_care",
    "score_world",
    "seven_point_floor",
    "simulate_world",
    "srs_ceiling",
    "steep_trends",
    "world_seed",
    "world_table",
    "worlds_summary",
    "worst_worlds",
]


@dataclass(frozen=True)
class World:
    """A registered world: its generator, default cohort size and class shares."""

    name: str
    generator: Callable[..., Cohort]
    n_dyads: int
    shares: str

    @property
    def description(self) -> str:
        """The first paragraph of the generator's docstring, on one line."""
        doc = (self.generator.__doc__ or "").split("\n\n")[0]
        return " ".join(doc.split())

    def simulate(self, n_dyads: int | None = None, *, seed=None, shares=None, **kwargs) -> Cohort:
        """Draw a cohort (default size :attr:`n_dyads`)."""
        return self.generator(self.n_dyads if n_dyads is None else n_dyads, seed=seed,
                              shares=shares, **kwargs)


def _register(func: Callable[..., Cohort], shares: str) -> World:
    import inspect

    n = inspect.signature(func).parameters["n_dyads"].default
    return World(func.__name__, func, int(n), shares)


#: Every world by name, with its generator, default cohort size and class shares.
WORLDS: dict[str, World] = {
    w.name: w
    for w in (
        _register(balanced_wai, "balanced"),
        _register(ar1_wai, "moderate"),
        _register(heavy_tails, "rupture_heavy"),
        _register(srs_ceiling, "routine"),
        _register(seven_point_floor, "balanced"),
        _register(brief, "balanced"),
        _register(long_treatment, "moderate"),
        _register(routine_care, "routine"),
        _register(steep_trends, "routine"),
        _register(mixed, "balanced"),
    )
}


def simulate_world(
    name: str,
    n_dyads: int | None = None,
    *,
    seed: int | np.random.Generator | None = None,
    shares: str | Mapping[str, float] | Sequence[float] | None = None,
    outcome_effects: Mapping[str, float] | None = None,
    binary_effects: Mapping[str, float] | None = None,
) -> Cohort:
    """Draw a cohort from a registered world.

    Parameters
    ----------
    name : str
        A key of :data:`WORLDS`.
    n_dyads : int, optional
        Cohort size (default: the world's own, 30 to 5,000).
    seed : int, numpy Generator or None
        The only source of randomness: the same seed gives the same cohort.
    shares : str, mapping or four numbers, optional
        Class shares: a key of :data:`SHARE_PRESETS` (``balanced``, ``moderate``,
        ``rupture_heavy``, ``routine``), a mapping class -> share or four numbers in
        the order of :data:`alliancetraj.CLASSES`; default: the world's own.
    outcome_effects, binary_effects : mapping class -> effect, optional
        Override the true class effects on ``recovery`` and on the log-odds of
        ``recovered`` (relative to linear).

    Returns
    -------
    Cohort
        See the module docstring for the columns and the label convention.

    Examples
    --------
    >>> from alliancetraj.worlds import simulate_world
    >>> cohort = simulate_world("brief", n_dyads=50, seed=2, shares="routine")
    >>> cohort.truth["true_class"].value_counts().idxmax()
    'linear'
    """
    check_choice("simulate_world", "name", name, list(WORLDS))
    if n_dyads is not None:
        check_int("simulate_world", "n_dyads", n_dyads, low=1)
    return WORLDS[name].simulate(n_dyads, seed=seed, shares=shares,
                                 outcome_effects=outcome_effects,
                                 binary_effects=binary_effects)


def resolve_worlds(worlds: str | Sequence[str], func: str = "run_worlds") -> list[str]:
    """World names from ``"all"``, one name or a sequence of names (validated; ``func``
    is the function named in the error message)."""
    if isinstance(worlds, str):
        worlds = list(WORLDS) if worlds == "all" else [worlds]
    names = list(dict.fromkeys(worlds))
    if not names:
        raise ValueError(f"No worlds given. Valid worlds: {list(WORLDS)} or 'all'.")
    for name in names:
        check_choice(func, "worlds", name, [*WORLDS, "all"])
    return names


def describe_worlds(names: Sequence[str] | None = None) -> str:
    """A Markdown list of the worlds: name, default size, shares and description."""
    names = list(WORLDS) if names is None else list(names)
    lines = []
    for name in names:
        w = WORLDS[name]
        lines.append(f"- `{name}` ({w.n_dyads:,} dyads, {w.shares} shares): {w.description}")
    return "\n".join(lines)
