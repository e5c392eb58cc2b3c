"""Method runners and measurement: what one benchmark call runs and how it is timed.

A *runner factory* maps a replicate seed to a runner (sessions -> result): registered
methods go through :func:`alliancetraj.dispatch.classify` (with ``seed`` where the
method declares it uses one), caller-supplied callables are called directly. Timing is
wall-clock around the call with warnings recorded; peak memory is a separate,
traced call (see :mod:`alliancetraj.bench`).
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._files import write_atomic, write_text_atomic
from ..methods import get_method, method_names
from ..results import ClassificationResult
from .grid import DEFAULT_METHODS, QUICK_METHODS, Cell

__all__ = ["BenchmarkResults", "Runner", "available_methods"]


@dataclass
class BenchmarkResults:
    """What :func:`run_benchmark` measured and where it wrote it.

    Attributes
    ----------
    results : DataFrame
        One row per method x cell x replicate (the ``_results.csv``).
    confusion, reliability, runtime : DataFrame
        The tidy confusion counts, binned reliability sums and runtime scan.
    summary : str
        The Markdown summary.
    files : list of Path
        Every file written.
    skipped : dict
        Methods skipped: name -> reason.
    """

    results: pd.DataFrame
    confusion: pd.DataFrame
    reliability: pd.DataFrame
    runtime: pd.DataFrame
    summary: str
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ methods
Runner = Callable[[pd.DataFrame], ClassificationResult]


def available_methods(methods: Sequence[str] | None = None) -> dict[str, str | None]:
    """Which methods import: name -> None when available, else the reason.

    Parameters
    ----------
    methods : sequence of str, optional
        Names of registered methods (:data:`alliancetraj.methods.REGISTRY`); default:
        every method.
    """
    names = method_names() if methods is None else list(methods)
    return {name: get_method(name).unavailable() for name in names}


def _accepts(func: Callable, name: str) -> bool:
    """Whether a caller-supplied callable (not a registered method) takes ``name``."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _classify_runner(name: str, options: Mapping[str, Any]) -> Callable[[int], Runner]:
    """A factory: replicate seed -> function sessions -> result, through ``classify``."""
    from ..dispatch import classify

    method = get_method(name)
    auto: dict[str, Any] = {}
    if "progress" in method.options:
        auto["progress"] = False

    def make(seed: int) -> Runner:
        opts = dict(auto)
        if method.uses_seed:
            opts["seed"] = seed
        opts.update(options)
        return lambda sessions: classify(sessions, method=name, **opts)

    return make


def _custom_runner(func: Callable[..., ClassificationResult]) -> Callable[[int], Runner]:
    takes_seed = _accepts(func, "seed")

    def make(seed: int) -> Runner:
        if takes_seed:
            return lambda sessions: func(sessions, seed=seed)
        return func

    return make


def _resolve_methods(
    methods: Sequence[str] | Mapping[str, Callable] | None,
    quick: bool,
    method_options: Mapping[str, Mapping[str, Any]] | None,
    echo: Callable[[str], None],
) -> dict[str, Callable[[int], Runner]]:
    options = dict(method_options or {})
    runners: dict[str, Callable[[int], Runner]] = {}
    if isinstance(methods, Mapping):
        for name, func in methods.items():
            if isinstance(func, str):
                raise TypeError("methods= as a mapping takes name -> callable")
            runners[str(name)] = _custom_runner(func)
        return runners
    if isinstance(methods, str):
        methods = [methods]
    default = QUICK_METHODS if quick else DEFAULT_METHODS
    names = list(default) if methods is None else list(dict.fromkeys(methods))
    if methods is None:
        names = [n for n in names if n in method_names()]
    status = available_methods(names)
    for name, reason in status.items():
        if reason is not None:
            echo(f"note: skipping method {name!r}, not available ({reason})")
            continue
        runners[name] = _classify_runner(name, options.get(name, {}))
    return runners


# ----------------------------------------------------------------------- measurement
def _cell_seed(base: int, cell: Cell, replicate: int) -> int:
    """A seed for (base seed, cell, replicate), stable across grids."""
    key = zlib.crc32(cell.name.encode())
    state = np.random.SeedSequence([int(base), key, int(replicate)]).generate_state(1)
    return int(state[0])


def _call_quietly(runner: Runner, sessions: pd.DataFrame) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner(sessions)
    return result, [f"{w.category.__name__}: {w.message}" for w in caught]


def _timed(runner: Runner, sessions: pd.DataFrame) -> tuple[Any, float, list[str]]:
    gc.collect()
    start = time.perf_counter()
    result, caught = _call_quietly(runner, sessions)
    return result, time.perf_counter() - start, caught


def _traced_peak_mib(runner: Runner, sessions: pd.DataFrame) -> float:
    """tracemalloc peak above the allocations present before the call, in MiB."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        _call_quietly(runner, sessions)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(peak - before, 0) / 2**20


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tidy(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True).reindex(columns=columns)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))


def _write_text(text: str, path: Path) -> Path:
    return write_text_atomic(path, text)


def _write_json(data: Mapping[str, Any], path: Path) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # not on every platform
        return None
