"""The demo behind ``make demo`` / ``alliancetraj demo``.

Simulates a cohort, classifies it (the exact engine by default), relates the classes
to recovery and writes a self-contained HTML report plus the tables as CSV.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .dispatch import classify
from .methods import REGISTRY
from .results import CLASS_LABELS
from .simulate import simulate_cohort

__all__ = ["run_demo"]

#: Methods tried, in order, when the requested one is not installed (pymc last: slow).
#: The simulated recovery score's units (simulate_cohort draws it with SD 1 per class).
UNITS = "SDs of recovery"
_FALLBACK_ORDER = ("exact", "rules", "growth", "pelt", "pymc")


def _installed(module_name: str) -> bool:
    return importlib.util.find_spec(module_name) is not None


def _choose_method(method: str) -> str:
    if method not in REGISTRY:
        raise ValueError(f"Unknown method {method!r}. Valid methods: {list(REGISTRY)}.")
    for name in (method, *[m for m in _FALLBACK_ORDER if m != method]):
        if _installed(REGISTRY[name].module):
            return name
    raise ImportError(
        "The demo needs a classification method, but none of "
        f"{[REGISTRY[m].module for m in _FALLBACK_ORDER]} is installed."
    )


def _relate(result, outcomes, notes: list[str], echo: Callable[[str], None]):
    if not _installed("alliancetraj.outcomes"):
        note = (
            "Outcome effects are missing: alliancetraj.outcomes (relate_outcomes) is not "
            "installed in this version."
        )
        notes.append(note)
        echo(f"NOTE: {note}")
        return None
    from .outcomes import relate_outcomes

    return relate_outcomes(result, outcomes, outcome="recovery", covariates=["baseline_severity"])


def run_demo(
    out: Path | str = "demo-output",
    *,
    n_dyads: int = 300,
    seed: int = 2024,
    echo: Callable[[str], None] = print,
    method: str = "exact",
) -> Path:
    """Simulate, classify, relate classes to recovery and write a report; return ``out``.

    Writes to ``out``: ``report.html`` (self-contained: figures embedded as PNG),
    ``classification.csv`` (one row per dyad: most probable class, the four class
    probabilities, change points with credible bounds, and the true class),
    ``summary.csv`` (class counts and shares), ``effects.csv`` (class effects on
    recovery, adjusted for baseline severity), ``confusion.csv`` (true against
    estimated class), and the simulated inputs ``sessions.csv``, ``outcomes.csv``
    and ``truth.csv``.

    Parameters
    ----------
    out : path, default "demo-output"
    n_dyads : int, default 300
    seed : int, default 2024
        Seed of the simulation.
    echo : callable, default print
        Receives the progress lines (``lambda s: None`` for silence).
    method : str, default "exact"
        Classification method. When its module is not installed the demo uses the
        first installed method of exact, rules, growth, pelt, pymc, and says so on
        ``echo`` and in the report.

    Returns
    -------
    Path
        The output folder.
    """
    from ._files import write_atomic
    from ._version import __version__
    from .report import confusion_table, write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []

    cohort = simulate_cohort(n_dyads=n_dyads, seed=seed)
    n_obs = cohort.sessions.groupby("dyad").size()
    echo(
        f"simulated {n_dyads} dyads (seed {seed}), {len(cohort.sessions)} rated sessions, "
        f"{n_obs.min()}-{n_obs.max()} per dyad"
    )

    used = _choose_method(method)
    if used != method:
        note = (
            f"The requested method {method!r} is not installed "
            f"({REGISTRY[method].module} is missing); classified with method {used!r} instead."
        )
        notes.append(note)
        echo(f"NOTE: {note}")
    result = classify(cohort.sessions, method=used)
    kind = "exact posterior probabilities" if result.exact else "not exact"
    echo(f"classified {len(result)} dyads with method={used!r} ({kind})")

    truth = cohort.truth
    cm = confusion_table(truth, result)
    accuracy = float(np.trace(cm.to_numpy())) / max(int(cm.to_numpy().sum()), 1)
    summary = result.summary()
    for cls, row in summary.iterrows():
        echo(
            f"  {cls:<20s} {int(row['n_dyads']):5d}  (true: "
            f"{int((truth['true_class'] == cls).sum())})"
        )
    echo(f"  {accuracy:.1%} of dyads classified as their true class")

    fit = _relate(result, cohort.outcomes, notes, echo)

    written = []

    def save(frame, name: str, **kwargs) -> None:
        write_atomic(out / name, lambda tmp: frame.to_csv(tmp, **kwargs))
        written.append(name)

    table = result.to_frame()
    table["true_class"] = truth["true_class"].astype(str).reindex(table.index)
    save(table, "classification.csv")
    save(summary, "summary.csv")
    if fit is not None:
        save(fit.effects, "effects.csv")
        level = 1 - (fit.settings or {}).get("alpha", 0.05)
        echo(f"effects on recovery, in {UNITS}, vs {CLASS_LABELS[fit.reference]}, "
             f"{level:.0%} confidence intervals ({fit.method}, adjusted for baseline severity):")
        for cls, row in fit.effects.iterrows():
            echo(
                f"  {CLASS_LABELS[cls]:<20s} {row['estimate']:+.2f} SD "
                f"({level:.0%} CI {row['ci_low']:+.2f} to {row['ci_high']:+.2f})"
            )
    save(cm, "confusion.csv")
    save(cohort.sessions, "sessions.csv", index=False)
    save(cohort.outcomes, "outcomes.csv")
    save(truth, "truth.csv")

    meta = {
        "data": "simulated cohort (alliancetraj.simulate_cohort)",
        "simulated dyads": n_dyads,
        "seed": seed,
        "alliancetraj version": __version__,
        "outcome model": (
            f"recovery ~ class + baseline_severity ({fit.method}, reference {fit.reference})"
            if fit is not None
            else "not available"
        ),
    }
    report = write_report(
        out / "report.html",
        result,
        cohort.sessions,
        effects=fit,
        truth=truth,
        title="alliancetraj demo: alliance trajectories and recovery",
        meta=meta,
        notes=notes,
        files=["report.html", *written],
        units=UNITS,
    )
    echo(f"wrote {report.name} and {', '.join(written)} to {out}/")
    echo(f"open {report.resolve()} in a browser")
    return out
