"""The benchmark grid: noise levels, conditions, cells and the two grids.

The grid is defined once, in :data:`FULL_GRID` / :data:`QUICK_GRID`, and printed by
:func:`describe_grid`. A cell's cohorts are drawn with
``simulate_cohort(n_dyads, seed=..., **cell.simulate_kwargs())``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

__all__ = [
    "CONDITIONS",
    "CONDITION_NOTES",
    "DEFAULT_METHODS",
    "FULL_GRID",
    "NOISE_LEVELS",
    "QUICK_GRID",
    "QUICK_METHODS",
    "BenchmarkGrid",
    "Cell",
    "describe_grid",
]

#: Residual SD (median over dyads, score units on a 1-5 scale) of the two noise levels.
NOISE_LEVELS: dict[str, float] = {"low": 0.15, "high": 0.35}

#: Data-generating conditions: keyword arguments of :func:`simulate_cohort` on top of
#: the cell's sessions and noise. ``well_specified`` is the simulator's default
#: (independent Gaussian residuals; scores clipped to 1-5 and rounded to 1/12, as a
#: WAI-SR item mean). The others break one assumption of the models each.
CONDITIONS: dict[str, dict[str, Any]] = {
    "well_specified": {},
    "ar1": {"ar1": 0.3},
    "t4": {"df": 4.0},
    "ceiling": {"level": 4.4},
    "missing": {"missing": 0.2},
}

#: One line per condition for the tables and the README.
CONDITION_NOTES: dict[str, str] = {
    "well_specified": "independent Gaussian residuals (the simulator's default)",
    "ar1": "AR(1) residuals, phi = 0.3",
    "t4": "Student-t residuals, 4 df (same SD)",
    "ceiling": "mean level 4.4 instead of 3.6: scores pile up at the scale maximum 5",
    "missing": "20% of sessions missing at random (never session 1, a rupture or a repair)",
}

#: Methods run when none are named: every method of ``classify`` except the slow
#: sampler ``pymc`` (name it explicitly with ``methods=[..., "pymc"]``).
DEFAULT_METHODS: tuple[str, ...] = ("exact", "growth", "rules", "pelt")

#: Methods of the quick mode when none are named (the same as the full run's;
#: ``exact``'s empirical-Bayes fit on the quick cohorts takes a few seconds).
QUICK_METHODS: tuple[str, ...] = ("exact", "growth", "rules", "pelt")


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: sessions per dyad, noise level and condition."""

    n_sessions: int
    noise: str
    condition: str

    def __post_init__(self) -> None:
        if self.noise not in NOISE_LEVELS:
            raise ValueError(
                f"Unknown noise level {self.noise!r}. Valid levels: {list(NOISE_LEVELS)}."
            )
        if self.condition not in CONDITIONS:
            raise ValueError(
                f"Unknown condition {self.condition!r}. Valid conditions: {list(CONDITIONS)}."
            )

    @property
    def name(self) -> str:
        """A stable id such as ``s12-low-well_specified``."""
        return f"s{self.n_sessions}-{self.noise}-{self.condition}"

    def simulate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~alliancetraj.simulate_cohort` for this cell."""
        return {
            "n_sessions": int(self.n_sessions),
            "noise": NOISE_LEVELS[self.noise],
            **CONDITIONS[self.condition],
        }


@dataclass(frozen=True)
class BenchmarkGrid:
    """The benchmark design: cells, cohort size, replicates and the runtime scan.

    Attributes
    ----------
    cells : tuple of Cell
    n_dyads : int
        Dyads per simulated cohort.
    n_seeds : int
        Replicate cohorts per cell (the spread in the summary is over these).
    scan_sizes : tuple of int
        Cohort sizes of the runtime scan (runtime against number of dyads).
    scan_cell : Cell
        The cell the runtime scan simulates.
    """

    cells: tuple[Cell, ...]
    n_dyads: int
    n_seeds: int
    scan_sizes: tuple[int, ...]
    scan_cell: Cell = Cell(12, "low", "well_specified")

    @classmethod
    def factorial(
        cls,
        sessions: Sequence[int],
        noise: Sequence[str],
        conditions: Sequence[str],
        **kwargs: Any,
    ) -> BenchmarkGrid:
        """Every combination of sessions x noise x condition."""
        cells = tuple(Cell(s, n, c) for s, n, c in product(sessions, noise, conditions))
        return cls(cells=cells, **kwargs)

    def replace(self, **changes: Any) -> BenchmarkGrid:
        """A copy with some attributes changed (None values are ignored)."""
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values.update({k: v for k, v in changes.items() if v is not None})
        return BenchmarkGrid(**values)


#: The full grid, run by hand: sessions 8/12/20/30 x noise low/high x 5 conditions
#: (40 cells), 3 replicate cohorts of 500 dyads each, runtime scan up to 2,000 dyads.
FULL_GRID = BenchmarkGrid.factorial(
    sessions=(8, 12, 20, 30),
    noise=tuple(NOISE_LEVELS),
    conditions=tuple(CONDITIONS),
    n_dyads=500,
    n_seeds=3,
    scan_sizes=(250, 500, 1000, 2000),
)

#: The quick grid (``--quick``, exercised by the tests): two contrasting cells,
#: one replicate of 150 dyads, a small runtime scan.
QUICK_GRID = BenchmarkGrid(
    cells=(Cell(12, "low", "well_specified"), Cell(8, "high", "missing")),
    n_dyads=150,
    n_seeds=1,
    scan_sizes=(50, 150),
)


def describe_grid(grid: BenchmarkGrid = FULL_GRID) -> str:
    """A Markdown description of ``grid`` (quoted by the README and the summary)."""
    sessions = sorted({c.n_sessions for c in grid.cells})
    noises = [n for n in NOISE_LEVELS if any(c.noise == n for c in grid.cells)]
    conds = [k for k in CONDITIONS if any(c.condition == k for c in grid.cells)]
    full = len(sessions) * len(noises) * len(conds) == len(grid.cells)
    lines = [
        f"- cells: {len(grid.cells)}"
        + (
            " (every combination of the factors below)"
            if full
            else ": " + ", ".join(c.name for c in grid.cells)
        ),
        f"- sessions per dyad: {' / '.join(str(s) for s in sessions)}",
        "- noise (median residual SD, 1-5 scale): "
        + ", ".join(f"{n} {NOISE_LEVELS[n]:g}" for n in noises),
        "- conditions:",
        *[f"  - `{k}`: {CONDITION_NOTES[k]}" for k in conds],
        f"- {grid.n_dyads} dyads per cohort, {grid.n_seeds} replicate cohort(s) per cell; "
        "true classes drawn with shares linear 0.4, u_shaped / v_shaped / "
        "unrepaired_rupture 0.2 each",
        f"- runtime scan: {', '.join(str(n) for n in grid.scan_sizes)} dyads in cell "
        f"`{grid.scan_cell.name}`",
    ]
    return "\n".join(lines)
