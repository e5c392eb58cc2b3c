"""Parameter checks shared by every public entry point: one error template.

Every check returns the normalised value or raises ``ValueError`` in the package's
template, naming the parameter, the function, what it must be and what it got::

    The 'n_sessions' parameter of simulate_cohort must be an int >= 3. Got 2 instead.

Data problems (columns, dyad ids) raise :class:`alliancetraj.DataError` instead; see
:mod:`alliancetraj.io`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["check_bool", "check_choice", "check_int", "check_number", "check_range",
           "check_seed", "parameter_error"]

_NUMBER = (int, float, np.integer, np.floating)


def parameter_error(func: str, name: str, must: str, got: Any) -> ValueError:
    """The one template: ``The 'name' parameter of func must be <must>. Got <got> instead.``"""
    return ValueError(f"The '{name}' parameter of {func} must be {must}. Got {got!r} instead.")


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _bounds_text(low, high, low_open: bool, high_open: bool) -> str:
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(bounds)


def _within(value, low, high, low_open: bool, high_open: bool) -> bool:
    if low is not None and not (value > low if low_open else value >= low):
        return False
    return high is None or (value < high if high_open else value <= high)


def check_number(
    func: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> Any:
    """A finite number (an int with ``integer=True``) within the bounds; returns float/int.

    Examples
    --------
    >>> check_number("f", "alpha", 0.05, low=0, high=1, low_open=True, high_open=True)
    0.05
    >>> check_number("f", "n", 2, low=3, integer=True)
    Traceback (most recent call last):
    ...
    ValueError: The 'n' parameter of f must be an int >= 3. Got 2 instead.
    """
    if value is None and allow_none:
        return None
    bounds = _bounds_text(low, high, low_open, high_open)
    must = ("an int" if integer else "a number") + (f" {bounds}" if bounds else "")
    if allow_none:
        must += " or None"
    ok = _is_number(value) and bool(np.isfinite(value))
    if ok and integer:
        ok = float(value) == int(value)
    if ok:
        ok = _within(value, low, high, low_open, high_open)
    if not ok:
        raise parameter_error(func, name, must, value)
    return int(value) if integer else float(value)


def check_int(func: str, name: str, value: Any, low: int | None = None,
              high: int | None = None, *, allow_none: bool = False) -> int | None:
    """An integer (not a bool, not a float) within ``[low, high]``."""
    if value is None and allow_none:
        return None
    bounds = _bounds_text(low, high, False, False)
    must = "an int" + (f" {bounds}" if bounds else "") + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not _within(value, low, high, False, False):
        raise parameter_error(func, name, must, value)
    return int(value)


def check_bool(func: str, name: str, value: Any) -> bool:
    """``True`` or ``False`` (a numpy bool too); a number or a string is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise parameter_error(func, name, "a bool", value)
    return bool(value)


def check_choice(func: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """One of ``choices`` (strings); the message lists the valid values."""
    if not isinstance(value, str) or value not in choices:
        raise parameter_error(func, name, f"one of {list(choices)}", value)
    return value


def check_range(func: str, name: str, value: Any, *, low: float | None = None,
                high: float | None = None, integer: bool = False) -> tuple[Any, Any]:
    """A number or a ``(min, max)`` pair with ``min <= max``, each within the bounds.

    Returns the pair (a single number ``v`` becomes ``(v, v)``).
    """
    if _is_number(value):
        pair = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        pair = tuple(value)
    else:
        raise parameter_error(func, name, "a number or a (min, max) pair", value)
    bounds = _bounds_text(low, high, False, False)
    kind = "an int" if integer else "a number"
    must = f"{kind}{' ' + bounds if bounds else ''} (or a pair of them)"
    for v in pair:
        if not _is_number(v) or not np.isfinite(v) or (integer and float(v) != int(v)) or \
                not _within(v, low, high, False, False):
            raise parameter_error(func, name, must, value)
    if pair[0] > pair[1]:
        raise parameter_error(func, name, "a (min, max) pair with min <= max", value)
    return (int(pair[0]), int(pair[1])) if integer else pair


def check_seed(func: str, value: Any, name: str = "seed") -> np.random.Generator:
    """An int, a numpy ``Generator`` or None, as a ``Generator`` (a Generator is returned
    as it is, so a caller's stream is shared); anything else raises ``TypeError``.

    Examples
    --------
    >>> bool(check_seed("f", 1).integers(10) == check_seed("f", 1).integers(10))
    True
    """
    if isinstance(value, np.random.Generator):
        return value
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
        raise TypeError(str(parameter_error(func, name, "an int, a numpy Generator or None",
                                            value)))
    return np.random.default_rng(value)
