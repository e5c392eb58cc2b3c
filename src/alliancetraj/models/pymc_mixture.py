r"""Hierarchical Bayesian change-point mixture in PyMC (``classify(method="pymc")``).

One PyMC model for the whole cohort. Every dyad follows one of the four per-dyad
models of the exact engine (:mod:`alliancetraj.models.exact`): a normal-inverse-gamma
regression on the session number per class in :data:`~alliancetraj.CLASSES`, with
the class's discrete change points (the u minimum, the rupture and repair sessions)
uniform over their admissible positions and the amplitude or depth kept positive.
What the exact engine fixes by empirical Bayes is here a random, population-level
quantity with its own prior:

* the population distribution of the baseline level, the slope, the drop depth
  and the curvature (amplitude): their means ``*_mean`` and their spreads
  ``*_var`` (variances in units of the dyad's residual variance, the conjugate
  convention);
* the population distribution of the per-dyad noise, :math:`\sigma^2_i \sim
  \mathrm{InvGamma}(\alpha, \beta)`, through its scale :math:`\beta`
  (``noise_scale``); the shape :math:`\alpha` (``noise_shape``) is fixed, by
  default at a maximum-likelihood estimate from the per-dyad residual sums of
  squares (see *Design* below);
* the class proportions, :math:`\pi \sim \mathrm{Dirichlet}(1, 1, 1, 1)`.

Design: what NUTS samples
-------------------------
Given the population parameters, each dyad's level, slope, depth/amplitude and
noise variance are conjugate, so they are integrated out **exactly inside the
PyTensor graph** (batched 2x2 and 3x3 algebra in closed form; the sign constraint
contributes Student-t CDF terms), and the discrete class and change points are
marginalised by log-sum-exp over the admissible configurations and the classes.
NUTS therefore samples 12 continuous parameters whatever the number of dyads, in a
well-conditioned space, and the per-dyad quantities are recovered by
Rao-Blackwellisation: for every posterior draw :math:`\phi^{(s)}` the conditional
probabilities :math:`P(k \mid y_i, \phi^{(s)})` and
:math:`P(\tau \mid y_i, k, \phi^{(s)})` are exact, and their average over the draws
is the posterior (lower Monte Carlo error than averaging sampled indicators).
The data enter only through per-(dyad, configuration) moments precomputed in numpy
(:mod:`alliancetraj.models.pymc_design`); dyads with different session patterns
share one configuration grid with a mask. The class evidences and their gradient
are one PyTensor Op, a fused numba kernel with closed-form derivatives
(:mod:`alliancetraj.models.pymc_kernel`): one pass over the (dyad, configuration)
pairs per gradient, with the score-free algebra done once per session pattern.

The Student-t CDF needs a gradient only in its argument when the degrees of freedom
:math:`2\alpha + n_i` are fixed, and is then read from a precomputed cubic-Hermite
table (about 1e-10 accurate); a random :math:`\alpha` would need the derivative of
the incomplete beta function in its parameters for every configuration, about 100
times the cost of the rest of the model. That is why the noise shape is fixed.

With every hyperparameter fixed (``hyperparameters=``, e.g. the exact engine's
``result.hyperparameters``), the collapsed model has nothing left to sample and its
class probabilities *are* the exact engine's; ``model="explicit"`` then samples
the per-dyad parameters instead (:mod:`alliancetraj.models.pymc_explicit`), an
independent Monte Carlo check of the closed form.

Outcome sub-model
-----------------
With ``outcomes=`` and ``outcome=`` a recovery outcome is modelled in the same
model: ``outcome_i ~ Normal(b0 + effect[class_i] + covariates_i @ b, s)``, with
``linear`` as the reference class and the class marginalised with the trajectory
likelihood, so that class uncertainty propagates into the effects (and the
outcome, in turn, informs the class). ``result.extras["outcome_effects"]`` holds
posterior mean, SD, 95% equal-tailed interval and, as ``p_value``, the two-sided
posterior tail probability :math:`2\min(P(\text{effect} > 0), P(\text{effect} < 0))`.

Diagnostics
-----------
R-hat, bulk and tail ESS (over the sampled population parameters) and the number of
divergences are stored in ``result.diagnostics``; a
:class:`~alliancetraj.errors.SamplerWarning` is raised when R-hat > 1.01, an ESS
< 400 or any divergence. The InferenceData (``result.extras["idata"]``) has dims
``chain``, ``draw``, ``dyad``, ``class`` and a ``log_likelihood`` group (one
marginal log-likelihood per dyad) for ArviZ LOO; :func:`compare_loo` compares fits,
e.g. with and without the rupture classes (``classes=``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_int, check_number
from ..errors import DataError
from ..results import CLASSES, ClassificationResult
from .changepoint.spec import (
    DEFAULT_SIZE_FLOOR,
    MIN_SESSIONS,
    K,
    standardise_mapping,
)
from .pymc_cohort import (
    FIXED_BY_MODEL,
    HYPERPARAMETERS,
    RANDOM,
    SCORE_MOMENTS,
    CohortData,
    build_cohort_model,
    estimate_noise_shape,
    prepare_cohort,
)
from .pymc_posterior import (
    changepoint_posterior,
    fixed_result,
    hyper_draws,
    outcome_effects,
    posterior_hyperparameters,
    tidy_idata,
)
from .pymc_posterior import xr_dyad_n as xr_dyad_n  # reachable here as before
from .pymc_sampling import (
    DEFAULT_TUNE,
    SAMPLERS,
    diagnostics,
    resolve_sampler,
    sample,
    seed_int,
    warn_diagnostics,
)

__all__ = [
    "HYPERPARAMETERS",
    "MIN_SESSIONS",
    "SAMPLERS",
    "SCORE_MOMENTS",
    "CohortData",
    "build_cohort_model",
    "classify_pymc",
    "compare_loo",
    "estimate_noise_shape",
    "prepare_cohort",
]

# ================================================================================ public
def _check_hyper(hyperparameters) -> dict[str, Any]:
    if hyperparameters is None:
        return {}
    if hasattr(hyperparameters, "to_dict"):
        hyperparameters = hyperparameters.to_dict()
    if not isinstance(hyperparameters, Mapping):
        raise ValueError("The 'hyperparameters' parameter must be a mapping (e.g. the exact "
                         f"engine's result.hyperparameters). Got {type(hyperparameters).__name__}.")
    out = {}
    unknown = []
    for k, v in hyperparameters.items():
        if k in HYPERPARAMETERS:
            out[k] = v
        elif not (str(k).startswith("eb_") or k in ("source", "posterior_sd")):
            unknown.append(k)
    if unknown:
        raise ValueError(f"Unknown hyperparameter name(s): {unknown}. Valid names: "
                         f"{list(HYPERPARAMETERS)}.")
    if "class_probs" in out:
        cp = out["class_probs"]
        if isinstance(cp, Mapping):
            cp = [cp[c] for c in CLASSES]
        cp = np.asarray(cp, dtype=float)
        if cp.shape != (K,) or np.any(cp < 0) or cp.sum() <= 0:
            raise ValueError(f"The 'class_probs' hyperparameter must be {K} non-negative numbers "
                             f"in the order {list(CLASSES)}. Got {out['class_probs']!r}.")
        out["class_probs"] = cp / cp.sum()
    for k, v in out.items():
        if k != "class_probs" and not (isinstance(v, (int, float, np.floating, np.integer))
                                       and np.isfinite(v)):
            raise ValueError(f"The '{k}' hyperparameter must be a finite number. Got {v!r}.")
        if (k.endswith("_var") or k.startswith("noise_")) and k != "class_probs" and v <= 0:
            raise ValueError(f"The '{k}' hyperparameter must be > 0. Got {v!r} instead.")
    return out


def classify_pymc(
    frame: pd.DataFrame,
    *,
    draws: int = 1000,
    tune: int | None = None,
    chains: int = 4,
    sampler: str | None = None,
    seed: int | np.random.Generator | None = None,
    progress: bool = True,
    cores: int | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    model: str = "collapsed",
    classes: Sequence[str] = CLASSES,
    outcomes: pd.DataFrame | None = None,
    outcome: str | None = None,
    covariates: Sequence[str] | None = None,
    max_rupture_length: int = 4,
    u_margin: float = 2.0,
    credible_level: float = 0.9,
    changepoint_draws: int = 100,
) -> ClassificationResult:
    """Classify trajectories with the hierarchical change-point mixture (NUTS).

    Parameters
    ----------
    frame : DataFrame
        Validated canonical session frame (from :func:`alliancetraj.classify`).
    draws, chains : int, default 1000, 4
        Posterior draws per chain, number of chains.
    tune : int, optional
        Tuning (warm-up) steps per chain. Default: the sampler's own default, 400 for
        nutpie (its adaptation settles quickly: on 500 dyads bulk ESS was 3,500-3,800 of
        4,000 draws with 500 or 1,000 tuning steps, R-hat <= 1.002) and 1,000 for PyMC
        and NumPyro.
    sampler : {"nutpie", "pymc", "numpyro"}, optional
        Default: nutpie when installed, PyMC's own NUTS otherwise. nutpie samples the
        model compiled by PyTensor's C back end (seconds; see
        :mod:`alliancetraj.models.pymc_nutpie`), one chain per thread; PyMC runs
        ``min(chains, CPUs)`` chain processes unless ``cores`` is given. nutpie's
        adaptation needs about half the gradient evaluations of PyMC's here.
    seed : int or numpy Generator, optional
        The only source of randomness.
    progress : bool, default True
        Show the sampler's progress bar.
    cores : int, optional
        Parallel chains (sampler default when None).
    hyperparameters : mapping, optional
        Population hyperparameters to hold fixed, on the original score scale (the
        exact engine's names; any subset; e.g. an exact result's
        ``result.hyperparameters``). ``noise_shape`` fixes the noise shape, which is
        otherwise estimated (see the module notes). Others are sampled.
    model : {"collapsed", "explicit"}, default "collapsed"
        ``collapsed``: per-dyad parameters integrated out exactly (hierarchical).
        ``explicit``: per-dyad level, slope, depth/amplitude and noise sampled by NUTS
        with classes and change points marginalised; needs every hyperparameter fixed
        (an independent Monte Carlo check of the exact engine).
    classes : sequence of str, default all of :data:`CLASSES`
        Classes in the mixture; the others get probability 0 (e.g. compare fits with
        and without the rupture classes by LOO, :func:`compare_loo`).
    outcomes, outcome, covariates : optional
        Joint outcome sub-model (module notes): ``outcomes`` indexed by dyad,
        ``outcome`` its column, ``covariates`` further columns.
    max_rupture_length, u_margin : as in the exact engine
    credible_level : float, default 0.9
        Level of the change-point credible sets and depth intervals.
    changepoint_draws : int, default 100
        Posterior draws (thinned evenly) used for the change-point posteriors.

    Returns
    -------
    ClassificationResult
        ``method="pymc"``, ``exact=False``; probabilities are posterior means of
        ``P(class | data, population parameters)``; ``hyperparameters`` are posterior
        means on the original scale (``class_probs`` included) with posterior SDs under
        ``"posterior_sd"``; ``diagnostics`` has R-hat, ESS, divergences and timings;
        ``extras``: ``"idata"`` (ArviZ InferenceData with dims ``chain``, ``draw``,
        ``dyad``, ``class``) and, with an outcome, ``"outcome_effects"``.

    Examples
    --------
    >>> import alliancetraj as at
    >>> cohort = at.simulate_cohort(n_dyads=30, seed=2)
    >>> res = at.classify(cohort.sessions, method="pymc", draws=200, tune=200, chains=2,
    ...                   seed=1, progress=False)  # doctest: +SKIP
    >>> res.probabilities.shape  # doctest: +SKIP
    (30, 4)
    """
    func = "classify(method='pymc')"
    draws = check_int(func, "draws", draws, 1)
    chains = check_int(func, "chains", chains, 1)
    max_rupture_length = check_int(func, "max_rupture_length", max_rupture_length, 1)
    changepoint_draws = check_int(func, "changepoint_draws", changepoint_draws, 1)
    check_number(func, "credible_level", credible_level, low=0, high=1, low_open=True,
                 high_open=True)
    if model not in ("collapsed", "explicit"):
        raise ValueError(f"Unknown model {model!r}. Valid models: ['collapsed', 'explicit'].")
    bad = [c for c in classes if c not in CLASSES]
    if bad or not len(classes):
        raise ValueError(f"Unknown class name(s) {bad} in 'classes'. Valid names: {list(CLASSES)}.")
    classes = [c for c in CLASSES if c in classes]
    sampler = resolve_sampler(sampler)
    tune = check_int(func, "tune", DEFAULT_TUNE[sampler] if tune is None else tune, 0)
    rng = np.random.default_rng(seed)
    seed_value = seed_int(rng)
    given = _check_hyper(hyperparameters)
    size_floor = float(given.pop("size_floor", DEFAULT_SIZE_FLOOR))
    check_number(func, "size_floor", size_floor, low=0)
    y = frame["score"].to_numpy(dtype=float)
    if np.ptp(y) <= 1e-12 * np.max(np.abs(y)):
        raise DataError(
            f"Every score in column {frame.attrs.get('source_columns', {}).get('score', 'score')!r}"
            f" is the same ({y[0]:g}): the mixture has no variation to fit and "
            "NUTS cannot start. Check the score column, or use method='exact', which labels "
            "constant series linear."
        )

    if model == "explicit":
        from .pymc_explicit import classify_explicit

        return classify_explicit(
            frame, hyperparameters=given, draws=draws, tune=tune, chains=chains,
            sampler=sampler, seed=seed_value, progress=progress, cores=cores,
            max_rupture_length=max_rupture_length, u_margin=u_margin, size_floor=size_floor,
        )

    data = prepare_cohort(frame, max_rupture_length=max_rupture_length, u_margin=u_margin,
                          noise_shape=given.get("noise_shape"), outcomes=outcomes,
                          outcome=outcome, covariates=covariates, size_floor=size_floor)
    fixed = {**FIXED_BY_MODEL, **standardise_mapping(
        {k: v for k, v in given.items() if k != "noise_shape"}, data.loc, data.sd)}
    if len(classes) < K and "class_probs" in fixed:
        raise ValueError("Give either fixed 'class_probs' or 'classes', not both.")
    all_fixed = all(k in fixed for k in RANDOM) and data.outcome is None
    pm_model = None if all_fixed else build_cohort_model(data, fixed=fixed, classes=classes)
    free = [] if all_fixed else [rv.name for rv in pm_model.free_RVs]
    settings = {
        "draws": draws, "tune": tune, "chains": chains, "sampler": sampler,
        "seed": seed if isinstance(seed, (int, np.integer)) else None, "model": model,
        "classes": list(classes), "max_rupture_length": max_rupture_length,
        "u_margin": float(u_margin), "noise_shape": data.noise_shape, "size_floor": size_floor,
        "noise_shape_source": "fixed" if "noise_shape" in given else "estimated",
        "fixed_hyperparameters": sorted(given), "changepoint_draws": changepoint_draws,
        "outcome": None if data.outcome is None else data.outcome["name"],
        "covariates": [] if data.outcome is None else data.outcome["covariates"],
    }
    if not free:
        return fixed_result(data, fixed, settings, credible_level, rng)

    # the sampler stores the population parameters only; per-dyad quantities follow below
    keep = free + [d.name for d in pm_model.deterministics if d.name == "class_probs"]
    idata, timings = sample(pm_model, sampler=sampler, draws=draws, tune=tune, chains=chains,
                             seed=seed_value, progress=progress, cores=cores, var_names=keep)
    t0 = time.perf_counter()
    idata = tidy_idata(idata, data, fixed, classes)
    timings["dyad_posterior_seconds"] = time.perf_counter() - t0
    sampled = [v for v in free if v in idata.posterior]
    if "class_probs_included" in sampled:
        sampled = [v for v in sampled if v != "class_probs_included"] + ["class_probs"]
    diag = diagnostics(idata, sampled)
    diag.update(timings)
    diag.update(n_dyads=len(data.dyads), sampler=sampler, n_parameters=int(
        sum(np.prod(idata.posterior[v].shape[2:]) for v in sampled)))
    warn_diagnostics(diag)

    cp_draws = idata.posterior["class_prob"].to_numpy()
    cp_draws = cp_draws.reshape(-1, *cp_draws.shape[2:])
    probs = cp_draws.mean(0)
    hdraws = hyper_draws(idata, data, fixed)
    hdraws["class_probs"] = idata.posterior["class_probs"].to_numpy().reshape(-1, K) \
        if "class_probs" not in fixed else hdraws["class_probs"]
    changepoints = changepoint_posterior(data, hdraws, cp_draws, probs, n_draws=changepoint_draws,
                                 level=credible_level, rng=rng)
    hyper = posterior_hyperparameters(hdraws, data)
    extras: dict[str, Any] = {"idata": idata}
    if data.outcome is not None:
        extras["outcome_effects"] = outcome_effects(idata, data)
    return ClassificationResult.from_probabilities(
        probs, index=data.dyads, method="pymc", changepoints=changepoints, settings=settings,
        hyperparameters=hyper, diagnostics=diag, exact=False, credible_level=credible_level,
        extras=extras,
    )


def compare_loo(results: Mapping[str, ClassificationResult]) -> pd.DataFrame:
    """Compare PyMC fits by ArviZ PSIS-LOO over dyads (``arviz.compare``).

    Parameters
    ----------
    results : mapping name -> ClassificationResult
        Results of ``classify(method="pymc")`` on the **same** dyads, e.g. with all
        classes and with ``classes=("linear", "u_shaped")``.

    Returns
    -------
    DataFrame
        ArviZ's comparison table (``elpd_loo``, ``p_loo``, ``elpd_diff``, ``weight``,
        ...), best model first.
    """
    import arviz as az

    idatas = {}
    for name, res in results.items():
        idata = res.extras.get("idata")
        if idata is None or "log_likelihood" not in idata:
            raise ValueError(f"Result {name!r} has no InferenceData with a log_likelihood group; "
                             "fit it with classify(method='pymc') (sampled).")
        idatas[name] = idata
    return az.compare(idatas, ic="loo")
