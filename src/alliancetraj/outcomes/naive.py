"""The naive baselines: regression on the modal class, and pseudo-class draws.

``modal`` fits one GLM on the most probable class. ``draws`` draws every dyad's class
from its probabilities ``n_draws`` times, fits the GLM per draw and pools by Rubin's
rules (per-coefficient t degrees of freedom; the D1 omnibus of Li, Raghunathan & Rubin
1991). Both ignore classification error and shrink class effects toward zero (Bray,
Lanza & Tan 2015). The GLM is :func:`~alliancetraj.outcomes.solver.glm_fit` (exact least
squares for the gaussian family; Newton, optionally Firth-penalised, for the binomial).
"""

from __future__ import annotations

import numpy as np

from .solver import NoSolution, design, glm_fit

__all__ = ["fit_draws", "fit_modal"]


def fit_modal(P: np.ndarray, y: np.ndarray, X: np.ndarray, family: str, ref: int, *,
              firth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Estimates and model-based covariance of the GLM on the modal class."""
    K = P.shape[1]
    Z = design(np.argmax(P, axis=1), list(range(K)), ref, X)
    return glm_fit(Z, y, family, firth=firth)


def fit_draws(P: np.ndarray, y: np.ndarray, X: np.ndarray, family: str, ref: int,
              n_draws: int, rng: np.random.Generator, *, firth: bool = False
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """Pseudo-class draws: per-draw estimates (m, p), covariances (m, p, p), skipped.

    A draw that leaves a class with fewer than two dyads, or whose GLM has no finite
    solution (a drawn class in which every dyad has the same binary outcome), is
    skipped and counted.
    """
    n, K = P.shape
    cum = np.cumsum(P, axis=1)
    ests, covs = [], []
    skipped = 0
    for _ in range(int(n_draws)):
        u = rng.random(n)[:, None]
        codes = np.minimum((u > cum).sum(axis=1), K - 1)
        if np.bincount(codes, minlength=K).min() < 2:
            skipped += 1
            continue
        try:
            beta, cov = glm_fit(design(codes, list(range(K)), ref, X), y, family, firth=firth)
        except NoSolution:
            skipped += 1
            continue
        ests.append(beta)
        covs.append(cov)
    if not ests:
        p = 1 + (K - 1) + X.shape[1]
        return np.empty((0, p)), np.empty((0, p, p)), skipped
    return np.array(ests), np.array(covs), skipped
