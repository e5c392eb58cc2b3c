"""Alliance as a predictor of next-session symptoms: within- and between-dyad parts.

:func:`alliance_symptom_model` splits the previous session's alliance into a
between-dyad (trait-like) and a within-dyad (state-like) part as a predictor of
session-level symptoms (Falkenström et al. 2013; Zilcha-Mano 2016), in a
:class:`~alliancetraj.models.growth.GrowthModel`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import pandas as pd

from .._validation import parameter_error
from ..errors import DataError, format_ids
from .growth import GrowthModel
from .growth_fit import validate_frame

__all__ = ["AllianceSymptomFit", "alliance_symptom_model"]


@dataclass
class AllianceSymptomFit:
    """Result of :func:`alliance_symptom_model`.

    Attributes
    ----------
    effects : pandas.DataFrame
        Rows ``within`` (state-like: a dyad's alliance above its own mean) and
        ``between`` (trait-like: a dyad's mean alliance), columns ``estimate``,
        ``std_error``, ``z``, ``p_value``, ``ci_low``, ``ci_high``.
    model : GrowthModel
        The fitted mixed model (all fixed effects in ``model.coef_table()``).
    data : pandas.DataFrame
        The analysis rows: dyad, session, symptoms, alliance_lag,
        alliance_between, alliance_within.
    """

    effects: pd.DataFrame
    model: GrowthModel
    data: pd.DataFrame


def alliance_symptom_model(
    frame: pd.DataFrame,
    *,
    dyad: Hashable = "dyad",
    session: Hashable = "session",
    alliance: Hashable = "alliance",
    symptoms: Hashable = "symptoms",
    covariates: Sequence[Hashable] = (),
    random: str = "intercept",
    reml: bool = True,
    consecutive: bool = False,
) -> AllianceSymptomFit:
    """Session-level symptoms predicted by last session's alliance, within and between.

    For dyad ``i`` at session ``t`` the model is (Falkenström et al. 2013;
    Zilcha-Mano et al. 2016)::

        symptoms_it = b0 + b1 t + b_between * mean_i(A) + b_within * (A_i,t-1 - mean_i(A))
                      + covariates + u_i (+ u1_i t) + e_it

    where ``A_i,t-1`` is the alliance at the dyad's previous rated session and
    ``mean_i(A)`` the dyad's mean of those lagged ratings (person-mean centring, so
    the within part is free of between-dyad differences).

    Parameters
    ----------
    frame : DataFrame
        Long format: one row per session with both ratings (not modified).
    dyad, session, alliance, symptoms : column names
    covariates : sequence of column names
        Extra fixed effects (e.g. treatment arm).
    random : {"intercept", "slope"}, default "intercept"
        Random intercept, or random intercept and time slope per dyad.
    reml : bool, default True
    consecutive : bool, default False
        Use only rows whose previous rated session is exactly one session earlier.

    Returns
    -------
    AllianceSymptomFit

    Examples
    --------
    >>> import alliancetraj as at
    >>> sim = at.simulate_alliance_symptoms(n_dyads=80, seed=4)
    >>> fit = at.alliance_symptom_model(sim.sessions)
    >>> list(fit.effects.index)
    ['within', 'between']
    """
    if random not in ("intercept", "slope"):
        raise parameter_error("alliance_symptom_model", "random", "'intercept' or 'slope'", random)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"Sessions must be a pandas DataFrame; got {type(frame).__name__}.")
    if alliance not in frame.columns:
        raise DataError(
            f"Column {alliance!r} (the alliance column) is not in the data. Columns present: "
            f"{format_ids([str(c) for c in frame.columns], limit=12)}. Pass alliance=..."
        )
    data, offset = validate_frame(frame, dyad, session, symptoms)
    a = pd.to_numeric(data[alliance], errors="coerce").astype(float)
    if a.isna().any():
        bad = data.loc[a.isna().to_numpy(), "dyad"].unique().tolist()
        raise DataError(
            f"Column {alliance!r} (alliance) has missing or non-numeric values (dyads "
            f"{format_ids(bad)}). Fill or drop those rows."
        )
    same = data["dyad"].eq(data["dyad"].shift(1)).to_numpy()
    lag = a.shift(1).to_numpy()
    gap = data["session"].diff().to_numpy()
    keep = same & (gap == 1 if consecutive else True)
    rows = data.loc[keep].copy()
    rows["alliance_lag"] = lag[keep]
    rows["alliance_between"] = rows.groupby("dyad", sort=False)["alliance_lag"].transform("mean")
    rows["alliance_within"] = rows["alliance_lag"] - rows["alliance_between"]
    rows["session"] = rows["session"] - offset
    if len(rows) == 0 or rows["dyad"].nunique() < 3:
        raise DataError(
            "Too few sessions with a previous alliance rating (need >= 3 dyads with two or "
            "more rated sessions)."
        )
    model = GrowthModel(
        time="linear",
        random="slope" if random == "slope" else "intercept",
        reml=reml,
        covariates=["alliance_between", "alliance_within", *covariates],
    )
    model.fit(
        rows.drop(columns=[c for c in (alliance,) if c in rows.columns]),
        dyad="dyad",
        session="session",
        score="score",
    )
    table = model.coef_table().loc[["alliance_within", "alliance_between"]]
    table.index = pd.Index(["within", "between"], name="effect")
    out = (
        rows[["dyad", "session", "score", "alliance_lag", "alliance_between", "alliance_within"]]
        .rename(columns={"score": "symptoms"})
        .reset_index(drop=True)
    )
    return AllianceSymptomFit(effects=table, model=model, data=out)
