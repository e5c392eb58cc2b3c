"""Exceptions and warnings raised by alliancetraj.

Every public entry point validates its input at the boundary and raises
:class:`DataError` with a message that names the column, the offending dyad or
session ids (the first few) and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AllianceTrajWarning",
    "ConvergenceWarning",
    "DataError",
    "ExcludedDyadsWarning",
    "SamplerWarning",
    "SmallCohortWarning",
]

_MAX_IDS = 5


class DataError(ValueError):
    """Input data that violates the data contract (a ``ValueError``)."""


class AllianceTrajWarning(UserWarning):
    """Base class of the package's warnings."""


class ExcludedDyadsWarning(AllianceTrajWarning):
    """Dyads were excluded (too few sessions, missing outcome, dropped NaN scores)."""


class MissingCodesWarning(AllianceTrajWarning):
    """Missing-value codes of an SPSS or Stata file were read as missing, not as scores."""


class ConvergenceWarning(AllianceTrajWarning):
    """An optimiser or a growth model did not converge cleanly."""


class SamplerWarning(AllianceTrajWarning):
    """MCMC diagnostics (R-hat, ESS, divergences) are outside their safe range."""


class SmallCohortWarning(AllianceTrajWarning):
    """The cohort is too small to pool: class shares and priors are weakly estimated."""


def format_ids(ids: Iterable[object], limit: int = _MAX_IDS) -> str:
    """Return ``"a, b, c (and 7 more)"`` for the first ``limit`` ids."""
    ids = list(ids)
    shown = ", ".join(repr(i) if isinstance(i, str) else str(i) for i in ids[:limit])
    if len(ids) > limit:
        shown += f" (and {len(ids) - limit} more)"
    return shown
