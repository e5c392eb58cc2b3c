"""Markdown tables and the number formats the package's written summaries share.

Used by the benchmark summaries (:mod:`alliancetraj.bench.summary`,
:mod:`alliancetraj.worlds.scoring`): a missing or non-finite value prints as ``–``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["fmt_number", "fmt_seconds", "frame_table", "markdown_table"]

MISSING = "–"


def fmt_number(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; text is returned unchanged, NaN/None as ``–``.

    Examples
    --------
    >>> fmt_number(0.12345), fmt_number(float("nan")), fmt_number(12.0, digits=0)
    ('0.123', '–', '12')
    """
    if isinstance(value, str):
        return value
    if value is None or not np.isfinite(value):
        return MISSING
    return f"{value:.{digits}f}"


def fmt_seconds(value: Any) -> str:
    """Three significant digits (seconds, MiB); NaN/None as ``–``.

    Examples
    --------
    >>> fmt_seconds(0.012345), fmt_seconds(1234.5)
    ('0.0123', '1.23e+03')
    """
    if value is None or not np.isfinite(value):
        return MISSING
    return f"{value:.3g}"


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (cells are written with ``str``).

    Examples
    --------
    >>> print(markdown_table(["method", "accuracy"], [["exact", "0.91"]]))
    | method | accuracy |
    | --- | --- |
    | exact | 0.91 |
    """
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def frame_table(frame: pd.DataFrame) -> str:
    """:func:`markdown_table` of a DataFrame's columns and rows (the index is left out)."""
    return markdown_table(list(frame.columns), frame.to_numpy())
