"""A self-contained HTML report of a classification (figures embedded as PNG).

:func:`write_report` renders what :func:`alliancetraj.demo.run_demo` (and anyone with a
:class:`~alliancetraj.ClassificationResult`) wants to show in one file that opens
anywhere without a network: a header saying what was analysed, the class summary,
the class probabilities, the trajectories by class, a few example dyads, the
outcome effects with a forest plot and, where the true classes are known
(simulated data), the confusion matrix of truth against estimate. Figures are PNG
images embedded as base64 ``data:`` URIs; there is no external CSS, script or font.

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

from .results import CLASSES, ClassificationResult

__all__ = ["build_report", "confusion_table", "example_dyads", "figure_to_data_uri", "write_report"]

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
"""


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


def _table(frame: pd.DataFrame, table_id: str, *, digits: int = 3, index: bool = True) -> str:
    shown = frame.copy()
    for col in shown.columns:
        if col == "p_value":
            shown[col] = [_format_p(v) for v in shown[col]]
        elif pd.api.types.is_float_dtype(shown[col]):
            shown[col] = [("" if not np.isfinite(v) else f"{v:.{digits}f}") for v in shown[col]]
    out = shown.to_html(
        index=index, escape=True, border=0, classes="data", table_id=table_id, na_rep=""
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
    (indexed by dyad); dyads missing from either side are left out.
    """
    true = truth["true_class"] if isinstance(truth, pd.DataFrame) else truth
    true = true.astype(object).astype(str)
    est = result.labels.astype(object).astype(str)
    common = est.index.intersection(true.index)
    table = pd.crosstab(
        pd.Categorical(true.loc[common], categories=list(CLASSES)),
        pd.Categorical(est.loc[common], categories=list(CLASSES)),
        dropna=False,
    )
    table.index = pd.Index(list(CLASSES), name="true class")
    table.columns = pd.Index(list(CLASSES), name="estimated class")
    return table.astype(np.int64)


def _confusion_html(table: pd.DataFrame) -> str:
    """The confusion matrix as an HTML table shaded by row share (a heat map in HTML)."""
    rows = table.to_numpy()
    totals = rows.sum(axis=1, keepdims=True)
    share = np.divide(rows, totals, out=np.zeros(rows.shape, float), where=totals > 0)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for i, name in enumerate(table.index):
        cells = []
        for j in range(len(table.columns)):
            shade = round(255 - 160 * float(share[i, j]))
            diag = " font-weight:700;" if i == j else ""
            cells.append(
                f'<td style="background: rgb({shade},{shade},255);{diag}" '
                f'title="{share[i, j]:.0%} of true {html.escape(name)}">{rows[i, j]}</td>'
            )
        body.append(
            f"<tr><th>{html.escape(name)}</th>{''.join(cells)}<td>{int(totals[i, 0])}</td></tr>"
        )
    return (
        '<table class="data" id="confusion-table"><thead><tr><th>true \\ estimated</th>'
        f"{head}<th>total</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def example_dyads(result: ClassificationResult, n: int = 3) -> list[Hashable]:
    """Dyads worth showing: the most certain rupture–repair and unrepaired rupture,
    then the least certain dyad, then the most certain of the other classes."""
    probs = result.probabilities
    labels = result.labels.astype(str)
    chosen: list[Hashable] = []

    def most_certain(cls: str) -> Hashable | None:
        members = labels.index[labels == cls]
        members = [d for d in members if d not in chosen]
        if not members:
            return None
        return probs.loc[members, cls].idxmax()

    for cls in ("v_shaped", "unrepaired_rupture"):
        pick = most_certain(cls)
        if pick is not None:
            chosen.append(pick)
    rest = probs.drop(index=chosen)
    if len(rest):
        chosen.append(rest.max(axis=1).idxmin())
    for cls in ("u_shaped", "linear"):
        pick = most_certain(cls)
        if pick is not None:
            chosen.append(pick)
    return chosen[:n]


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
    parts: list[str] = []
    info = {"alliancetraj version": __version__}
    info.update({str(k): v for k, v in (meta or {}).items()})
    info.setdefault("classification method", result.method)
    info.setdefault(
        "probabilities",
        "exact posterior probabilities"
        if result.exact
        else "not exact (sampled, approximate or hard labels)",
    )
    info.setdefault("dyads classified", len(result))
    if result.excluded:
        info.setdefault("dyads excluded (too few sessions)", len(result.excluded))
    info.setdefault("generated", _dt.datetime.now().strftime("%Y-%m-%d %H:%M"))
    meta_html = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in info.items()
    )
    parts.append(
        f'<header id="header"><h1>{html.escape(title)}</h1>'
        f'<dl class="meta">{meta_html}</dl></header>'
    )
    for note in notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')

    # classes
    summary = result.summary()
    parts.append(
        '<section id="summary"><h2>Classes</h2>'
        '<p class="small">n_dyads and share: dyads by most probable class; '
        "expected_share: mean probability of the class over all dyads; "
        "mean_probability: mean probability of the assigned class.</p>"
        f"{_table(summary, 'summary-table')}</section>"
    )

    fig = _figure(figsize=(9, 3.6))
    plot_probabilities(result, ax=fig.subplots())
    parts.append(
        '<section id="probabilities"><h2>Class probabilities</h2>'
        + _img(
            fig,
            "class probabilities of every dyad, stacked bars",
            "Each bar is one dyad; colours are its class probabilities.",
            "figure-probabilities",
        )
        + "</section>"
    )

    fig = _figure(figsize=(12, 3.4))
    axes = fig.subplots(1, len(CLASSES), sharex=True, sharey=True)
    plot_trajectories(sessions, result, facet=True, ax=axes, **cols)
    parts.append(
        '<section id="trajectories"><h2>Trajectories by estimated class</h2>'
        + _img(
            fig,
            "alliance trajectories by estimated class",
            "Thin lines: dyads; thick lines: class mean per session.",
            "figure-trajectories",
        )
        + "</section>"
    )

    # example dyads
    chosen = list(examples) if examples is not None else example_dyads(result)
    if chosen:
        figs = []
        for i, d in enumerate(chosen):
            fig = _figure(figsize=(6.4, 3.6))
            plot_dyad(sessions, result, d, ax=fig.subplots(), **cols)
            cap = f"Dyad {d}: most probable class {result.labels[d]}"
            if truth is not None:
                true = truth["true_class"] if isinstance(truth, pd.DataFrame) else truth
                if d in true.index:
                    cap += f" (true class {true[d]})"
            figs.append(_img(fig, f"dyad {d}", cap + ".", f"figure-dyad-{i}"))
        parts.append('<section id="dyads"><h2>Example dyads</h2>' + "".join(figs) + "</section>")

    # outcomes
    table = _effects_of(effects)
    if table is not None:
        fig = _figure(figsize=(7.5, 0.6 * max(len(table), 2) + 1.4))
        plot_effects(effects, ax=fig.subplots())
        label = getattr(effects, "summary", None)
        detail = ""
        if callable(label):
            detail = f'<pre class="small">{html.escape(label())}</pre>'
        parts.append(
            '<section id="effects"><h2>Classes and outcome</h2>'
            + _table(table, "effects-table")
            + _img(
                fig,
                "forest plot of class effects on the outcome",
                "Estimates with 95% intervals, relative to the reference class.",
                "figure-effects",
            )
            + detail
            + "</section>"
        )
    else:
        parts.append(
            '<section id="effects"><h2>Classes and outcome</h2>'
            '<p class="note">No outcome model in this report.</p></section>'
        )

    # truth
    if truth is not None:
        cm = confusion_table(truth, result)
        n = int(cm.to_numpy().sum())
        acc = float(np.trace(cm.to_numpy())) / n if n else float("nan")
        section = (
            '<section id="confusion"><h2>Truth against estimate</h2>'
            f"<p>The data are simulated, so the true classes are known: {acc:.1%} of "
            f"{n} dyads are classified correctly (rows: true class; shading: share "
            "of the row).</p>" + _confusion_html(cm)
        )
        section += _img(
            _confusion_figure(cm),
            "confusion matrix, truth against estimate",
            "Share of each true class (row) assigned to each estimated class (column).",
            "figure-confusion",
        )
        parts.append(section + "</section>")

    if files:
        items = "".join(f"<li><code>{html.escape(f)}</code></li>" for f in files)
        parts.append(f'<section id="files"><h2>Files</h2><ul>{items}</ul></section>')

    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _confusion_figure(table: pd.DataFrame):
    from .plot.benchmark import plot_confusion_matrix

    fig = _figure(figsize=(5.6, 4.4))
    plot_confusion_matrix(table, ax=fig.subplots(), title="truth against most probable class")
    return fig


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
        Adds the effects table and a forest plot.
    truth : Series or truth table, optional
        True classes (simulated data): adds the confusion matrix.
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
