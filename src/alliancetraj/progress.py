"""Progress bars that suit where they are shown.

:func:`progress_bar` returns a tqdm-like object (``update``, ``close``, a context
manager) chosen by where the output goes:

- a Jupyter notebook: tqdm's notebook widget when ipywidgets is installed (the
  ``notebooks`` extra installs it), else tqdm's text bar; never tqdm.auto's
  ``IProgress not found`` warning;
- a terminal: tqdm's text bar, updated in place;
- anything else (a log file, a pipe, CI): nothing by default; asked for explicitly
  (``enabled=True``), a few plain lines (start, every quarter, done) instead of a
  bar drawn with carriage returns that never updates.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import IO, Any

__all__ = ["LineProgress", "in_notebook", "progress_bar"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:  # pragma: no cover - a stub module
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class LineProgress:
    """Plain progress lines for output that is not a terminal: start, each quarter, done."""

    def __init__(self, total: int, desc: str, unit: str, file: IO[str]) -> None:
        self.total, self.desc, self.unit, self.file = int(total), desc, unit, file
        self.n = 0
        self._next = 0.25
        self._start = time.perf_counter()
        self._write(f"{desc}: 0/{self.total} {unit}s")

    def _write(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total <= 0:
            return
        while self._next < 1 and self.n >= self._next * self.total:
            self._write(f"{self.desc}: {self._next:.0%} ({self.n}/{self.total} {self.unit}s, "
                        f"{time.perf_counter() - self._start:.1f} s)")
            self._next += 0.25

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Accepted for tqdm compatibility; nothing is shown."""

    def close(self) -> None:
        if self._next <= 1:
            self._write(f"{self.desc}: done ({self.n}/{self.total} {self.unit}s, "
                        f"{time.perf_counter() - self._start:.1f} s)")
            self._next = 2.0

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(*, total: int, desc: str, unit: str = "it", enabled: bool | None = None,
                 file: IO[str] | None = None):
    """A progress bar for ``total`` steps that suits where it is shown (see module doc).

    Parameters
    ----------
    total : int
    desc, unit : str
        Shown before the count; the unit of a step.
    enabled : bool or None
        False: nothing is shown. True: shown everywhere (plain lines when the output
        is not a terminal). None: shown in terminals and notebooks only.
    file : text stream, optional
        Where it goes (default ``sys.stderr``).

    Examples
    --------
    >>> import io
    >>> from alliancetraj.progress import progress_bar
    >>> out = io.StringIO()
    >>> with progress_bar(total=4, desc="dyads", enabled=True, file=out) as bar:
    ...     bar.update(4)
    >>> out.getvalue().splitlines()[0]
    'dyads: 0/4 its'
    """
    from tqdm.std import tqdm as text_tqdm

    stream = sys.stderr if file is None else file
    if enabled is False:
        return text_tqdm(total=total, disable=True)
    if in_notebook():
        if importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm(total=total, desc=desc, unit=unit)
        return text_tqdm(total=total, desc=desc, unit=unit, file=stream)
    if getattr(stream, "isatty", lambda: False)():
        return text_tqdm(total=total, desc=desc, unit=unit, file=stream)
    if enabled:
        return LineProgress(total, desc, unit, stream)
    return text_tqdm(total=total, disable=True)
