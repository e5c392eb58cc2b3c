r"""Session-by-session rupture monitoring: flag a rupture while it can still be repaired.

After every rated session, :func:`monitor` asks the exact change-point model
(:mod:`alliancetraj.models.exact`) one forward-looking question: given the
sessions observed *so far*, how probable is it that this dyad is in an
unrepaired drop, i.e. that a rupture has begun and no repair has been seen yet?

The quantity
------------
For dyad :math:`i` and its observed session :math:`t`, with :math:`y_{i,\le t}` its
scores up to and including :math:`t`,

.. math::

    p_{it} = P(\text{unrepaired\_rupture} \mid y_{i,\le t}, \hat\eta),

the exact engine's posterior class probability of the prefix series under fixed
priors :math:`\hat\eta` (an :class:`~alliancetraj.models.exact.ExactHyperparameters`
fitted by empirical Bayes on a *reference* cohort of past treatments, class
proportions included, and not refitted on the data being monitored). Each prefix
is scored as its own series: the value equals ``classify(prefix, method="exact",
hyperparameters=priors, fit_class_probs=False)``'s ``unrepaired_rupture``
probability, so a dyad that is repaired later (``v_shaped`` once finished) is in
an unrepaired drop until its repair session is observed. Scores of later sessions
are never used. All prefixes of all dyads are scored in one vectorised engine
call (each prefix is a pseudo-dyad), then reshaped to one row per session.

The model can see a drop only once two dropped sessions are observed after at
least two sessions before it (``MIN_SESSIONS = 4``), so the earliest alert for a
rupture starting at session :math:`r` comes at the next observed session.
Sessions before a dyad's fourth get ``p_unrepaired = NaN`` and
``status = "too_few_sessions"``; they are never an error.

Onset and depth
---------------
``onset_mode`` is the most probable first session of the drop *given* that the
dyad is in an unrepaired drop, with the bounds of its highest-probability credible
set (``onset_low``, ``onset_high``, level ``credible_level``); ``depth`` is the
posterior mean drop below the trend (score units) with an equal-tailed interval.
They come from a second engine call on the same prefixes with all prior mass on
the ``unrepaired_rupture`` class (so they are defined whatever the most probable
class is) and should be read together with ``p_unrepaired``.

Alerts
------
``alert`` is ``p_unrepaired >= threshold``; it resets as soon as the probability
falls back below the threshold (a repair seen, or the drop explained away).
``new_alert`` marks the first session of each run of alerts. Both depend only on
the current and the previous scored session, so a weekly run over a caseload
(``latest_only=True``) gives the same values as a full history. The default
threshold is justified by ``benchmarks/bench_monitor.py`` (see the README), which
also finds the probability over-confident (mostly on gradual, ``u_shaped`` dips, whose
falling half cannot yet be told from a drop): read it as a ranking score with a
validated threshold rather than as a calibrated risk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._files import write_text_atomic
from ._validation import check_number, parameter_error
from ._version import __version__
from .errors import DataError
from .io import load_sessions
from .results import ClassificationResult

if TYPE_CHECKING:  # pragma: no cover
    from .models.exact import ExactHyperparameters

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_SESSIONS",
    "MONITOR_COLUMNS",
    "MonitorPriors",
    "fit_priors",
    "load_priors",
    "monitor",
    "save_priors",
]

#: Default alert threshold on ``p_unrepaired``. ``benchmarks/bench_monitor.py``: the
#: threshold that met both targets (>= 70% of unrepaired ruptures flagged within 2
#: sessions, <= 2 false alarms per 100 stable sessions) in all three simulated worlds
#: with a margin (81-96% flagged, 0.2-1.3 false alarms per 100 sessions).
DEFAULT_THRESHOLD = 0.7
#: Fewest observed sessions a prefix needs before it is scored (the exact engine's minimum).
MIN_SESSIONS = 4
#: Columns of :func:`monitor`'s table, in order.
MONITOR_COLUMNS = (
    "dyad", "session", "score", "n_observed", "status", "p_unrepaired", "onset_mode",
    "onset_low", "onset_high", "depth", "depth_low", "depth_high", "alert", "new_alert",
)
_FORMAT = "alliancetraj.monitor.priors"
_FORMAT_VERSION = 1
_FUNC = "monitor"


# ====================================================================================== priors
@dataclass(frozen=True)
class MonitorPriors:
    """Fixed priors for monitoring: the exact engine's hyperparameters and settings.

    Parameters
    ----------
    hyperparameters : ExactHyperparameters
        Prior hyperparameters in original score units, class proportions included.
    max_rupture_length : int, default 4
        Longest repaired rupture of the ``v_shaped`` class (as in ``classify``).
    u_margin : float, default 2.0
        The ``u_shaped`` minimum's distance from the ends (as in ``classify``).
    reference : dict
        How the priors were obtained (number of dyads, source, package version).
    """

    hyperparameters: ExactHyperparameters
    max_rupture_length: int = 4
    u_margin: float = 2.0
    reference: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the file format of :func:`save_priors`)."""
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "hyperparameters": self.hyperparameters.to_dict(),
            "settings": {"max_rupture_length": int(self.max_rupture_length),
                         "u_margin": float(self.u_margin)},
            "reference": dict(self.reference),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> MonitorPriors:
        """Build from :meth:`to_dict`'s mapping, or from a plain hyperparameter mapping."""
        from .models.exact import ExactHyperparameters

        if "hyperparameters" not in values:  # a bare mapping of hyperparameters
            return cls(ExactHyperparameters.from_dict(values))
        settings = values.get("settings", {})
        return cls(
            ExactHyperparameters.from_dict(values["hyperparameters"]),
            max_rupture_length=int(settings.get("max_rupture_length", 4)),
            u_margin=float(settings.get("u_margin", 2.0)),
            reference=dict(values.get("reference", {})),
        )


def fit_priors(
    sessions: pd.DataFrame | str | os.PathLike,
    *,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    scale: tuple[float, float] | None = None,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
    **options: Any,
) -> MonitorPriors:
    """Fit monitoring priors on a reference cohort of past (finished) treatments.

    Runs ``classify(method="exact")`` with empirical Bayes (class proportions
    included) and keeps its hyperparameters.

    Parameters
    ----------
    sessions : DataFrame or path
        Long session data of the reference cohort.
    dyad, session, score : column names
    scale : (low, high), optional
        Declared score range.
    max_rupture_length, u_margin
        The exact engine's settings (stored with the priors).
    **options
        Further options of the exact engine (e.g. ``eb_max_dyads``).

    Returns
    -------
    MonitorPriors

    Examples
    --------
    >>> import alliancetraj as at
    >>> from alliancetraj.monitor import fit_priors
    >>> priors = fit_priors(at.simulate_cohort(n_dyads=60, seed=3).sessions)
    >>> round(sum(priors.hyperparameters.class_probs), 6)
    1.0
    """
    from .dispatch import classify
    from .models.exact import ExactHyperparameters

    res = classify(sessions, method="exact", dyad=dyad, session=session, score=score,
                   scale=scale, max_rupture_length=max_rupture_length, u_margin=u_margin,
                   progress=False, **options)
    hyper = res.hyperparameters
    reference = {"n_dyads": len(res.probabilities), "source": hyper.get("source"),
                 "eb_converged": hyper.get("eb_converged"), "package_version": __version__}
    return MonitorPriors(ExactHyperparameters.from_dict(hyper),
                         max_rupture_length=max_rupture_length, u_margin=float(u_margin),
                         reference=reference)


def save_priors(priors: MonitorPriors | ExactHyperparameters | ClassificationResult,
                path: str | os.PathLike) -> Path:
    """Write priors to a JSON file atomically (a temporary sibling, then moved into place).

    Returns the path written. ``priors`` may also be an ``ExactHyperparameters`` or a
    ``ClassificationResult`` of the exact engine (its hyperparameters).
    """
    priors = _as_priors(priors, "save_priors")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(priors.to_dict(), indent=2) + "\n")


def load_priors(path: str | os.PathLike) -> MonitorPriors:
    """Read priors written by :func:`save_priors`.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    DataError
        When the file is not a priors file (names the problem and the fix).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No priors file at {path}; write one with save_priors() or "
                                "'alliancetraj monitor REFERENCE.csv --fit-priors --priors FILE'.")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a JSON priors file ({exc}); write it with "
                        "save_priors().") from None
    if not isinstance(values, dict) or values.get("format") != _FORMAT:
        raise DataError(f"{path} is not an alliancetraj monitoring priors file (its 'format' "
                        f"key must be {_FORMAT!r}); write it with save_priors().")
    if int(values.get("format_version", 0)) > _FORMAT_VERSION:
        raise DataError(f"{path} was written by a newer alliancetraj (format_version "
                        f"{values.get('format_version')}); upgrade the package to read it.")
    try:
        return MonitorPriors.from_dict(values)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: invalid priors ({exc}); refit them with fit_priors().") \
            from None


def _as_priors(priors: Any, func: str) -> MonitorPriors:
    from .models.exact import ExactHyperparameters

    if isinstance(priors, MonitorPriors):
        return priors
    if isinstance(priors, ExactHyperparameters):
        return MonitorPriors(priors)
    if isinstance(priors, ClassificationResult):
        if priors.method != "exact" or not priors.hyperparameters:
            raise parameter_error(func, "priors", "a result of classify(method='exact')",
                                  f"a result of method {priors.method!r}")
        settings = priors.settings or {}
        return MonitorPriors(ExactHyperparameters.from_dict(priors.hyperparameters),
                             max_rupture_length=int(settings.get("max_rupture_length", 4)),
                             u_margin=float(settings.get("u_margin", 2.0)),
                             reference={"n_dyads": len(priors.probabilities)})
    if isinstance(priors, Mapping):
        return MonitorPriors.from_dict(priors)
    if isinstance(priors, (str, os.PathLike)):
        return load_priors(priors)
    raise parameter_error(
        func, "priors", "a MonitorPriors, an ExactHyperparameters, a mapping, an exact "
        "ClassificationResult or the path of a priors file", type(priors).__name__)


# ===================================================================================== scoring
def _prefix_frame(frame: pd.DataFrame, ends: np.ndarray, starts: np.ndarray,
                  lengths: np.ndarray) -> pd.DataFrame:
    """Every prefix as a pseudo-dyad: prefix ``k`` holds rows ``starts[k]`` .. ``ends[k]``."""
    total = int(lengths.sum())
    pid = np.repeat(np.arange(len(ends), dtype=np.int64), lengths)
    offset = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    rows = np.repeat(starts, lengths) + offset
    return pd.DataFrame({"dyad": pid,
                         "session": frame["session"].to_numpy()[rows],
                         "score": frame["score"].to_numpy()[rows]})


def _score_prefixes(prefixes: pd.DataFrame, priors: MonitorPriors, credible_level: float
                    ) -> tuple[np.ndarray, pd.DataFrame]:
    """``p_unrepaired`` of every pseudo-dyad, and its onset and depth under that class."""
    from dataclasses import replace

    from .dispatch import classify

    opts = dict(method="exact", fit_class_probs=False, progress=False, t_cdf="direct",
                max_rupture_length=priors.max_rupture_length, u_margin=priors.u_margin,
                credible_level=credible_level)
    res = classify(prefixes, hyperparameters=priors.hyperparameters, **opts)
    p = res.probabilities["unrepaired_rupture"].to_numpy(dtype=float)
    # all prior mass on the class: its change points are reported whatever the label
    only_un = replace(priors.hyperparameters, class_probs=(0.0, 0.0, 0.0, 1.0))
    cp = classify(prefixes, hyperparameters=only_un, **opts).changepoints
    return p, cp


def monitor(
    sessions: pd.DataFrame | str | os.PathLike,
    priors: MonitorPriors | ExactHyperparameters | ClassificationResult | Mapping[str, Any]
    | str | os.PathLike,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    latest_only: bool = False,
    credible_level: float = 0.9,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    score: Hashable = "score",
    scale: tuple[float, float] | None = None,
    dropna: bool = False,
) -> pd.DataFrame:
    """Session-by-session probability that each dyad is in an unrepaired rupture.

    For every dyad and every observed session ``t``, only the sessions up to ``t``
    are used (the model and its guarantees are in :mod:`alliancetraj.monitor`).

    Parameters
    ----------
    sessions : DataFrame or path
        Long session data (one row per rated session), e.g. a service's current
        caseload. Dyads with fewer than four sessions are kept (not yet scored).
    priors : MonitorPriors, ExactHyperparameters, mapping, ClassificationResult or path
        Fixed priors from a reference cohort (:func:`fit_priors`, or a file written
        by :func:`save_priors`). They are not refitted, so one dyad can be scored alone.
    threshold : float, default :data:`DEFAULT_THRESHOLD`
        ``alert`` is raised while ``p_unrepaired >= threshold`` (in (0, 1)).
    latest_only : bool, default False
        Return only each dyad's last observed session (a weekly caseload run); only
        the last two sessions of each dyad are scored.
    credible_level : float, default 0.9
        Level of the onset credible set and the depth interval.
    dyad, session, score : column names
    scale : (low, high), optional
        Declared score range; values outside raise ``DataError``.
    dropna : bool, default False
        Drop rows with a missing score (with a warning) instead of raising.

    Returns
    -------
    DataFrame
        One row per (dyad, session) (per dyad with ``latest_only``), columns
        :data:`MONITOR_COLUMNS`: ``n_observed`` (sessions observed up to and
        including this one), ``status`` (``"scored"``, or ``"too_few_sessions"``
        before the fourth observed session, where the probability and change
        points are NaN), ``p_unrepaired``, ``onset_mode``/``onset_low``/
        ``onset_high`` (first session of the drop and its credible set, given an
        unrepaired drop), ``depth``/``depth_low``/``depth_high`` (score units),
        ``alert`` and ``new_alert`` (first session of a run of alerts).

    Raises
    ------
    DataError
        When the data violate the data contract, or the priors file is invalid.

    Examples
    --------
    >>> import alliancetraj as at
    >>> from alliancetraj.monitor import fit_priors
    >>> priors = fit_priors(at.simulate_cohort(n_dyads=60, seed=3).sessions)
    >>> new = at.simulate_cohort(n_dyads=5, seed=4, id_prefix="n").sessions
    >>> table = at.monitor(new, priors)
    >>> bool(table.loc[table["n_observed"] < 4, "p_unrepaired"].isna().all())
    True
    >>> len(at.monitor(new, priors, latest_only=True))
    5
    """
    threshold = check_number(_FUNC, "threshold", threshold, low=0, high=1, low_open=True,
                             high_open=True)
    credible_level = check_number(_FUNC, "credible_level", credible_level, low=0, high=1,
                                  low_open=True, high_open=True)
    if not isinstance(latest_only, (bool, np.bool_)):
        raise parameter_error(_FUNC, "latest_only", "a bool", latest_only)
    priors = _as_priors(priors, _FUNC)
    frame = load_sessions(sessions, dyad=dyad, session=session, score=score, scale=scale,
                          dropna=dropna, min_sessions=1)
    frame = frame.loc[:, ["dyad", "session", "score"]].reset_index(drop=True)

    dyad_col = frame["dyad"]
    first = dyad_col.ne(dyad_col.shift()).to_numpy(dtype=bool, copy=True)
    if len(first):
        first[0] = True
    start_of = np.maximum.accumulate(np.where(first, np.arange(len(frame)), 0))
    n_observed = np.arange(len(frame)) - start_of + 1
    last = np.r_[first[1:], True] if len(frame) else first
    keep = np.ones(len(frame), dtype=bool)
    if latest_only:
        # the last session, and the one before it (for new_alert)
        keep = last | np.r_[last[1:], False] & ~last
    ends = np.flatnonzero(keep & (n_observed >= MIN_SESSIONS))

    out = pd.DataFrame({"dyad": dyad_col.to_numpy(), "session": frame["session"].to_numpy(),
                        "score": frame["score"].to_numpy(), "n_observed": n_observed})
    out["status"] = np.where(n_observed >= MIN_SESSIONS, "scored", "too_few_sessions")
    for col in MONITOR_COLUMNS[5:12]:
        out[col] = np.nan
    if len(ends):
        prefixes = _prefix_frame(frame, ends, start_of[ends], n_observed[ends])
        p, cp = _score_prefixes(prefixes, priors, credible_level)
        out.loc[ends, "p_unrepaired"] = p
        pairs = {"onset_mode": "rupture_session", "onset_low": "rupture_low",
                 "onset_high": "rupture_high", "depth": "depth", "depth_low": "depth_low",
                 "depth_high": "depth_high"}
        cp = cp.reindex(np.arange(len(ends)))
        for mine, theirs in pairs.items():
            out.loc[ends, mine] = cp[theirs].to_numpy(dtype=float)
    p_all = out["p_unrepaired"].to_numpy(dtype=float)
    alert = np.nan_to_num(p_all, nan=0.0) >= threshold
    before = np.r_[False, alert[:-1]] & ~first if len(alert) else alert
    out["alert"] = alert
    out["new_alert"] = alert & ~before
    if latest_only:
        out = out.loc[last]
    out = out.reset_index(drop=True)
    out.attrs = {"threshold": threshold, "credible_level": credible_level,
                 "priors_reference": dict(priors.reference),
                 "package_version": __version__}
    return out.loc[:, list(MONITOR_COLUMNS)]
