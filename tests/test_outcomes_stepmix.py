"""StepMix as an independent oracle for the BCH and modal three-step class means.

StepMix (Morin et al. 2025) fits a latent class measurement model, then the
three-step structural model (``correction="BCH"``: modal assignment weighted by the
inverse of the empirical error matrix; ``correction=None``: modal assignment alone).
On the *same* posterior probabilities (StepMix's own ``predict_proba_class``), the
class means of relate_outcomes (intercept plus class effects, no covariates) must equal
StepMix's, on a unit-scale outcome and on raw-score scales.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import alliancetraj as at
from alliancetraj.errors import AllianceTrajWarning

stepmix = pytest.importorskip("stepmix", reason="stepmix (test extra) is not installed")

N = 600
K = len(at.CLASSES)
RAW_SCALES = {"unit": (1.0, 0.0), "ten_y_plus_50": (10.0, 50.0), "phq9": (-5.0, 12.0),
              "ras": (12.0, 80.0)}


@pytest.fixture(scope="module")
def indicators():
    """Indicators of 4 latent classes (overlapping: classification is uncertain) and y."""
    rng = np.random.default_rng(42)
    z = rng.choice(K, size=N, p=[0.4, 0.2, 0.2, 0.2])
    centres = 1.6 * np.eye(K)[:, :3]
    X = centres[z] + rng.standard_normal((N, 3))
    y = np.array([0.0, 0.3, 0.5, -0.5])[z] + rng.standard_normal(N)
    return X, y


@pytest.fixture(scope="module")
def stepmix_fits(indicators):
    """One StepMix fit per correction, every scale as a column of Y: means (K, scales)."""
    X, y = indicators
    Y = np.column_stack([offset + slope * y for slope, offset in RAW_SCALES.values()])
    return {correction: stepmix_fit(X, Y, correction) for correction in ("BCH", None)}


def stepmix_fit(X: np.ndarray, Y: np.ndarray, correction: str | None):
    model = stepmix.StepMix(n_components=K, measurement="gaussian_unit",
                            structural="gaussian_unit", n_steps=3, correction=correction,
                            assignment="modal", random_state=7, verbose=0, progress_bar=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn/StepMix deprecation chatter
        model.fit(X, Y)
    means = model.get_parameters()["structural"]["means"]
    return means, model.predict_proba_class(X)


def class_means(fit) -> np.ndarray:
    """Intercept (the reference class, linear) plus effects: one mean per class."""
    b0 = fit.coefficients.loc["intercept", "estimate"]
    return np.r_[b0, b0 + fit.effects["estimate"].to_numpy()]


@pytest.mark.parametrize("scale", list(RAW_SCALES))
@pytest.mark.parametrize("method, correction", [("bch", "BCH"), ("modal", None)])
def test_class_means_equal_stepmix(indicators, stepmix_fits, scale, method, correction):
    _, y = indicators
    slope, offset = RAW_SCALES[scale]
    y_raw = offset + slope * y
    means, P = stepmix_fits[correction]
    expected = means[:, list(RAW_SCALES).index(scale)]
    index = pd.Index([f"d{i}" for i in range(N)], name="dyad")
    res = at.ClassificationResult.from_probabilities(P, index=index, method="stepmix")
    assert (res.labels.value_counts() >= 20).all()  # every class well populated
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceTrajWarning)
        fit = at.relate_outcomes(res, pd.DataFrame({"y": y_raw}, index=index), "y",
                                 method=method)
    np.testing.assert_allclose(class_means(fit), expected, rtol=1e-8,
                               atol=1e-8 * abs(slope))
    if method == "bch":  # and the error matrix is StepMix's
        from stepmix.corrections import compute_bch_matrix

        D, _ = compute_bch_matrix(P, "modal")
        np.testing.assert_allclose(fit.error_matrix.to_numpy(), D, rtol=1e-10, atol=1e-12)
