"""Atomic writes: an output is either the complete new file or the previous one.

Every file the package writes goes to a temporary sibling in the same directory
(``.~<token>.<name>``, so the name keeps its extensions and writers that read
them, such as pandas' compression or matplotlib's format, behave as for the
real name), is flushed to disk (``fsync``) and only then moved over the target
with :func:`os.replace`, which is atomic on POSIX and Windows within one file
system. An error, ``KeyboardInterrupt`` or ``SystemExit`` while writing removes
the temporary file and leaves the previous output untouched; a process killed
outright (``SIGKILL``, power loss) can leave a hidden ``.~*`` sibling behind, but
never a truncated file at the target path.

Directories (a Parquet dataset written by Dask) are written to a temporary
sibling directory and swapped in: the previous directory is renamed aside, the
new one renamed into place, then the old one removed. A directory is replaced
only when every entry in it is one the package writes (the caller says which);
a file the package did not write is never deleted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import DataError, format_ids

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_paths",
    "check_dir_target",
    "check_file_target",
    "write_atomic",
    "write_text_atomic",
]

TEMP_PREFIX = ".~"


def _temp_sibling(path: Path, tag: str = "") -> Path:
    return path.with_name(f"{TEMP_PREFIX}{tag}{secrets.token_hex(4)}.{path.name}")


def _fsync_path(path: Path) -> None:
    """Flush a file (or, best effort, a directory entry) to disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. directories on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without fsync on directories
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def check_file_target(path: str | os.PathLike, *, what: str = "out") -> Path:
    """Check that ``path`` can be written as a file; return it as a :class:`Path`.

    Refuses an existing directory, a parent that exists but is not a directory,
    and a parent directory (the nearest existing ancestor, when folders are still
    to be made) in which no file can be created (an existing read-only file at
    ``path`` is no obstacle: it is replaced, not written into). Raises :class:`~alliancetraj.DataError`
    naming ``what`` (e.g. ``"--out"``) and the fix.
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(
            f"{_named(what, p)} is an existing directory, but a file is written there. "
            "Give a file name (e.g. classes.csv)."
        )
    _check_writable_parent(p, what)
    return p


def check_dir_target(path: str | os.PathLike, owned: Callable[[str], bool], *,
                     what: str = "out") -> Path:
    """Check that ``path`` can be written (or replaced) as an output directory.

    ``owned(name)`` says whether an entry name is one the package writes; a
    non-empty directory holding anything else is refused (never deleted).
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise DataError(
            f"{_named(what, p)} is an existing file, but a directory is written there. "
            "Give a new or empty directory, or a directory written by alliancetraj."
        )
    if p.is_dir():
        foreign = sorted(e.name for e in p.iterdir() if not owned(e.name))
        if foreign:
            raise DataError(
                f"{_named(what, p)} holds file(s) alliancetraj did not write: "
                f"{format_ids(foreign)}. Choose a new or empty directory (nothing there is "
                "deleted)."
            )
    _check_writable_parent(p, what)
    return p


def _named(what: str, p: Path) -> str:
    """``--out 'x'`` for an option, ``out='x'`` for a keyword."""
    return f"{what}{'' if what.endswith('=') else ' '}{str(p)!r}"


def _check_writable_parent(p: Path, what: str) -> None:
    parent = p.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{_named(what, p)}: {str(parent)!r} is not a directory. Fix the path.")
    if not _can_create_in(parent):
        raise DataError(
            f"{_named(what, p)} cannot be written: the directory {str(parent)!r} is read-only. "
            "Choose a writable location."
        )


def _can_create_in(folder: Path) -> bool:
    """Try it: create (and remove) a probe file; permission bits alone mislead (root,
    read-only mounts, ACLs)."""
    probe = _temp_sibling(folder / "probe")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:
        return False
    try:
        os.close(fd)
    finally:
        _remove(probe)
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; move it into place on success.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from alliancetraj._files import atomic_path
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("a,b\\n1,2\\n")
    >>> target.read_text()
    'a,b\\n1,2\\n'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_path(target.parent)


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Several files that belong together: all are written first, then all moved into
    place (a failure before the moves leaves every previous file as it was)."""
    targets = [Path(p) for p in paths]
    temps = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            temps.append(_temp_sibling(target))
        yield temps
        for tmp in temps:
            _fsync_path(tmp)
        for tmp, target in zip(temps, targets, strict=True):
            os.replace(tmp, target)
    except BaseException:
        for tmp in temps:
            _remove(tmp)
        raise
    for folder in {t.parent for t in targets}:
        _fsync_path(folder)


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp)`` to write a temporary sibling, then move it onto ``path``."""
    target = Path(path)
    with atomic_path(target) as tmp:
        writer(tmp)
    return target


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding=encoding))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, owned: Callable[[str], bool]) -> Iterator[Path]:
    """Yield a temporary sibling directory; swap it in for ``path`` on success.

    An existing ``path`` is replaced only if every entry in it satisfies
    ``owned`` (see :func:`check_dir_target`); it is renamed aside before the new
    directory is renamed into place, and removed afterwards.
    """
    target = check_dir_target(path, owned)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target)
    tmp.mkdir()
    try:
        yield tmp
        for entry in tmp.rglob("*"):     # files in sub-folders too (a nested dataset)
            if entry.is_file():
                _fsync_path(entry)
        check_dir_target(target, owned)      # nothing foreign arrived meanwhile
        old = None
        if target.exists():
            old = _temp_sibling(target, "old.")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
    except BaseException:
        _remove(tmp)
        raise
    if old is not None:
        _remove(old)
    _fsync_path(target.parent)
