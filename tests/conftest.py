"""Shared fixtures. Expensive objects are built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REPO_DATA = Path(__file__).resolve().parent / "data"


def data_file(name: str) -> Path:
    """A reference data file: ``tests/data`` first, then ``../shared/data``."""
    for folder in (REPO_DATA, SHARED_DATA):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(name)


@pytest.fixture(scope="session")
def small_cohort():
    import alliancetraj as at

    return at.simulate_cohort(n_dyads=120, seed=11)
