"""The method contract: every registered method, one parametrised check."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj import methods
from alliancetraj.errors import ExcludedDyadsWarning
from alliancetraj.models.changepoint import spec

#: PyMC compiles for ~30 s: its contract is checked with the slow tests (short chains:
#: their diagnostics warn; PyTensor warns once that a pip install has no BLAS).
_PYMC_MARKS = [pytest.mark.slow,
               pytest.mark.filterwarnings("ignore::alliancetraj.errors.SamplerWarning"),
               pytest.mark.filterwarnings(
                   "ignore:PyTensor could not link to a BLAS installation:UserWarning")]
PARAMS = [pytest.param(n, marks=_PYMC_MARKS) if n == "pymc" else n
          for n in methods.method_names()]
OPTIONS = {"pymc": {"draws": 50, "tune": 50, "chains": 2, "progress": False,
                    "sampler": "pymc", "cores": 1}}


@pytest.fixture(scope="module")
def cohort_with_a_short_dyad():
    cohort = at.simulate_cohort(n_dyads=24, seed=5, n_sessions=10)
    short = pd.DataFrame({"dyad": "short", "session": [1, 2], "score": [3.0, 3.5]})
    return pd.concat([cohort.sessions, short], ignore_index=True)


def test_registry_lists_the_package_methods():
    assert methods.method_names()[:5] == ["exact", "pymc", "growth", "rules", "pelt"]
    with pytest.raises(ValueError, match=r"Valid methods: \['exact', 'pymc'"):
        methods.get_method("nope")


@pytest.mark.parametrize("name", methods.method_names())
def test_declared_options_are_the_implementation_keywords(name):
    method = methods.get_method(name)
    if method.unavailable():
        pytest.skip(method.unavailable())
    params = inspect.signature(method.function()).parameters
    keywords = {k for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
    assert set(method.options) == keywords
    assert ("seed" in keywords) >= method.uses_seed
    module = importlib.import_module(method.module)
    assert getattr(module, "MIN_SESSIONS", method.min_sessions) == method.min_sessions


def test_change_point_methods_read_the_spec_minimum():
    assert methods.get_method("exact").min_sessions == spec.MIN_SESSIONS
    assert methods.get_method("pymc").min_sessions == spec.MIN_SESSIONS


@pytest.mark.parametrize("name", ["exact", "rules", "growth"])
def test_unknown_option_is_a_value_error_listing_the_valid_ones(name):
    frame = at.simulate_cohort(n_dyads=6, seed=1).sessions
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['bogus'\].*Valid options"):
        at.classify(frame, method=name, bogus=1)


@pytest.mark.parametrize("name", PARAMS)
def test_method_contract(name, cohort_with_a_short_dyad):
    method = methods.get_method(name)
    if method.unavailable():
        pytest.skip(method.unavailable())
    frame = cohort_with_a_short_dyad
    opts = OPTIONS.get(name, {})

    def run(seed):
        seeded = {"seed": seed} if "seed" in method.options else {}
        with pytest.warns(ExcludedDyadsWarning):
            return at.classify(frame, method=name, **seeded, **opts)

    res = run(3)
    dyads = pd.unique(frame["dyad"])
    assert isinstance(res, at.ClassificationResult)
    assert res.probabilities.shape == (len(dyads) - 1, len(at.CLASSES))
    assert list(res.probabilities.columns) == list(at.CLASSES)
    np.testing.assert_allclose(res.probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert set(res.labels.astype(str)) <= set(at.CLASSES)
    assert list(res.labels.index) == list(res.probabilities.index)
    assert "short" in list(res.excluded) and "short" not in res.probabilities.index
    again = run(3)
    pd.testing.assert_frame_equal(res.probabilities, again.probabilities)
    if not method.uses_seed:   # declared deterministic: the seed changes nothing
        pd.testing.assert_frame_equal(res.probabilities, run(4).probabilities)
