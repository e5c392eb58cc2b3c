"""Example data sets shipped with alliancetraj.

``sgdata``
    The example data of the R package suddengains (Wiedemann, Thew, Stott &
    Ehlers 2020, PLOS ONE 15(3): e0230276): 43 patients, depression (BDI-II,
    ``bdi_*``) and rumination (RQ, ``rq_*``) at baseline (``s0``), twelve weekly
    therapy sessions (``s1`` to ``s12``) and two follow-ups (``fu1``, ``fu2``);
    missing values are NaN. With ``cutoff=7`` suddengains finds 24 sudden gains in
    15 patients (its vignette); :func:`alliancetraj.sudden_changes` gives the same.

``srs_example``
    A small service's own files, as a researcher would hold them: Session Rating
    Scale ratings (SRS, 0-40 in steps of 0.1, most above 34) of 80 clients with
    string ids (``C-001`` ...), column names of their own (``client``, ``visit``,
    ``srs``), 4-11 rated visits each, starting at visit 1 or 2, with gaps (visits
    without a rating are absent); and an outcomes table (``client``,
    ``ors_baseline``, ``ors_change``: change on the Outcome Rating Scale, in ORS
    points). Simulated with :func:`alliancetraj.worlds.simulate_world`
    (``"srs_ceiling"``, 80 dyads, seed 5), so no client is real.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from ._validation import check_choice

__all__ = ["load_sgdata", "load_srs_example"]


def load_sgdata(format: str = "wide", measure: str = "bdi") -> pd.DataFrame:
    """Load suddengains' example data set ``sgdata``.

    Parameters
    ----------
    format : {"wide", "long"}, default "wide"
        ``"wide"``: the table as suddengains ships it, one row per patient, columns
        ``id``, ``bdi_s0`` ... ``bdi_s12``, ``bdi_fu1``, ``bdi_fu2``, ``rq_s0`` ...
        ``rq_fu2``. ``"long"``: sessions 1 to 12 of ``measure`` with columns
        ``dyad``, ``session``, ``score`` (missing sessions left out; baseline and
        follow-ups dropped).
    measure : {"bdi", "rq"}, default "bdi"
        The measure returned in long format.

    Returns
    -------
    pandas.DataFrame
        A new frame on every call.

    Examples
    --------
    >>> from alliancetraj.datasets import load_sgdata
    >>> wide = load_sgdata()
    >>> wide.shape
    (43, 31)
    >>> long = load_sgdata("long")
    >>> list(long.columns), int(long["session"].max())
    (['dyad', 'session', 'score'], 12)
    """
    check_choice("load_sgdata", "format", format, ("wide", "long"))
    check_choice("load_sgdata", "measure", measure, ("bdi", "rq"))
    source = resources.files("alliancetraj").joinpath("data", "sgdata.csv")
    with resources.as_file(source) as path:
        wide = pd.read_csv(path)
    wide = wide.astype({c: "float64" for c in wide.columns if c != "id"})
    if format == "wide":
        return wide
    from .io import wide_to_long

    columns = {f"{measure}_s{i}": i for i in range(1, 13)}
    return wide_to_long(wide, dyad="id", columns=columns)


def load_srs_example() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load the ``srs_example`` files: (sessions, outcomes), as a service holds them.

    Returns
    -------
    sessions : pandas.DataFrame
        Columns ``client`` (str), ``visit`` (int), ``srs`` (float, 0-40); one row per
        rated visit.
    outcomes : pandas.DataFrame
        Columns ``client``, ``ors_baseline``, ``ors_change`` (ORS points); one row per
        client.

    Examples
    --------
    >>> from alliancetraj.datasets import load_srs_example
    >>> sessions, outcomes = load_srs_example()
    >>> list(sessions.columns), sessions["client"].nunique(), list(outcomes.columns)
    (['client', 'visit', 'srs'], 80, ['client', 'ors_baseline', 'ors_change'])
    """
    frames = []
    for name in ("srs_example.csv", "srs_example_outcomes.csv"):
        source = resources.files("alliancetraj").joinpath("data", name)
        with resources.as_file(source) as path:
            frames.append(pd.read_csv(path))
    return frames[0], frames[1]
