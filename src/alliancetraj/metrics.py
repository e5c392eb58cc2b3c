"""Scores of a classification against the simulated truth.

Plain functions on labels, probabilities and change points, used by the benchmark
harness (:mod:`alliancetraj.bench`) and usable on their own. Every function takes
the true and the predicted values aligned on the same dyads (pandas objects are
aligned on their index; arrays are taken in order) and the class order of
:data:`alliancetraj.CLASSES`.

Definitions
-----------
accuracy
    Share of dyads whose predicted label equals the true class.
F1 (per class)
    ``2 TP / (2 TP + FP + FN)``; NaN for a class that is neither true nor predicted
    for any dyad (instead of scikit-learn's 0 with a warning).
macro-F1
    Unweighted mean of the per-class F1 over the classes where it is defined.
Brier score (multiclass)
    Mean over dyads of ``sum_k (p_k - y_k)^2`` with ``y`` the one-hot truth; 0 is
    perfect, 2 is the worst possible, 0.75 is what the uniform ``p = 1/4`` scores.
expected calibration error (ECE)
    *Top-label* ECE: the confidence of a dyad is its largest class probability and
    it is "correct" when that class (the predicted label) is the true one. The
    confidences are binned into ``n_bins`` (default 10) equal-width bins on [0, 1]
    (``[0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]``, the last bin closed) and
    ``ECE = sum_b (n_b / n) |accuracy_b - mean confidence_b|``.
    *Classwise* ECE: for every class ``k`` the probabilities ``p_k`` of all dyads are
    binned the same way and compared with the observed frequency of class ``k`` in
    each bin; the classwise ECE is the mean of the four per-class ECEs.
    A method with hard labels (one-hot probabilities) has top-label ECE
    ``1 - accuracy``.
change-point location
    Over the dyads whose *true* trajectory has the change point (``rupture_session``:
    ``v_shaped`` and ``unrepaired_rupture``; ``repair_session``: ``v_shaped``), the
    share whose estimate, rounded to the nearest session, equals the true session
    (``exact``) or is within one session of it (``within_1``). A missing estimate
    (NaN: the method saw no such change point) counts as a miss; ``located`` is the
    share with an estimate at all and ``mae`` the mean absolute error among those.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .results import CLASSES

__all__ = [
    "DEFAULT_BINS",
    "accuracy",
    "brier_score",
    "changepoint_location",
    "classwise_ece",
    "confusion_matrix",
    "expected_calibration_error",
    "f1_per_class",
    "macro_f1",
    "reliability_means",
    "reliability_table",
    "score_result",
]

#: Number of equal-width confidence bins on [0, 1] used by the calibration scores.
DEFAULT_BINS = 10


# ----------------------------------------------------------------------------- helpers
def _codes(labels: Any, classes: Sequence[str]) -> np.ndarray:
    """Integer codes of ``labels`` in ``classes``; raises on unknown labels."""
    values = labels.to_numpy() if isinstance(labels, (pd.Series, pd.Index)) else labels
    values = np.asarray(values, dtype=object)
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([lookup[v] for v in values], dtype=np.int64)
    except KeyError:
        unknown = sorted({str(v) for v in values if v not in lookup})
        raise ValueError(
            f"Labels {unknown} are not classes. Valid classes: {list(classes)}."
        ) from None


def _aligned(y_true: Any, other: Any) -> tuple[Any, Any]:
    """Align two pandas objects on the index of ``other``; arrays must match in length."""
    if isinstance(y_true, pd.Series) and isinstance(other, (pd.Series, pd.DataFrame)):
        missing = other.index.difference(y_true.index)
        if len(missing):
            raise ValueError(
                f"{len(missing)} dyad(s) of the prediction have no truth, e.g. {list(missing[:3])}."
            )
        return y_true.reindex(other.index), other
    n_true = len(y_true)
    if n_true != len(other):
        raise ValueError(
            f"The truth and the prediction must have the same length. Got {n_true} and "
            f"{len(other)}."
        )
    return y_true, other


def _prob_matrix(probabilities: Any, classes: Sequence[str]) -> np.ndarray:
    if isinstance(probabilities, pd.DataFrame):
        missing = [c for c in classes if c not in probabilities.columns]
        if missing:
            raise ValueError(f"The probabilities lack the class column(s) {missing}.")
        p = probabilities.loc[:, list(classes)].to_numpy(dtype=float)
    else:
        p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(classes):
        raise ValueError(
            f"The probabilities must have shape (n_dyads, {len(classes)}). Got {p.shape} instead."
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("The probabilities must be finite and non-negative.")
    return p


def _check_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"The 'n_bins' parameter must be an int >= 1. Got {n_bins!r} instead.")
    return int(n_bins)


def _bin_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins on [0, 1]; the last bin is closed (1.0 falls in it)."""
    return np.clip(np.floor(values * n_bins).astype(np.int64), 0, n_bins - 1)


# ------------------------------------------------------------------------ hard labels
def confusion_matrix(y_true: Any, y_pred: Any, *, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """Counts of dyads by true class (rows) and predicted class (columns).

    Examples
    --------
    >>> from alliancetraj.metrics import confusion_matrix
    >>> cm = confusion_matrix(["linear", "v_shaped"], ["linear", "linear"])
    >>> int(cm.loc["v_shaped", "linear"])
    1
    """
    y_true, y_pred = _aligned(y_true, y_pred)
    k = len(classes)
    t = _codes(y_true, classes)
    p = _codes(y_pred, classes)
    counts = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    return pd.DataFrame(
        counts,
        index=pd.Index(list(classes), name="true"),
        columns=pd.Index(list(classes), name="predicted"),
    )


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of dyads whose predicted label is the true class (NaN for no dyads)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    t = np.asarray(y_true, dtype=object)
    p = np.asarray(y_pred, dtype=object)
    return float(np.mean(t == p)) if len(t) else float("nan")


def f1_per_class(y_true: Any, y_pred: Any, *, classes: Sequence[str] = CLASSES) -> pd.Series:
    """F1 score of every class; NaN for a class neither true nor predicted for any dyad."""
    cm = confusion_matrix(y_true, y_pred, classes=classes).to_numpy()
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
    return pd.Series(f1, index=pd.Index(list(classes), name="class"), name="f1")


def macro_f1(y_true: Any, y_pred: Any, *, classes: Sequence[str] = CLASSES) -> float:
    """Unweighted mean of the per-class F1 over the classes where it is defined."""
    f1 = f1_per_class(y_true, y_pred, classes=classes).to_numpy()
    return float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan")


# ---------------------------------------------------------------------- probabilities
def brier_score(y_true: Any, probabilities: Any, *, classes: Sequence[str] = CLASSES) -> float:
    """Multiclass Brier score: mean over dyads of ``sum_k (p_k - y_k)^2`` (0 best, 2 worst).

    Examples
    --------
    >>> import numpy as np
    >>> from alliancetraj.metrics import brier_score
    >>> brier_score(["linear"], np.full((1, 4), 0.25))
    0.75
    """
    y_true, probabilities = _aligned(y_true, probabilities)
    p = _prob_matrix(probabilities, classes)
    if len(p) == 0:
        return float("nan")
    onehot = np.zeros_like(p)
    onehot[np.arange(len(p)), _codes(y_true, classes)] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def reliability_table(
    y_true: Any,
    probabilities: Any,
    *,
    n_bins: int = DEFAULT_BINS,
    kind: str = "top_label",
    classes: Sequence[str] = CLASSES,
) -> pd.DataFrame:
    """Binned confidence against observed frequency (the data of a reliability diagram).

    Parameters
    ----------
    y_true : labels
    probabilities : DataFrame (columns ``classes``) or array (n_dyads, n_classes)
    n_bins : int, default 10
        Equal-width bins on [0, 1], the last one closed.
    kind : {"top_label", "classwise"}
        ``top_label``: one row per bin of the largest probability of each dyad;
        ``observed`` is the share of dyads whose most probable class is true.
        ``classwise``: one row per class and bin of ``p_k`` over all dyads;
        ``observed`` is the share of those dyads whose true class is ``k``.

    Returns
    -------
    pandas.DataFrame
        Columns ``class`` (``"top_label"`` or the class name), ``bin``,
        ``bin_low``, ``bin_high``, ``count``, ``sum_confidence``, ``sum_observed``,
        ``confidence`` (mean) and ``observed`` (mean; NaN in empty bins). The sums
        make tables of several cohorts additive: concatenate, group by ``class`` and
        ``bin`` and sum.
    """
    n_bins = _check_bins(n_bins)
    if kind not in ("top_label", "classwise"):
        raise ValueError(
            f"The 'kind' parameter must be 'top_label' or 'classwise'. Got {kind!r} instead."
        )
    y_true, probabilities = _aligned(y_true, probabilities)
    p = _prob_matrix(probabilities, classes)
    truth = _codes(y_true, classes)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    parts = []
    if kind == "top_label":
        groups = [("top_label", p.max(axis=1), (p.argmax(axis=1) == truth).astype(float))]
    else:
        groups = [(c, p[:, j], (truth == j).astype(float)) for j, c in enumerate(classes)]
    for name, conf, hit in groups:
        b = _bin_index(conf, n_bins)
        count = np.bincount(b, minlength=n_bins)
        parts.append(
            pd.DataFrame(
                {
                    "class": name,
                    "bin": np.arange(n_bins),
                    "bin_low": edges[:-1],
                    "bin_high": edges[1:],
                    "count": count,
                    "sum_confidence": np.bincount(b, weights=conf, minlength=n_bins),
                    "sum_observed": np.bincount(b, weights=hit, minlength=n_bins),
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    return reliability_means(table)


def reliability_means(table: pd.DataFrame) -> pd.DataFrame:
    """Add the mean columns ``confidence`` and ``observed`` to a table of binned sums
    (``count``, ``sum_confidence``, ``sum_observed``), as :func:`reliability_table` does;
    use it again after pooling tables by summing (empty bins get NaN)."""
    table = table.copy()
    count = table["count"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["confidence"] = np.where(count > 0, table["sum_confidence"] / count, np.nan)
        table["observed"] = np.where(count > 0, table["sum_observed"] / count, np.nan)
    return table


def _ece_from_table(table: pd.DataFrame) -> float:
    n = table["count"].sum()
    if n == 0:
        return float("nan")
    gap = (table["sum_observed"] - table["sum_confidence"]).abs()
    return float(gap.sum() / n)


def expected_calibration_error(
    y_true: Any,
    probabilities: Any,
    *,
    n_bins: int = DEFAULT_BINS,
    classes: Sequence[str] = CLASSES,
) -> float:
    """Top-label expected calibration error with ``n_bins`` equal-width bins.

    ``sum_b (n_b / n) |accuracy_b - confidence_b|`` over bins of the largest class
    probability; see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from alliancetraj.metrics import expected_calibration_error
    >>> p = np.array([[0.9, 0.1, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]])
    >>> round(expected_calibration_error(["linear", "u_shaped"], p), 3)
    0.4
    """
    table = reliability_table(y_true, probabilities, n_bins=n_bins, classes=classes)
    return _ece_from_table(table)


def classwise_ece(
    y_true: Any,
    probabilities: Any,
    *,
    n_bins: int = DEFAULT_BINS,
    classes: Sequence[str] = CLASSES,
) -> float:
    """Mean over classes of the calibration error of ``p_k`` against ``1[y = k]``."""
    table = reliability_table(
        y_true, probabilities, n_bins=n_bins, kind="classwise", classes=classes
    )
    return float(np.mean([_ece_from_table(g) for _, g in table.groupby("class", sort=False)]))


# ----------------------------------------------------------------------- change points
def changepoint_location(true_sessions: Any, estimated: Any, *, tolerance: int = 1) -> dict:
    """How well estimated change points match the true ones.

    Parameters
    ----------
    true_sessions : Series or array
        True session of the change point; NaN for dyads without one (they are
        ignored).
    estimated : Series or array
        Estimated session (rounded to the nearest session); NaN where the method
        reports none, which counts as a miss.
    tolerance : int, default 1
        Sessions of slack for ``within`` (``within_1`` in the benchmark).

    Returns
    -------
    dict
        ``n`` (dyads with a true change point), ``exact``, ``within`` (shares of
        ``n``), ``located`` (share with an estimate) and ``mae`` (mean absolute
        error among the located); NaN shares when ``n`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from alliancetraj.metrics import changepoint_location
    >>> changepoint_location([5, 7, np.nan, 4], [5, 8, 3, np.nan])["within"]
    0.6666666666666666
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise ValueError(
            f"The 'tolerance' parameter must be an int >= 0. Got {tolerance!r} instead."
        )
    if isinstance(true_sessions, pd.Series) and isinstance(estimated, pd.Series):
        estimated = estimated.reindex(true_sessions.index)
    t = np.asarray(true_sessions, dtype=float)
    e = np.asarray(estimated, dtype=float)
    if t.shape != e.shape:
        raise ValueError(
            f"The true and estimated change points must have the same length. Got {t.shape} "
            f"and {e.shape}."
        )
    has = np.isfinite(t)
    n = int(has.sum())
    nan = float("nan")
    if n == 0:
        return {"n": 0, "exact": nan, "within": nan, "located": nan, "mae": nan}
    t, e = t[has], np.round(e[has])
    located = np.isfinite(e)
    err = np.abs(e - t)
    return {
        "n": n,
        "exact": float(np.mean(located & (err == 0))),
        "within": float(np.mean(located & (err <= tolerance))),
        "located": float(np.mean(located)),
        "mae": float(np.mean(err[located])) if located.any() else nan,
    }


# --------------------------------------------------------------------------- summary
def score_result(result: Any, truth: pd.DataFrame, *, n_bins: int = DEFAULT_BINS) -> dict:
    """Every benchmark metric of one :class:`~alliancetraj.ClassificationResult`.

    Parameters
    ----------
    result : ClassificationResult
    truth : DataFrame
        The ``truth`` of a simulated :class:`~alliancetraj.Cohort` (index dyad,
        ``true_class``, ``rupture_session``, ``repair_session``).
    n_bins : int, default 10

    Returns
    -------
    dict
        Scalars ``n_dyads`` (in the truth), ``n_classified``, ``accuracy``,
        ``macro_f1``, ``f1_<class>``, ``brier``, ``ece`` (top-label), ``classwise_ece``,
        ``rupture_exact``, ``rupture_within_1``, ``rupture_located``, ``rupture_mae``,
        ``repair_exact``, ``repair_within_1``, ``repair_located``, ``repair_mae``;
        and two tables: ``"confusion"`` (see :func:`confusion_matrix`) and
        ``"reliability"`` (top-label, see :func:`reliability_table`). Scores are over
        the classified dyads; dyads a method excluded count only in ``n_dyads``.
    """
    dyads = result.probabilities.index
    sub = truth.reindex(dyads)
    if sub["true_class"].isna().any():
        raise ValueError("The result holds dyads that are not in the truth table.")
    y_true = pd.Series(np.asarray(sub["true_class"].astype(str), dtype=object), index=dyads)
    y_pred = pd.Series(np.asarray(result.labels.astype(str), dtype=object), index=dyads)
    probs = result.probabilities
    out: dict[str, Any] = {
        "n_dyads": len(truth),
        "n_classified": len(dyads),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred),
    }
    for cls, value in f1_per_class(y_true, y_pred).items():
        out[f"f1_{cls}"] = float(value)
    out["brier"] = brier_score(y_true, probs)
    reliability = reliability_table(y_true, probs, n_bins=n_bins)
    out["ece"] = _ece_from_table(reliability)
    out["classwise_ece"] = classwise_ece(y_true, probs, n_bins=n_bins)
    cps = result.changepoints
    for name, column in (("rupture", "rupture_session"), ("repair", "repair_session")):
        est = cps[column] if column in cps.columns else pd.Series(np.nan, index=dyads)
        loc = changepoint_location(sub[column].astype(float), est.astype(float), tolerance=1)
        out[f"{name}_exact"] = loc["exact"]
        out[f"{name}_within_1"] = loc["within"]
        out[f"{name}_located"] = loc["located"]
        out[f"{name}_mae"] = loc["mae"]
    out["confusion"] = confusion_matrix(y_true, y_pred)
    out["reliability"] = reliability
    return out
