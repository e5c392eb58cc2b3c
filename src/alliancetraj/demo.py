"""The demo behind ``make demo`` / ``alliancetraj demo``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .simulate import simulate_cohort

__all__ = ["run_demo"]


def run_demo(out: Path | str = "demo-output", *, n_dyads: int = 300, seed: int = 2024,
             echo: Callable[[str], None] = print) -> Path:
    """Simulate a cohort and write it with a short summary to ``out``; return ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cohort = simulate_cohort(n_dyads=n_dyads, seed=seed)
    cohort.sessions.to_csv(out / "sessions.csv", index=False)
    cohort.outcomes.to_csv(out / "outcomes.csv")
    cohort.truth.to_csv(out / "truth.csv")
    counts = cohort.truth["true_class"].value_counts().sort_index()
    n_obs = cohort.sessions.groupby("dyad").size()
    echo(f"simulated {n_dyads} dyads (seed {seed}), {len(cohort.sessions)} rated sessions, "
         f"{n_obs.min()}-{n_obs.max()} per dyad")
    for cls, n in counts.items():
        echo(f"  {cls:<20s} {n:5d}")
    echo(f"wrote sessions.csv, outcomes.csv and truth.csv to {out}/")
    return out
