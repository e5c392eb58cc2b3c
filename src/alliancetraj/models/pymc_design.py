r"""Data side of the PyMC change-point mixture, read from the one change-point spec.

The per-dyad models are those of :mod:`alliancetraj.models.changepoint`: four
normal-inverse-gamma regressions on the session number, one per class, with discrete
change-point configurations :math:`\tau` and the constrained coefficient (amplitude
or depth) kept positive by truncating the joint prior. Given the hyperparameters
every configuration's evidence is closed form, so the cohort model only needs, per
(dyad, configuration), the data moments (:func:`cohort_stats`, the spec's one
statistics builder). :func:`config_log_evidence` is the numpy reference evidence in
the dictionary form the PyMC modules read (keys are class names; configuration
priors included); the cohort model evaluates the same quantities, and their
gradient, in the compiled kernel
(:func:`alliancetraj.models.changepoint.kernels.class_evidence_kernel`).

Nothing here imports PyMC or PyTensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .changepoint.evidence import config_evidence, logsumexp_rows
from .changepoint.predictive import sample_on_sessions as sample_prior_predictive
from .changepoint.spec import standardisation
from .changepoint.statistics import ConfigStats, cohort_stats

__all__ = [
    "CohortStats",
    "class_log_evidence",
    "cohort_stats",
    "config_log_evidence",
    "sample_prior_predictive",
    "standardisation",
]

#: The statistics of a cohort (the spec's :class:`ConfigStats`, with ``dyads`` set).
CohortStats = ConfigStats

_KEYS = (("u", "u_shaped", 0), ("v", "v_shaped", 1), ("un", "unrepaired_rupture", 2))


def config_log_evidence(stats: ConfigStats, h: dict[str, Any]) -> dict[str, Any]:
    r"""Log evidence of every (dyad, configuration), standardised units.

    Parameters
    ----------
    stats : ConfigStats
    h : dict
        Hyperparameters on the standardised scale (floats): ``noise_shape``,
        ``noise_scale``, ``level_mean``, ``level_var``, ``slope_mean``, ``slope_var``,
        ``depth_mean``, ``depth_var``, ``amplitude_mean``, ``amplitude_var``.

    Returns
    -------
    dict
        ``"linear"`` (D,), ``"u_shaped"`` (D, W), ``"v_shaped"`` (D, Kv),
        ``"unrepaired_rupture"`` (D, Ku): log evidence **including** the uniform
        configuration prior, ``-inf`` where inadmissible; ``"post"``: the location and
        scale of the constrained coefficient's Student-t posterior per configuration;
        ``"post_bn"``: the posterior noise scale.
    """
    ev = config_evidence(stats, h, keep_posterior=True)
    out: dict[str, Any] = {"linear": ev.lin, "post": {}, "post_bn": {"linear": ev.bn["lin"]}}
    lcp = stats.log_config_prior
    for key, name, j in _KEYS:
        out[name] = getattr(ev, key) + lcp[:, j][:, None]
        out["post"][name] = ev.post[key]
        out["post_bn"][name] = ev.bn[key]
    return out


def class_log_evidence(ev: dict[str, Any]) -> np.ndarray:
    """(D, 4) ``log p(y | class)`` from :func:`config_log_evidence` (numpy)."""
    return np.stack([ev["linear"], logsumexp_rows(ev["u_shaped"]), logsumexp_rows(ev["v_shaped"]),
                     logsumexp_rows(ev["unrepaired_rupture"])], axis=1)
