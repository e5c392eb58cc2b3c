"""Running the PyMC samplers and reading their diagnostics (shared by the PyMC models).

:func:`sample` runs nutpie (compiled through PyTensor's C back end when it can),
PyMC's own NUTS or NumPyro on a ``pm.Model`` and times it; :func:`diagnostics`
collects R-hat, ESS, divergences and tree sizes; :func:`warn_diagnostics` turns bad
ones into a :class:`~alliancetraj.errors.SamplerWarning`.
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SamplerWarning

__all__ = ["DEFAULT_TUNE", "SAMPLERS", "diagnostics", "resolve_sampler", "sample", "seed_int",
           "warn_diagnostics"]

SAMPLERS = ("nutpie", "pymc", "numpyro")

def seed_int(seed) -> int:
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**31 - 1))
    if seed is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"The 'seed' parameter must be an int, a numpy Generator or None. "
                        f"Got {seed!r} instead.")
    return int(seed)


def resolve_sampler(sampler: str | None) -> str:
    if sampler is None:
        return "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}. Valid samplers: {list(SAMPLERS)}.")
    if sampler == "nutpie" and importlib.util.find_spec("nutpie") is None:
        raise ImportError("sampler='nutpie' needs nutpie: `pip install alliancetraj[fast]` "
                          "(or `pip install nutpie`), or use sampler='pymc'.")
    if sampler == "numpyro" and (importlib.util.find_spec("numpyro") is None
                                 or importlib.util.find_spec("jax") is None):
        raise ImportError("sampler='numpyro' needs JAX and NumPyro: `pip install numpyro` "
                          "(which installs jax), or use sampler='nutpie' or 'pymc'.")
    return sampler


#: Tuning steps per chain when ``tune`` is not given: each sampler's own default.
DEFAULT_TUNE = {"nutpie": 400, "pymc": 1000, "numpyro": 1000}


def sample(model, *, sampler: str, draws: int, tune: int, chains: int, seed: int,
            progress: bool, cores: int | None, var_names: Sequence[str] | None = None
            ) -> tuple[Any, dict[str, float]]:
    """Run the sampler, storing ``var_names`` (all when None); return (InferenceData, timings)."""
    import pymc as pm

    timings: dict[str, float] = {}
    if sampler == "nutpie":
        import nutpie

        t0 = time.perf_counter()
        from .pymc_nutpie import compile_pymc_model_c, has_pyfunc

        if has_pyfunc():  # PyTensor's C back end: seconds to compile, not minutes
            compiled = compile_pymc_model_c(model, var_names=var_names)
        else:  # a nutpie without ``compiled_pyfunc.from_pyfunc``
            compiled = nutpie.compile_pymc_model(model, backend="numba", var_names=var_names)
        timings["compile_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        kw = {"cores": cores} if cores is not None else {}
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                              progress_bar=progress, save_warmup=False, **kw)
        timings["sampling_seconds"] = time.perf_counter() - t0
        return idata, timings
    t0 = time.perf_counter()
    kw = {"nuts_sampler": "numpyro"} if sampler == "numpyro" else {}
    if cores is None and sampler == "pymc":
        # PyMC's default assumes half the CPUs are hyperthreads (one process on 2 cores)
        cores = max(1, min(chains, os.cpu_count() or 1))
    idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                      progressbar=progress, model=model, compute_convergence_checks=False,
                      var_names=None if var_names is None else list(var_names), **kw)
    # PyMC compiles inside sample(): reported together with sampling
    timings["sampling_seconds"] = time.perf_counter() - t0
    return idata, timings


def diagnostics(idata, var_names: list[str]) -> dict[str, Any]:
    import arviz as az

    out: dict[str, Any] = {}
    post = idata.posterior[var_names] if var_names else None
    n_chains = int(idata.posterior.sizes.get("chain", 1))
    if post is not None and n_chains >= 2:
        with warnings.catch_warnings():
            # ArviZ warns (RuntimeWarning) on constant draws, e.g. mocked sampling
            warnings.simplefilter("ignore", RuntimeWarning)
            rhat = az.rhat(post)
            ess_b = az.ess(post, method="bulk")
            ess_t = az.ess(post, method="tail")

        def agg(ds, fn):
            vals = np.concatenate([np.ravel(ds[v].to_numpy()) for v in ds.data_vars])
            vals = vals[np.isfinite(vals)]
            return float(fn(vals)) if len(vals) else float("nan")

        out["r_hat_max"] = agg(rhat, np.max)
        out["ess_bulk_min"] = agg(ess_b, np.min)
        out["ess_tail_min"] = agg(ess_t, np.min)
        out["per_variable"] = {
            v: {"r_hat": float(np.nanmax(rhat[v].to_numpy())),
                "ess_bulk": float(np.nanmin(ess_b[v].to_numpy())),
                "ess_tail": float(np.nanmin(ess_t[v].to_numpy()))}
            for v in var_names
        }
    else:
        out.update(r_hat_max=float("nan"), ess_bulk_min=float("nan"), ess_tail_min=float("nan"))
    ss = getattr(idata, "sample_stats", None)
    if ss is not None and "diverging" in ss:
        out["divergences"] = int(np.asarray(ss["diverging"]).sum())
    else:
        out["divergences"] = None
    for key in ("n_steps", "tree_size"):  # nutpie, PyMC: gradient evaluations per draw
        if ss is not None and key in ss:
            out["mean_tree_size"] = float(np.asarray(ss[key]).mean())
            break
    return out


def warn_diagnostics(diag: dict[str, Any], *, r_hat_max: float = 1.01, ess_min: float = 400
                      ) -> None:
    problems = []
    if np.isfinite(diag.get("r_hat_max", np.nan)) and diag["r_hat_max"] > r_hat_max:
        problems.append(f"R-hat {diag['r_hat_max']:.3f} > {r_hat_max}")
    for key, label in (("ess_bulk_min", "bulk ESS"), ("ess_tail_min", "tail ESS")):
        if np.isfinite(diag.get(key, np.nan)) and diag[key] < ess_min:
            problems.append(f"{label} {diag[key]:.0f} < {ess_min}")
    if diag.get("divergences"):
        problems.append(f"{diag['divergences']} divergent transition(s)")
    if problems:
        warnings.warn(
            "PyMC change-point mixture: " + "; ".join(problems) + ". Run longer chains "
            "(draws=, tune=), more chains, or check result.diagnostics['per_variable'].",
            SamplerWarning,
            stacklevel=4,
        )
