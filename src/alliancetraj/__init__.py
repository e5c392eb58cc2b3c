"""alliancetraj: longitudinal therapeutic-alliance trajectories.

Fit session-by-session alliance ratings with exact Bayesian change-point models,
hierarchical PyMC mixtures and mixed-effects growth models; classify every dyad's
trajectory as ``linear``, ``u_shaped``, ``v_shaped`` or ``unrepaired_rupture``
with honest uncertainty; relate the patterns to recovery.

The public names are imported when first used (module ``__getattr__``, PEP 562), so
``import alliancetraj`` and ``alliancetraj --help`` do not import pandas, numpy or
scipy; ``from alliancetraj import classify`` and ``dir(alliancetraj)`` work as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import DataError

#: Public name -> the module that defines it (a module itself where the value is None).
_WHERE: dict[str, str | None] = {
    "CLASSES": "results",
    "ClassificationResult": "results",
    "Cohort": "simulate",
    "GrowthModel": "models.growth",
    "alliance_symptom_model": "models.alliance_symptom",
    "classify": "classify",
    "datasets": None,
    "fit_checks": "models.changepoint.checks",
    "instruments": None,
    "load_sessions": "io",
    "mediation": "mediation",
    "monitor": "monitor",
    "relate_outcomes": "outcomes",
    "simulate_alliance_symptoms": "simulate",
    "simulate_cohort": "simulate",
    "simulate_mediation": "simulate",
    "sudden_changes": "sudden",
    "wide_to_long": "io",
}

__all__ = [
    "CLASSES",
    "ClassificationResult",
    "Cohort",
    "DataError",
    "GrowthModel",
    "__version__",
    "alliance_symptom_model",
    "classify",
    "datasets",
    "fit_checks",
    "instruments",
    "load_sessions",
    "mediation",
    "monitor",
    "relate_outcomes",
    "simulate_alliance_symptoms",
    "simulate_cohort",
    "simulate_mediation",
    "sudden_changes",
    "wide_to_long",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name, "")
    if where == "":
        # a submodule (``at.io``, ``at.errors``), reachable as eager imports made it
        if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}"):
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module 'alliancetraj' has no attribute {name!r}")
    if where is None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{where}", __name__), name)
    globals()[name] = value       # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


#: Public functions named like the module that defines them.
_SHADOWED = frozenset(n for n, w in _WHERE.items() if w == n)


class _Package(types.ModuleType):
    """The package module: the function ``classify`` (``monitor``, ``mediation``) stays
    the package's attribute after its submodule is imported, as with eager imports."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            value = getattr(value, name)   # the import system records the submodule here
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from . import datasets, instruments
    from .classify import classify
    from .io import load_sessions, wide_to_long
    from .mediation import mediation
    from .models.alliance_symptom import alliance_symptom_model
    from .models.changepoint.checks import fit_checks
    from .models.growth import GrowthModel
    from .monitor import monitor
    from .outcomes import relate_outcomes
    from .results import CLASSES, ClassificationResult
    from .simulate import Cohort, simulate_alliance_symptoms, simulate_cohort, simulate_mediation
    from .sudden import sudden_changes
