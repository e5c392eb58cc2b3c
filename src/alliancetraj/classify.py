"""Compatibility module: the dispatcher now lives in :mod:`alliancetraj.dispatch` and the
methods in :mod:`alliancetraj.methods`.

``alliancetraj.classify`` (the package attribute) is the function. This module keeps
``from alliancetraj.classify import classify`` and the old ``METHODS`` table
(name -> ``(module, function)``, read-only view of :data:`alliancetraj.methods.REGISTRY`)
working for code written against them; new code imports from
:mod:`alliancetraj.methods`.
"""

from __future__ import annotations

from .dispatch import classify
from .methods import REGISTRY

__all__ = ["METHODS", "classify"]

#: name -> (module, function) of every registered method (a snapshot for old callers).
METHODS: dict[str, tuple[str, str]] = {
    name: tuple(m.implementation.split(":")) for name, m in REGISTRY.items()  # type: ignore[misc]
}
