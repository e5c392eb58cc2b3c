"""Scores of a classification on a world, and the per-world and worst-world tables.

Per world and method: macro-F1, per-class recall, top-label ECE (10 bins), the
class-share error (largest absolute difference between the estimated share of a
class, the mean of its probability over the classified dyads, and its true share
among them) and the share of true ruptures located within one session. The scores
of :func:`alliancetraj.metrics.score_result` come along. The headline is the
**worst world**: per method, the lowest macro-F1 (median over replicates) over the
worlds, and the world where it happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._markdown import fmt_number, fmt_seconds, frame_table
from ..metrics import score_result
from ..results import CLASSES

__all__ = ["WORLD_SCORES", "score_world", "world_table", "worlds_summary", "worst_worlds"]

#: The per-world columns, in the order of the tables.
WORLD_SCORES: tuple[str, ...] = (
    "macro_f1",
    *(f"recall_{c}" for c in CLASSES),
    "ece",
    "share_error",
    "rupture_within_1",
    "accuracy",
    "brier",
)


def score_world(result: Any, truth: pd.DataFrame) -> dict[str, Any]:
    """Every score of one result on one world's cohort.

    Parameters
    ----------
    result : ClassificationResult
    truth : DataFrame
        The ``truth`` of the world's :class:`~alliancetraj.Cohort`.

    Returns
    -------
    dict
        The scalars of :func:`~alliancetraj.metrics.score_result` plus
        ``recall_<class>`` (NaN for a class absent from the classified dyads),
        ``share_<class>`` (estimated), ``true_share_<class>`` and ``share_error``;
        and the tables ``confusion`` and ``reliability``.

    Examples
    --------
    >>> import alliancetraj as at
    >>> from alliancetraj.worlds import simulate_world, score_world
    >>> cohort = simulate_world("brief", n_dyads=20, seed=1)
    >>> truth = cohort.truth
    >>> perfect = at.ClassificationResult.from_labels(
    ...     truth["true_class"].astype(str), method="oracle")
    >>> score_world(perfect, truth)["macro_f1"]
    1.0
    """
    scores = score_result(result, truth)
    cm = scores["confusion"].to_numpy(dtype=float)
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(totals > 0, np.diag(cm) / totals, np.nan)
    true_share = totals / totals.sum() if totals.sum() else np.full(len(CLASSES), np.nan)
    est_share = result.probabilities.loc[:, list(CLASSES)].to_numpy(dtype=float).mean(axis=0)
    for j, c in enumerate(CLASSES):
        scores[f"recall_{c}"] = float(recall[j])
        scores[f"share_{c}"] = float(est_share[j])
        scores[f"true_share_{c}"] = float(true_share[j])
    scores["share_error"] = float(np.max(np.abs(est_share - true_share)))
    return scores


def world_table(results: pd.DataFrame, columns: Sequence[str] = WORLD_SCORES) -> pd.DataFrame:
    """Median over replicates per world, cohort size and method (one row each).

    ``results`` has one row per world x method x replicate with columns ``world``,
    ``n_dyads``, ``method`` and the scores; rows with an ``error`` are left out.
    """
    ok = results
    if "error" in results:
        ok = results[results["error"].fillna("") == ""]
    cols = [c for c in columns if c in ok]
    keys = ["world", "n_dyads", "method"]
    table = ok.groupby(keys, sort=False)[cols].median()
    table.insert(0, "replicates", ok.groupby(keys, sort=False).size())
    return table.reset_index()


def worst_worlds(results: pd.DataFrame) -> pd.DataFrame:
    """Per method and cohort size, the worst world on each headline score.

    Columns: ``worst_macro_f1`` and ``worst_world`` (where it happens), and over all
    worlds the lowest ``linear`` recall, the largest ECE and class-share error and the
    lowest rupture location within one session, each with its world.
    """
    table = world_table(results)
    rows = []
    for (method, n), g in table.groupby(["method", "n_dyads"], sort=False):
        g = g.set_index("world")
        row: dict[str, Any] = {"method": method, "n_dyads": n, "worlds": len(g)}
        for col, how, label in (
            ("macro_f1", "min", "macro_f1"),
            ("recall_linear", "min", "linear_recall"),
            ("ece", "max", "ece"),
            ("share_error", "max", "share_error"),
            ("rupture_within_1", "min", "rupture_within_1"),
        ):
            values = g[col].dropna()
            if values.empty:
                row[f"worst_{label}"], row[f"{label}_world"] = np.nan, ""
                continue
            where = values.idxmin() if how == "min" else values.idxmax()
            row[f"worst_{label}"] = float(values[where])
            row[f"{label}_world"] = str(where)
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.rename(columns={"macro_f1_world": "worst_world"})


def worlds_summary(results: pd.DataFrame, table: pd.DataFrame, worst: pd.DataFrame,
                   meta: dict[str, Any], descriptions: str) -> str:
    """The Markdown summary of a worlds benchmark: command, load, worlds, the worst-world
    headline and every world (``meta`` as written by :func:`alliancetraj.bench.run_worlds`;
    ``descriptions``: the Markdown list of the worlds, from
    :func:`alliancetraj.worlds.describe_worlds`).
    """
    parts = [
        "# alliancetraj on independent worlds",
        "",
        f"Made by `{meta['command']}` on {meta['date']} ({meta['machine']['cpu_count']} "
        f"CPU(s); load average {meta['load_average_before']} before, "
        f"{meta['load_average_after']} after; {meta['wall_seconds']:.0f} s in all).",
        "",
        "## Worlds",
        "",
        descriptions,
        "",
    ]
    if meta.get("skipped"):
        parts += ["Skipped: " + "; ".join(f"`{k}` ({v})" for k, v in meta["skipped"].items()),
                  ""]
    if len(worst):
        shown = worst.copy()
        for c in shown.columns:
            if c.startswith("worst_") and c != "worst_world":
                shown[c] = shown[c].map(fmt_number)
        rounded = table.copy()
        for c in rounded.columns[4:]:
            rounded[c] = rounded[c].map(fmt_seconds if c == "runtime_s" else fmt_number)
        parts += [
            "## Headline: the worst world",
            "",
            f"Per method and cohort size, medians over {meta['n_seeds']} replicate(s) per "
            "world, then the worst world on each score.",
            "",
            frame_table(shown),
            "",
            "## Every world",
            "",
            "Median over replicates. recall_*: share of a true class labelled so; ece: "
            "top-label ECE, 10 bins; share_error: largest |mean probability - true share| "
            "over the classes; rupture_within_1: share of true ruptures located within one "
            "session; runtime_s: seconds of the method's call.",
            "",
            frame_table(rounded),
            "",
        ]
    errors = results[results["error"].fillna("") != ""]
    if len(errors):
        parts += ["## Failures", ""]
        parts += [f"- `{r.method}` on `{r.world}` replicate {r.replicate}: {r.error}"
                  for r in errors.itertuples()]
        parts += [""]
    return "\n".join(parts)
