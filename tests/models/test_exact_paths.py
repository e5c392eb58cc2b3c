"""The exact engine's fast paths compute what the reference paths compute.

Pass 1 reads class evidences from the compiled kernel on per-session-pattern inputs
(``block_kernel_view``) when tabulated t CDFs are in use; the reference is the numpy
evidence on the full statistics. The empirical-Bayes subsample is cut at dyad
boundaries instead of by id lookup.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.models import exact as ex
from alliancetraj.models.changepoint import statistics
from alliancetraj.models.changepoint.spec import Settings, standardisation
from alliancetraj.models.changepoint.tcdf import LogTCdf
from alliancetraj.models.changepoint.tdist import log_t_cdf
from alliancetraj.models.exact_phases import ExactOptions


def _panel(n_dyads: int, seed: int, **kw):
    frame = at.load_sessions(at.simulate_cohort(n_dyads, seed=seed, **kw).sessions,
                             min_sessions=4)
    loc, sd = standardisation(frame)
    ((_, panel),) = ex.panel_chunks(frame, n_dyads)
    return frame, panel, loc, sd


@pytest.mark.parametrize(("kw", "per_pattern"), [
    ({"n_sessions": 12}, True),                          # one session pattern
    ({"n_sessions": 12, "missing": 0.002}, True),        # a few patterns: per pattern
    ({"n_sessions": (8, 12), "missing": 0.2}, False),    # many patterns: full statistics
])
def test_block_kernel_view_equals_kernel_view_of_full_statistics(kw, per_pattern):
    _, panel, loc, sd = _panel(300, 4, **kw)
    settings = Settings()
    ref = statistics.kernel_view(statistics.block_stats(panel, loc, sd, settings))
    view, n = statistics.block_kernel_view(panel, loc, sd, settings)
    assert set(view) == set(ref)
    np.testing.assert_array_equal(view["pattern"], ref["pattern"])
    for key, value in ref.items():
        got = view[key]
        assert got.shape == value.shape, key
        if value.dtype == bool:
            np.testing.assert_array_equal(got, value, err_msg=key)
        else:
            np.testing.assert_allclose(got, value, rtol=1e-12, atol=1e-12, err_msg=key)
    np.testing.assert_array_equal(n, panel.mask.sum(axis=1))
    n_patterns = len(ref["n"])
    assert (1 <= n_patterns <= 300 / 16) == per_pattern
    assert per_pattern or n_patterns > 1


@pytest.mark.parametrize("size_floor", [2.5, 0.0])
def test_block_class_evidence_kernel_equals_numpy_reference(size_floor):
    frame, panel, loc, sd = _panel(200, 7, n_sessions=(8, 14), missing=0.1)
    res = at.classify(frame, hyperparameters=None, size_floor=size_floor, progress=False)
    h = ex.ExactHyperparameters.from_dict(res.hyperparameters).standardise(loc, sd)
    settings = Settings()
    kern = ex.block_class_evidence(panel, h, loc, sd, settings, LogTCdf())
    ref = ex.block_class_evidence(panel, h, loc, sd, settings, log_t_cdf)
    np.testing.assert_array_equal(np.isfinite(kern), np.isfinite(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(kern[fin], ref[fin], rtol=0, atol=1e-8)


def test_table_and_direct_engines_agree_end_to_end():
    cohort = at.simulate_cohort(150, seed=8, n_sessions=(8, 16))
    table = at.classify(cohort.sessions, t_cdf="table", progress=False)
    direct = at.classify(cohort.sessions, t_cdf="direct", progress=False)
    np.testing.assert_allclose(table.probabilities, direct.probabilities, rtol=0, atol=1e-7)
    assert (table.labels == direct.labels).mean() > 0.99


def test_subsample_is_every_kth_dyad_in_sorted_order():
    frame, _, loc, sd = _panel(250, 5, n_sessions=(6, 10))
    options = ExactOptions.from_options(eb_max_dyads=40)
    starts = ex.dyad_starts(frame)
    ids = pd.unique(frame["dyad"])
    assert len(starts) == len(ids)
    np.testing.assert_array_equal(frame["dyad"].iloc[starts].to_numpy(), ids)
    got = ex.subsample_stats(frame, starts, loc, sd, options)
    step = math.ceil(len(ids) / 40)
    sub = frame.loc[frame["dyad"].isin(ids[::step])]
    want = [statistics.block_stats(c, loc, sd, options.settings)
            for _, c in ex.panel_chunks(sub, 1024)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert len(g.n) == len(ids[::step])
        for name in ("n", "syy", "sy", "sxy", "u_yd", "v_yd", "un_yd"):
            np.testing.assert_array_equal(getattr(g, name), getattr(w, name))
