"""Figures for alliance trajectories (matplotlib; imported only when used).

Every function takes ``ax=None`` (a new figure when None), returns the Axes it drew
on and never calls ``plt.show()``.

- :func:`plot_trajectories` — cohort spaghetti plot coloured or faceted by class,
  with class means;
- :func:`plot_dyad` — one dyad: scores, fitted trajectory with band, rupture and
  repair with their posterior;
- :func:`plot_probabilities` — class probabilities across dyads (sorted stacked bars);
- :func:`plot_effects` — forest plot of a ``relate_outcomes`` fit;
- :func:`plot_monitor_dyad`, :func:`plot_caseload` — session-by-session rupture
  alerts (:func:`alliancetraj.monitor`);
- benchmark figures (confusion matrix, reliability diagram, runtime) from
  :mod:`alliancetraj.plot.benchmark`.
"""

from __future__ import annotations

from pathlib import Path

from ._common import CLASS_COLORS, CLASS_NAMES
from .dyad import DyadFit, dyad_fit, plot_dyad
from .monitor import plot_caseload, plot_monitor_dyad
from .outcomes import plot_effects
from .trajectories import class_means, plot_probabilities, plot_trajectories

__all__ = [
    "CLASS_COLORS",
    "CLASS_NAMES",
    "DyadFit",
    "class_means",
    "dyad_fit",
    "plot_caseload",
    "plot_dyad",
    "plot_effects",
    "plot_monitor_dyad",
    "plot_probabilities",
    "plot_trajectories",
]

# The benchmark figures live in their own module, written with the benchmark harness.
# Import it only where it exists, so that an import error inside it is never hidden.
if (Path(__file__).with_name("benchmark.py")).exists():
    from . import benchmark as _benchmark
    from .benchmark import *  # noqa: F403

    __all__ += list(getattr(_benchmark, "__all__", []))
