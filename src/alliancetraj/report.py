"""A self-contained HTML report of a classification (figures embedded as PNG).

:func:`write_report` renders a classification (and, given one, an outcome fit) as a
paper's results section in one file that opens anywhere without a network: a
methods paragraph written from the settings (:mod:`alliancetraj.report_text`), how
to read class probabilities, the class summary, the class probabilities, the
trajectories by class, example dyads chosen by a stated rule with their four
probabilities, one effects table with one forest plot and, where the true classes
are known (simulated data), the confusion table of truth against estimate. Figures
are PNG images embedded as base64 ``data:`` URIs; there is no external CSS, script
or font.

matplotlib is imported when a report is built, never at ``import alliancetraj``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .metrics import confusion_matrix
from .report_text import (
    class_label,
    effects_sentence,
    how_to_read,
    methods_paragraphs,
)
from .results import CLASSES, ClassificationResult

__all__ = ["EXAMPLE_RULE", "build_report", "confusion_table", "example_dyads",
           "figure_to_data_uri", "write_report"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em;
       margin-top: 1.8em; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
table.data { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
table.data th, table.data td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
table.data th { background: #f3f3f3; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #555; }
.note { background: #fff6d5; border: 1px solid #e6c65c; padding: 0.5em 0.8em; margin: 0.5em 0; }
.small { font-size: 0.85em; color: #555; }
.guide { background: #eef4fb; border-left: 4px solid #0072B2; padding: 0.4em 0.9em; }
table.data td:first-child, table.data th:first-child { text-align: left; }
"""

#: Readable column headers of the report's tables.
_HEADERS = {
    "n_dyads": "Dyads (most probable class)", "share": "Share",
    "expected_share": "Expected share", "mean_probability": "Mean probability of its class",
    "estimate": "Estimate", "std_error": "Std. error", "ci_low": "CI low",
    "ci_high": "CI high", "p_value": "p",
}


# ------------------------------------------------------------------------------ pieces
def figure_to_data_uri(fig: Any, *, dpi: int = 100) -> str:
    """Render a matplotlib figure to a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(**kwargs: Any):
    from matplotlib.figure import Figure

    # Figure objects outside pyplot: no GUI backend needed and nothing left open.
    return Figure(layout="constrained", **kwargs)


def _img(fig: Any, alt: str, caption: str, gid: str) -> str:
    return (
        f'<figure id="{html.escape(gid)}"><img alt="{html.escape(alt)}" '
        f'src="{figure_to_data_uri(fig)}"><figcaption>{html.escape(caption)}</figcaption>'
        "</figure>"
    )


def _table(frame: pd.DataFrame, table_id: str, *, digits: int = 3, index: bool = True,
           headers: Mapping[str, str] | None = None) -> str:
    shown = frame.copy()
    for col in shown.columns:
        if col == "p_value":
            shown[col] = [_format_p(v) for v in shown[col]]
        elif pd.api.types.is_float_dtype(shown[col]):
            shown[col] = [("" if not np.isfinite(v) else f"{v:.{digits}f}") for v in shown[col]]
    shown = shown.rename(columns={**_HEADERS, **(headers or {})})
    shown.index = pd.Index([class_label(v) for v in shown.index],
                           name=(str(shown.index.name).capitalize()
                                 if shown.index.name else ""))
    shown.columns.name = None
    if index:
        shown = shown.reset_index()
    out = shown.to_html(
        index=False, escape=True, border=0, classes="data", table_id=table_id, na_rep=""
    )
    return out


def _format_p(p: Any) -> str:
    try:
        p = float(p)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def confusion_table(truth: pd.Series | pd.DataFrame, result: ClassificationResult) -> pd.DataFrame:
    """Counts of dyads by true class (rows) and most probable class (columns).

    ``truth`` is a Series of true classes or a truth table with ``true_class``
    (indexed by dyad); dyads missing from either side are left out. The counts are
    :func:`alliancetraj.metrics.confusion_matrix`'s, with the report's axis names.
    """
    true = truth["true_class"] if isinstance(truth, pd.DataFrame) else truth
    true = true.astype(object).astype(str)
    est = result.labels.astype(object).astype(str)
    common = est.index.intersection(true.index)
    table = confusion_matrix(true.loc[common], est.loc[common])
    table.index = pd.Index(list(CLASSES), name="true class")
    table.columns = pd.Index(list(CLASSES), name="estimated class")
    return table.astype(np.int64)


def _confusion_html(table: pd.DataFrame) -> str:
    """The confusion matrix as an HTML table shaded by row share (a heat map in HTML)."""
    rows = table.to_numpy()
    totals = rows.sum(axis=1, keepdims=True)
    share = np.divide(rows, totals, out=np.zeros(rows.shape, float), where=totals > 0)
    head = "".join(f"<th>{html.escape(class_label(c))}</th>" for c in table.columns)
    body = []
    for i, name in enumerate(table.index):
        cells = []
        for j in range(len(table.columns)):
            shade = round(255 - 160 * float(share[i, j]))
            diag = " font-weight:700;" if i == j else ""
            cells.append(
                f'<td style="background: rgb({shade},{shade},255);{diag}" '
                f'title="{share[i, j]:.0%} of true {html.escape(class_label(name))}">{rows[i, j]}</td>'
            )
        body.append(
            f"<tr><th>{html.escape(class_label(name))}</th>{''.join(cells)}"
            f"<td>{int(totals[i, 0])}</td></tr>"
        )
    return (
        '<table class="data" id="confusion-table"><thead><tr><th>True \\ estimated</th>'
        f"{head}<th>Total</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


#: How :func:`example_dyads` chooses, in the report's words.
EXAMPLE_RULE = (
    "For each class, the dyad with the highest probability of that class (its clearest "
    "example); then the dyad whose most probable class is least certain."
)


def example_dyads(result: ClassificationResult, n: int = 5) -> list[Hashable]:
    """Dyads worth showing, by a fixed rule (:data:`EXAMPLE_RULE`).

    For each class in :data:`~alliancetraj.CLASSES` order, the dyad with the highest
    probability of that class among dyads whose most probable class it is (classes no
    dyad is assigned to are skipped); then the least certain dyad (lowest highest
    probability) not yet chosen. The first ``n`` are returned.
    """
    probs = result.probabilities
    labels = result.labels.astype(str)
    chosen: list[Hashable] = []
    for cls in CLASSES:
        members = [d for d in labels.index[labels == cls] if d not in chosen]
        if members:
            chosen.append(probs.loc[members, cls].idxmax())
    rest = probs.drop(index=chosen)
    if len(rest):
        chosen.append(rest.max(axis=1).idxmin())
    return chosen[:n]


def _dyads_table(result: ClassificationResult, chosen: Sequence[Hashable],
                 truth: pd.Series | pd.DataFrame | None) -> str:
    probs = result.probabilities.loc[list(chosen), list(CLASSES)]
    table = pd.DataFrame({"Most probable class": [class_label(result.labels[d]) for d in chosen]},
                         index=pd.Index([str(d) for d in chosen], name="Dyad"))
    for cls in CLASSES:
        table[f"P({class_label(cls)})"] = [f"{v:.2f}" for v in probs[cls]]
    if truth is not None:
        true = truth["true_class"] if isinstance(truth, pd.DataFrame) else truth
        table["True class (simulated)"] = [class_label(true.get(d, "")) for d in chosen]
    return table.reset_index().to_html(index=False, escape=True, border=0, classes="data",
                                       table_id="dyads-table")


def _effects_of(effects: Any) -> pd.DataFrame | None:
    if effects is None:
        return None
    if isinstance(effects, pd.DataFrame):
        return effects
    return getattr(effects, "effects", None)


# ------------------------------------------------------------------------------ report
def build_report(
    result: ClassificationResult,
    sessions: pd.DataFrame,
    *,
    effects: Any = None,
    truth: pd.Series | pd.DataFrame | None = None,
    title: str = "alliancetraj report",
    meta: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    examples: Sequence[Hashable] | None = None,
    files: Sequence[str] = (),
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    units: str | None = None,
    scale: tuple[float, float] | None = None,
) -> str:
    """The report as one HTML string (see :func:`write_report`)."""
    from ._version import __version__
    from .plot import plot_dyad, plot_effects, plot_probabilities, plot_trajectories

    cols = {"dyad": dyad, "session": session, "score": score}
    esc = html.escape
    parts: list[str] = []
    info = {"alliancetraj version": __version__}
    info.update({str(k): v for k, v in (meta or {}).items()})
    info.setdefault("classification method", result.method)
    info.setdefault("generated", _dt.datetime.now().strftime("%Y-%m-%d %H:%M"))
    meta_html = "".join(f"<dt>{esc(str(k))}</dt><dd>{esc(str(v))}</dd>" for k, v in info.items())
    parts.append(f'<header id="header"><h1>{esc(title)}</h1><dl class="meta">{meta_html}</dl>'
                 "</header>")
    for note in notes:
        parts.append(f'<p class="note">{esc(note)}</p>')

    fit = effects if effects is not None and not isinstance(effects, pd.DataFrame) else None
    methods = methods_paragraphs(result, sessions, fit, units=units, scale=scale, **cols)
    parts.append('<section id="methods"><h2>Methods</h2>'
                 + "".join(f"<p>{p}</p>" for p in methods) + "</section>")
    parts.append('<section id="how-to-read" class="guide"><h3>How to read class probabilities'
                 "</h3>" + "".join(f"<p>{p}</p>" for p in how_to_read(result)) + "</section>")

    # classes
    parts.append(
        '<section id="summary"><h2>Classes</h2>'
        '<p class="small">Dyads: counted by their most probable class. Expected share: the '
        "mean probability of the class over all dyads. Mean probability of its class: over "
        "the dyads assigned to the class.</p>"
        f"{_table(result.summary(), 'summary-table')}</section>"
    )
    fig = _figure(figsize=(9, 3.6))
    plot_probabilities(result, ax=fig.subplots())
    parts.append(
        '<section id="probabilities"><h2>Class probabilities</h2>'
        + _img(fig, "class probabilities of every dyad, stacked bars",
               "Each bar is one dyad; colours are its four class probabilities (dyads grouped "
               "by most probable class, most certain first).", "figure-probabilities")
        + "</section>"
    )
    fig = _figure(figsize=(12, 3.4))
    axes = fig.subplots(1, len(CLASSES), sharex=True, sharey=True)
    plot_trajectories(sessions, result, facet=True, ax=axes, **cols)
    parts.append(
        '<section id="trajectories"><h2>Trajectories by most probable class</h2>'
        + _img(fig, "alliance trajectories by most probable class",
               "Thin lines: dyads; thick lines: the class mean at each session.",
               "figure-trajectories")
        + "</section>"
    )

    # example dyads
    chosen = list(examples) if examples is not None else example_dyads(result)
    if chosen:
        rule = ("Chosen by the caller." if examples is not None else f"Chosen by a fixed rule: "
                f"{EXAMPLE_RULE[0].lower()}{EXAMPLE_RULE[1:]}")
        figs = []
        for i, d in enumerate(chosen):
            fig = _figure(figsize=(6.4, 3.6))
            plot_dyad(sessions, result, d, ax=fig.subplots(), **cols)
            p = result.probabilities.loc[d]
            cap = (f"Dyad {d}: " + ", ".join(f"{class_label(c)} {p[c]:.2f}" for c in CLASSES)
                   + ".")
            figs.append(_img(fig, f"dyad {d}", cap, f"figure-dyad-{i}"))
        parts.append('<section id="dyads"><h2>Example dyads</h2>'
                     f"<p>{esc(rule)}</p>" + _dyads_table(result, chosen, truth)
                     + "".join(figs) + "</section>")

    # outcomes: one table, one forest plot, one sentence per effect
    table = _effects_of(effects)
    if table is not None:
        fig = _figure(figsize=(9, 0.7 * max(len(table), 2) + 1.3))
        plot_effects(effects, ax=fig.subplots(), units=units)
        alpha = (getattr(fit, "settings", None) or {}).get("alpha", 0.05)
        unit = f" ({units})" if units and getattr(fit, "family", "") != "binomial" else ""
        body = (f"<p>{esc(effects_sentence(fit if fit is not None else table, units))}</p>"
                + _table(table, "effects-table", headers={
                    "estimate": f"Estimate{unit}", "ci_low": f"{1 - alpha:.0%} CI low",
                    "ci_high": f"{1 - alpha:.0%} CI high"})
                + _img(fig, "forest plot of class effects on the outcome",
                       f"Estimates with {1 - alpha:.0%} confidence intervals, relative to the "
                       f"{class_label(getattr(fit, 'reference', 'linear'))} class.",
                       "figure-effects"))
        for note in getattr(fit, "notes", None) or []:
            body += f'<p class="note">{esc(str(note))}</p>'
        outcome = getattr(fit, "outcome", None)
        head = f"Classes and {esc(str(outcome))}" if outcome else "Classes and outcome"
        parts.append(f'<section id="effects"><h2>{head}</h2>{body}</section>')
    else:
        parts.append('<section id="effects"><h2>Classes and outcome</h2>'
                     '<p class="note">No outcome model in this report.</p></section>')

    # truth
    if truth is not None:
        cm = confusion_table(truth, result)
        n = int(cm.to_numpy().sum())
        acc = float(np.trace(cm.to_numpy())) / n if n else float("nan")
        parts.append(
            '<section id="confusion"><h2>Truth against estimate</h2>'
            f"<p>The data are simulated, so the true classes are known: {acc:.1%} of "
            f"{n} dyads are classified correctly (rows: true class; columns: most probable "
            "class; shading: share of the row).</p>" + _confusion_html(cm) + "</section>"
        )

    if files:
        items = "".join(f"<li><code>{esc(f)}</code></li>" for f in files)
        parts.append(f'<section id="files"><h2>Files</h2><ul>{items}</ul></section>')

    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(
    path: str | os.PathLike, result: ClassificationResult, sessions: pd.DataFrame, **kwargs: Any
) -> Path:
    """Write a self-contained HTML report of a classification; return its path.

    Parameters
    ----------
    path : path
        The HTML file to write (its folder is created).
    result : ClassificationResult
    sessions : DataFrame
        The long session data the result was fitted to.
    effects : relate_outcomes fit or effects DataFrame, optional
        Adds the outcome model to the methods, one effects table and one forest plot.
    truth : Series or truth table, optional
        True classes (simulated data): adds the confusion table.
    title : str
    meta : mapping, optional
        Extra header lines (e.g. ``{"simulated dyads": 300, "seed": 1}``).
    notes : sequence of str
        Warnings shown in a box under the header (e.g. a fallback that was used).
    examples : sequence, optional
        Dyads to draw (default: :func:`example_dyads`).
    files : sequence of str
        Names of files written alongside, listed at the end.
    dyad, session, score : column names of ``sessions``
    units : str, optional
        The outcome's units (e.g. ``"RAS points"``), named in the methods, the table
        and the forest plot.
    scale : (low, high), optional
        The declared score range, named in the methods.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, pathlib, alliancetraj as at
    >>> from alliancetraj.report import write_report
    >>> cohort = at.simulate_cohort(n_dyads=12, seed=2)
    >>> res = at.ClassificationResult.from_labels(cohort.truth["true_class"], method="truth")
    >>> out = write_report(pathlib.Path(tempfile.mkdtemp()) / "r.html", res, cohort.sessions)
    >>> out.read_text().startswith("<!DOCTYPE html>")
    True
    """
    from ._files import write_text_atomic

    path = Path(path)
    return write_text_atomic(path, build_report(result, sessions, **kwargs))
