"""The classification methods, each declared once as an object that ``classify`` finds by name.

A method declares what the dispatcher and the benchmark harness need to know
without importing it (its implementation is imported only when it is used, so
``import alliancetraj`` stays fast):

``name``
    The ``method=`` string of :func:`alliancetraj.classify`.
``min_sessions``
    The shortest series it classifies (shorter dyads are excluded, with a warning).
``uses_seed``
    Whether its results depend on ``seed`` (the exact engine is deterministic and
    ignores it; it still accepts it, so that ``seed`` can be passed to every method).
``options``
    Its valid keyword options; anything else raises ``ValueError`` listing them.
``fit(frame, **options)``
    Classify a validated canonical frame (``dyad``, ``session``, ``score``); returns a
    :class:`~alliancetraj.results.ClassificationResult`.

Methods register themselves with :func:`register` and are found by
:func:`get_method`, as ruptures' ``cost_factory`` finds costs by their ``model``
attribute. Adding a method is one subclass here (and its module under
:mod:`alliancetraj.models`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pandas as pd

from .models.changepoint.spec import MIN_SESSIONS as CHANGEPOINT_MIN_SESSIONS
from .results import ClassificationResult

__all__ = ["REGISTRY", "Method", "get_method", "method_names", "register"]

#: name -> method object, in registration order.
REGISTRY: dict[str, Method] = {}


class Method:
    """A classification method: what it needs and how to run it (see the module docstring)."""

    name: ClassVar[str]
    min_sessions: ClassVar[int] = 1
    uses_seed: ClassVar[bool] = False
    options: ClassVar[tuple[str, ...]] = ()
    #: ``"module:function"`` of the implementation, imported on first use.
    implementation: ClassVar[str]
    #: One line for listings (``alliancetraj demo``, the CLI's help).
    summary: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"<method {self.name!r}>"

    @property
    def module(self) -> str:
        """The module that implements the method."""
        return self.implementation.split(":")[0]

    def function(self) -> Callable[..., ClassificationResult]:
        """The implementation (imports its module)."""
        module, func = self.implementation.split(":")
        return getattr(importlib.import_module(module), func)

    def unavailable(self) -> str | None:
        """Why the method cannot run here (a missing optional dependency), or None."""
        try:
            self.function()
        except Exception as exc:  # a missing or broken module: report it, never crash
            return f"{type(exc).__name__}: {exc}".splitlines()[0]
        return None

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming unknown options and listing the valid ones."""
        unknown = [k for k in options if k not in self.options]
        if unknown:
            raise ValueError(
                f"Unknown option(s) {unknown} for method {self.name!r}. "
                f"Valid options: {sorted(self.options)}."
            )

    def fit(self, frame: pd.DataFrame, **options: Any) -> ClassificationResult:
        """Classify a validated canonical frame; unknown options raise ``ValueError``."""
        self.check_options(options)
        return self.function()(frame, **options)


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: register one instance of a :class:`Method` subclass by its name."""
    REGISTRY[cls.name] = cls()
    return cls


def method_names() -> list[str]:
    """The registered method names, in order."""
    return list(REGISTRY)


def get_method(name: Any) -> Method:
    """The registered method called ``name``; ``ValueError`` listing the valid names otherwise."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"Unknown method {name!r}. Valid methods: {method_names()}.")
    return REGISTRY[name]


# ================================================================== the package's methods
@register
class Exact(Method):
    """Closed-form Bayesian change-point models (the default)."""

    name = "exact"
    min_sessions = CHANGEPOINT_MIN_SESSIONS
    uses_seed = False   # deterministic: ``seed`` is accepted and ignored
    options = ("hyperparameters", "fit_class_probs", "size_floor", "max_rupture_length",
               "u_margin", "credible_level", "eb_max_dyads", "eb_max_iter", "chunk_size", "n_jobs",
               "t_cdf", "progress", "seed")
    implementation = "alliancetraj.models.exact:classify_exact"
    summary = "closed-form Bayesian change-point models (default)"


@register
class PyMC(Method):
    """The hierarchical change-point mixture sampled with NUTS."""

    name = "pymc"
    min_sessions = CHANGEPOINT_MIN_SESSIONS
    uses_seed = True
    options = ("draws", "tune", "chains", "sampler", "seed", "progress", "cores",
               "hyperparameters", "model", "classes", "outcomes", "outcome", "covariates",
               "max_rupture_length", "u_margin", "credible_level", "changepoint_draws")
    implementation = "alliancetraj.models.pymc_result:classify_pymc"
    summary = "hierarchical change-point mixture sampled with NUTS"


@register
class Growth(Method):
    """Mixed-effects growth model and labelling rules."""

    name = "growth"
    min_sessions = 4
    uses_seed = True
    options = ("time", "random", "reml", "min_change", "max_dip_width", "n_draws", "seed",
               "polish")
    implementation = "alliancetraj.models.growth_labels:classify_growth"
    summary = "mixed-effects growth model and labelling rules"


@register
class Rules(Method):
    """Rule-based rupture criteria from the literature."""

    name = "rules"
    min_sessions = 4
    uses_seed = False
    options = ("rule", "k", "threshold", "window", "max_length", "cutoff", "reliability", "pct",
               "criteria", "alpha", "u_alpha")
    implementation = "alliancetraj.models.rules:classify_rules"
    summary = "rule-based rupture criteria from the literature"


@register
class Pelt(Method):
    """Change points by PELT (ruptures) and the same labelling rules."""

    name = "pelt"
    min_sessions = 4
    uses_seed = False
    options = ("penalty", "cost", "min_size", "detrend", "k", "max_length", "u_alpha")
    implementation = "alliancetraj.models.pelt:classify_pelt"
    summary = "change points by PELT (ruptures) and the same labelling rules"
