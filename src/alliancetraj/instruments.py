"""Scoring item-level questionnaires, and reliable / clinically significant change.

Built-in instruments (see :func:`available`):

``wai_sr``
    Working Alliance Inventory - Short Revised (Hatcher & Gillaspy 2006): 12 items
    scored 1-5; ``total`` and subscales are item means: ``task`` (items 1, 2, 10, 12),
    ``bond`` (3, 5, 7, 9), ``goal`` (4, 6, 8, 11).
``srs``
    Session Rating Scale (Duncan et al. 2003): 4 visual-analogue items 0-10 (decimals
    allowed); ``total`` 0-40; ``at_risk`` when the total is below a cutoff (default 36).
``phq9``
    PHQ-9 (Kroenke et al. 2001): 9 items 0-3, ``total`` 0-27, ``band`` minimal (0),
    mild (5), moderate (10), moderately severe (15), severe (20).
``gad7``
    GAD-7 (Spitzer et al. 2006): 7 items 0-3, ``total`` 0-21, ``band`` minimal (0),
    mild (5), moderate (10), severe (15).

Users add their own with :func:`register` and an :class:`Instrument`.

Missing-item rule (the same for every scale of every instrument)
-----------------------------------------------------------------
A scale (the total or a subscale) with ``m`` items is scored when at most
``floor(max_missing * m)`` of its items are missing (``max_missing`` defaults to
0.2, i.e. 20% of the items; it can be set per instrument or per call). The score
is then prorated: the mean of the answered items, times ``m`` for sum scores.
With more missing items the scale is NaN (and so is its band). For example a
PHQ-9 with one missing item gets ``total = 9 * mean(8 answered items)``, with two
missing items NaN; a WAI-SR subscale (4 items) needs all four items.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._validation import check_choice, check_number
from .errors import DataError, format_ids

__all__ = [
    "Instrument",
    "available",
    "clinically_significant_change",
    "get_instrument",
    "register",
    "reliable_change",
    "score",
]


@dataclass(frozen=True)
class Instrument:
    """Definition of an item-level questionnaire.

    Parameters
    ----------
    name : str
        Registry name (looked up case-insensitively, ignoring ``-`` and ``_``).
    n_items : int
        Number of items; item ``j`` (1-based) is the ``j``-th column scored.
    item_range : (low, high)
        Valid item values; values outside raise :class:`~alliancetraj.DataError`.
    subscales : mapping name -> item numbers (1-based), optional
    reversed_items : item numbers, optional
        Reverse-keyed items, scored as ``low + high - value``.
    aggregate : {"sum", "mean"}, default "sum"
        Scales are item sums or item means.
    bands : sequence of (lower bound, label), optional
        Severity bands of the total, by increasing lower bound; a total falls in the
        last band whose lower bound it reaches.
    risk_cutoff : float, optional
        Adds ``at_risk`` = total below the cutoff.
    integer : bool, default True
        Items must be whole numbers.
    max_missing : float, default 0.2
        Fraction of a scale's items that may be missing (rounded down) before the scale
        is NaN; see the module's missing-item rule.
    description : str, optional
    """

    name: str
    n_items: int
    item_range: tuple[float, float]
    subscales: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    reversed_items: tuple[int, ...] = ()
    aggregate: str = "sum"
    bands: tuple[tuple[float, str], ...] = ()
    risk_cutoff: float | None = None
    integer: bool = True
    max_missing: float = 0.2
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _key(self.name):
            raise ValueError(f"Instrument name must be a non-empty string. Got {self.name!r}.")
        if isinstance(self.n_items, bool) or not isinstance(self.n_items, int) or \
                self.n_items < 1:
            raise ValueError(f"n_items must be an int >= 1. Got {self.n_items!r}.")
        low, high = self.item_range
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"item_range must be (low, high) with low < high. "
                             f"Got {self.item_range!r}.")
        if self.aggregate not in ("sum", "mean"):
            raise ValueError(f"aggregate must be 'sum' or 'mean'. Got {self.aggregate!r}.")
        reserved = {"total", "band", "at_risk", "n_missing"}
        for sub, items in dict(self.subscales).items():
            if sub in reserved:
                raise ValueError(f"Subscale name {sub!r} is reserved; choose another.")
            bad = [i for i in items if not (isinstance(i, int) and 1 <= i <= self.n_items)]
            if bad or not items:
                raise ValueError(
                    f"Subscale {sub!r} must list item numbers 1..{self.n_items}. Got {items!r}."
                )
        bad = [i for i in self.reversed_items if not (isinstance(i, int) and
                                                      1 <= i <= self.n_items)]
        if bad:
            raise ValueError(f"reversed_items must be item numbers 1..{self.n_items}; got {bad}.")
        bounds = [b for b, _ in self.bands]
        if any(b2 <= b1 for b1, b2 in itertools.pairwise(bounds)):
            raise ValueError(f"bands must have increasing lower bounds. Got {self.bands!r}.")
        if not 0 <= self.max_missing < 1:
            raise ValueError(f"max_missing must be in [0, 1). Got {self.max_missing!r}.")

    @property
    def total_range(self) -> tuple[float, float]:
        """Range of the total score."""
        low, high = self.item_range
        m = self.n_items if self.aggregate == "sum" else 1
        return (low * m, high * m)


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


_REGISTRY: dict[str, Instrument] = {}


def register(instrument: Instrument, *, overwrite: bool = False) -> Instrument:
    """Add an instrument to the registry so that :func:`score` finds it by name.

    Examples
    --------
    >>> from alliancetraj import instruments
    >>> mine = instruments.Instrument("my_scale", n_items=3, item_range=(0, 4),
    ...                               reversed_items=(2,))
    >>> _ = instruments.register(mine, overwrite=True)
    >>> import pandas as pd
    >>> instruments.score(pd.DataFrame([[4, 0, 4]]), instrument="my_scale")["total"].tolist()
    [12.0]
    """
    if not isinstance(instrument, Instrument):
        raise TypeError(f"register() needs an Instrument; got {type(instrument).__name__}.")
    key = _key(instrument.name)
    if key in _REGISTRY and not overwrite:
        raise ValueError(
            f"An instrument named {instrument.name!r} is already registered; pass "
            "overwrite=True to replace it."
        )
    _REGISTRY[key] = instrument
    return instrument


def get_instrument(name: str | Instrument) -> Instrument:
    """Look up a registered instrument (case-insensitive; ``-`` and ``_`` ignored)."""
    if isinstance(name, Instrument):
        return name
    inst = _REGISTRY.get(_key(name)) if isinstance(name, str) else None
    if inst is None:
        raise ValueError(f"Unknown instrument {name!r}. Valid names: {available()}.")
    return inst


def available() -> list[str]:
    """Names of the registered instruments."""
    return [inst.name for inst in _REGISTRY.values()]


register(Instrument(
    "wai_sr", 12, (1, 5),
    subscales={"task": (1, 2, 10, 12), "bond": (3, 5, 7, 9), "goal": (4, 6, 8, 11)},
    aggregate="mean",
    description="Working Alliance Inventory - Short Revised (Hatcher & Gillaspy 2006)",
))
register(Instrument(
    "srs", 4, (0, 10), risk_cutoff=36.0, integer=False,
    description="Session Rating Scale (Duncan et al. 2003)",
))
register(Instrument(
    "phq9", 9, (0, 3),
    bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately severe"),
           (20, "severe")),
    description="Patient Health Questionnaire-9 (Kroenke, Spitzer & Williams 2001)",
))
register(Instrument(
    "gad7", 7, (0, 3),
    bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")),
    description="Generalized Anxiety Disorder-7 (Spitzer et al. 2006)",
))


def _allowed_missing(n: int, max_missing: float) -> int:
    return math.floor(max_missing * n + 1e-9)


def _scale(values: np.ndarray, n_allowed: int, aggregate: str) -> np.ndarray:
    """Apply the missing-item rule to the item columns of one scale."""
    m = values.shape[1]
    answered = ~np.isnan(values)
    n_ans = answered.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_ans > 0, np.nansum(values, axis=1) / np.maximum(n_ans, 1), np.nan)
    out = mean * m if aggregate == "sum" else mean
    return np.where(m - n_ans <= n_allowed, out, np.nan)


def score(
    items: pd.DataFrame,
    instrument: str | Instrument = "wai_sr",
    *,
    columns: Sequence[Hashable] | None = None,
    max_missing: float | None = None,
    cutoff: float | None = None,
) -> pd.DataFrame:
    """Score item-level questionnaire data.

    Parameters
    ----------
    items : DataFrame
        One row per administration, one column per item (in item order, or chosen
        with ``columns``). Missing items are NaN.
    instrument : str or Instrument, default "wai_sr"
        A registered name (:func:`available`) or an :class:`Instrument`.
    columns : list of column names, optional
        The item columns, item 1 first; default: all columns of ``items`` when there
        are exactly ``n_items`` of them.
    max_missing : float, optional
        Overrides the instrument's missing-item allowance (see the module docstring).
    cutoff : float, optional
        Overrides the instrument's ``risk_cutoff`` (SRS: 36).

    Returns
    -------
    DataFrame
        Same index as ``items``: ``total``, one column per subscale, ``band``
        (ordered categorical) where the instrument has bands, ``at_risk`` (boolean,
        missing where the total is) where it has a risk cutoff, and ``n_missing``.

    Raises
    ------
    DataError
        Wrong number of columns, non-numeric items, values outside the item range or
        non-integer values for integer items.

    Examples
    --------
    >>> import pandas as pd
    >>> from alliancetraj import instruments
    >>> phq = pd.DataFrame([[1, 1, 1, 1, 1, 0, 0, 0, 0], [3] * 9])
    >>> instruments.score(phq, "phq9")[["total", "band"]]
       total    band
    0    5.0    mild
    1   27.0  severe
    >>> wai = pd.DataFrame([[4] * 12])
    >>> instruments.score(wai, "wai_sr").round(2).to_dict("records")
    [{'total': 4.0, 'task': 4.0, 'bond': 4.0, 'goal': 4.0, 'n_missing': 0}]
    """
    inst = get_instrument(instrument)
    if not isinstance(items, pd.DataFrame):
        raise DataError(f"Items must be a pandas DataFrame; got {type(items).__name__}.")
    if columns is None:
        if items.shape[1] != inst.n_items:
            raise DataError(
                f"{inst.name} has {inst.n_items} items but the data have {items.shape[1]} "
                f"column(s) ({format_ids(list(items.columns), 6)}). Pass columns=[...] with "
                f"the {inst.n_items} item columns in item order."
            )
        columns = list(items.columns)
    else:
        columns = list(columns)
        missing = [c for c in columns if c not in items.columns]
        if missing:
            raise DataError(f"Item column(s) {format_ids(missing)} are not in the data.")
        if len(columns) != inst.n_items:
            raise DataError(f"{inst.name} has {inst.n_items} items; columns= lists "
                            f"{len(columns)}.")
    repeated = sorted({str(c) for c in columns if columns.count(c) > 1
                       or int(np.sum(items.columns == c)) > 1})
    if repeated:
        raise DataError(
            f"Item column name(s) {format_ids(repeated)} appear more than once (in the data or "
            "in columns=). Rename the repeated columns so each item has its own name, and pass "
            "each item once."
        )
    cutoff = check_number("score", "cutoff", cutoff, allow_none=True)
    if max_missing is None:
        max_missing = inst.max_missing
    else:
        max_missing = check_number("score", "max_missing", max_missing, low=0, high=1,
                                   high_open=True)
    low, high = inst.item_range
    values = np.empty((len(items), inst.n_items))
    for j, col in enumerate(columns):
        raw = items[col]
        if pd.api.types.is_bool_dtype(raw.dtype):
            raise DataError(f"Item column {col!r} holds booleans, not item scores.")
        num = pd.to_numeric(raw.astype(object) if isinstance(raw.dtype, pd.CategoricalDtype)
                            else raw, errors="coerce").astype("float64").to_numpy()
        bad = np.isnan(num) & raw.notna().to_numpy()
        if bad.any():
            raise DataError(
                f"Item column {col!r} (item {j + 1}) has {bad.sum()} non-numeric value(s) at "
                f"row(s) {format_ids(items.index[bad].tolist())} (e.g. {raw[bad].iloc[0]!r}). "
                "Recode them as numbers (NaN for a missing answer)."
            )
        out = ~np.isnan(num) & ((num < low) | (num > high))
        if out.any():
            raise DataError(
                f"Item column {col!r} (item {j + 1}) has {out.sum()} value(s) outside "
                f"{inst.name}'s item range [{low:g}, {high:g}] at row(s) "
                f"{format_ids(items.index[out].tolist())} (e.g. {num[out][0]:g}). Fix or "
                "recode them (NaN for a missing answer)."
            )
        if inst.integer:
            frac = ~np.isnan(num) & (np.mod(num, 1) != 0)
            if frac.any():
                raise DataError(
                    f"Item column {col!r} (item {j + 1}) has {frac.sum()} non-integer "
                    f"value(s) at row(s) {format_ids(items.index[frac].tolist())}; "
                    f"{inst.name} items are whole numbers."
                )
        values[:, j] = num
    for i in inst.reversed_items:
        values[:, i - 1] = low + high - values[:, i - 1]

    out_df = pd.DataFrame(index=items.index.copy())
    n_all = inst.n_items
    out_df["total"] = _scale(values, _allowed_missing(n_all, max_missing), inst.aggregate)
    for sub, idx in dict(inst.subscales).items():
        cols = [i - 1 for i in idx]
        out_df[sub] = _scale(values[:, cols], _allowed_missing(len(cols), max_missing),
                             inst.aggregate)
    total = out_df["total"].to_numpy()
    if inst.bands:
        bounds = np.array([b for b, _ in inst.bands], dtype=float)
        labels = [lab for _, lab in inst.bands]
        codes = np.searchsorted(bounds, total, side="right") - 1
        codes = np.where(np.isnan(total) | (codes < 0), -1, codes)
        out_df["band"] = pd.Categorical.from_codes(codes, categories=labels, ordered=True)
    risk = inst.risk_cutoff if cutoff is None else float(cutoff)
    if risk is not None:
        at_risk = pd.array(total < risk, dtype="boolean")
        at_risk[np.isnan(total)] = pd.NA
        out_df["at_risk"] = at_risk
    out_df["n_missing"] = np.isnan(values).sum(axis=1).astype(np.int64)
    return out_df


# ---------------------------------------------------------------- change indices
def _as_series(x, name: str) -> pd.Series:
    if isinstance(x, pd.Series):
        s = x
    else:
        arr = np.atleast_1d(np.asarray(x, dtype=float))
        s = pd.Series(arr)
    num = pd.to_numeric(s, errors="coerce").astype("float64")
    if (num.isna() & s.notna()).any():
        raise DataError(f"{name} must be numeric.")
    return num


def reliable_change(
    pre,
    post,
    *,
    sd: float,
    reliability: float,
    direction: str = "decrease",
    z: float = 1.96,
) -> pd.DataFrame:
    """Jacobson–Truax (1991) reliable change index.

    ``RCI = (post - pre) / S_diff`` with ``S_diff = sqrt(2) * sd * sqrt(1 - reliability)``;
    change is reliable when ``|RCI| > z``.

    Parameters
    ----------
    pre, post : array-like or Series
        Scores before and after treatment (aligned by position or index).
    sd : float
        Standard deviation of the measure in a reference (pre-treatment) sample.
    reliability : float
        Test-retest or internal-consistency reliability, in (0, 1).
    direction : {"decrease", "increase"}, default "decrease"
        The direction of improvement (PHQ-9, GAD-7: decrease; WAI, RAS: increase).
    z : float, default 1.96

    Returns
    -------
    DataFrame
        ``change``, ``rci``, ``reliable``, ``improved`` (reliable change in the
        improving direction), ``deteriorated``.

    Examples
    --------
    >>> from alliancetraj import instruments
    >>> r = instruments.reliable_change([18, 18], [8, 16], sd=5.0, reliability=0.84)
    >>> r["improved"].tolist()
    [True, False]
    """
    sd = check_number("reliable_change", "sd", sd, low=0, low_open=True)
    reliability = check_number("reliable_change", "reliability", reliability, low=0, high=1,
                               low_open=True, high_open=True)
    check_choice("reliable_change", "direction", direction, ("decrease", "increase"))
    pre_s, post_s = _as_series(pre, "pre"), _as_series(post, "post")
    if len(pre_s) != len(post_s):
        raise DataError(f"pre and post have different lengths ({len(pre_s)} vs {len(post_s)}).")
    if isinstance(pre, pd.Series) and isinstance(post, pd.Series):
        post_s = post_s.reindex(pre_s.index)
    else:
        post_s = pd.Series(post_s.to_numpy(), index=pre_s.index)
    s_diff = math.sqrt(2.0) * sd * math.sqrt(1.0 - reliability)
    change = post_s - pre_s
    rci = change / s_diff
    sign = -1.0 if direction == "decrease" else 1.0
    reliable = rci.abs() > z
    return pd.DataFrame({
        "change": change,
        "rci": rci,
        "reliable": reliable,
        "improved": reliable & (sign * rci > 0),
        "deteriorated": reliable & (sign * rci < 0),
    })


def clinically_significant_change(
    pre,
    post,
    *,
    sd: float,
    reliability: float,
    cutoff: float | None = None,
    clinical: tuple[float, float] | None = None,
    functional: tuple[float, float] | None = None,
    criterion: str = "c",
    direction: str = "decrease",
    z: float = 1.96,
) -> pd.DataFrame:
    """Jacobson–Truax clinically significant change (recovered / improved / ...).

    A client has *recovered* when the change is reliable in the improving direction
    and the score crosses the cutoff from the clinical to the functional side.

    Parameters
    ----------
    pre, post, sd, reliability, direction, z
        As in :func:`reliable_change`.
    cutoff : float, optional
        The clinical cutoff (e.g. 10 for PHQ-9); otherwise computed from norms.
    clinical, functional : (mean, sd), optional
        Norms of the clinical and functional populations, for a computed cutoff.
    criterion : {"a", "b", "c"}, default "c"
        ``a``: 2 SD beyond the clinical mean; ``b``: 2 SD within the functional mean;
        ``c``: ``(sd_c * mean_f + sd_f * mean_c) / (sd_c + sd_f)`` (needs both norms).

    Returns
    -------
    DataFrame
        The columns of :func:`reliable_change`, plus ``crossed`` (clinical side before,
        functional side after) and ``category``: ``recovered``, ``improved``,
        ``unchanged`` or ``deteriorated``. ``attrs["cutoff"]`` holds the cutoff.

    Examples
    --------
    >>> from alliancetraj import instruments
    >>> out = instruments.clinically_significant_change(
    ...     [18, 18, 12], [6, 12, 18], sd=5.0, reliability=0.84, cutoff=10)
    >>> out["category"].tolist()
    ['recovered', 'improved', 'deteriorated']
    """
    rc = reliable_change(pre, post, sd=sd, reliability=reliability, direction=direction, z=z)
    cutoff = check_number("clinically_significant_change", "cutoff", cutoff, allow_none=True)
    sign = -1.0 if direction == "decrease" else 1.0  # +: higher is better
    if cutoff is None:
        check_choice("clinically_significant_change", "criterion", criterion, ("a", "b", "c"))
        need = {"a": (clinical,), "b": (functional,), "c": (clinical, functional)}[criterion]
        if any(n is None for n in need):
            raise ValueError(
                f"criterion={criterion!r} needs "
                + {"a": "clinical=(mean, sd)", "b": "functional=(mean, sd)",
                   "c": "clinical=(mean, sd) and functional=(mean, sd)"}[criterion]
                + ", or give cutoff= directly."
            )
        if criterion == "a":
            cutoff = clinical[0] + sign * 2 * clinical[1]
        elif criterion == "b":
            cutoff = functional[0] - sign * 2 * functional[1]
        else:
            (mc, sc), (mf, sf) = clinical, functional
            cutoff = (sc * mf + sf * mc) / (sc + sf)
    pre_s = _as_series(pre, "pre")
    pre_v = pre_s.to_numpy()
    post_v = (rc["change"] + pre_s.reindex(rc.index).to_numpy()).to_numpy()
    clinical_before = sign * (pre_v - cutoff) < 0
    functional_after = sign * (post_v - cutoff) >= 0
    crossed = clinical_before & functional_after
    category = np.select(
        [rc["improved"].to_numpy() & crossed, rc["improved"].to_numpy(),
         rc["deteriorated"].to_numpy()],
        ["recovered", "improved", "deteriorated"], default="unchanged",
    )
    category = np.where(np.isnan(rc["rci"].to_numpy()), None, category)
    out = rc.copy()
    out["crossed"] = crossed
    out["category"] = pd.Categorical(
        category, categories=["deteriorated", "unchanged", "improved", "recovered"],
        ordered=True,
    )
    out.attrs["cutoff"] = float(cutoff)
    return out
