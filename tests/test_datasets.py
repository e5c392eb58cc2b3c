import pandas as pd
import pytest

import alliancetraj as at
from conftest import data_file


def test_sgdata_wide_is_the_suddengains_table():
    wide = at.datasets.load_sgdata()
    assert wide.shape == (43, 31)
    assert list(wide.columns[:3]) == ["id", "bdi_s0", "bdi_s1"]
    ref = pd.read_csv(data_file("sgdata.csv"))
    pd.testing.assert_frame_equal(wide, ref.astype({c: float for c in ref.columns if c != "id"}))
    wide.loc[0, "bdi_s1"] = -1.0  # a fresh copy every call
    assert at.datasets.load_sgdata().loc[0, "bdi_s1"] == 35.0


def test_sgdata_long():
    long = at.datasets.load_sgdata("long")
    assert list(long.columns) == ["dyad", "session", "score"]
    assert long["session"].between(1, 12).all()
    assert long["dyad"].nunique() == 43
    rq = at.datasets.load_sgdata("long", measure="rq")
    assert len(rq) > 0 and not rq["score"].isna().any()


@pytest.mark.parametrize("kwargs", [{"format": "tall"}, {"measure": "phq"}])
def test_bad_options(kwargs):
    with pytest.raises(ValueError, match="parameter of load_sgdata"):
        at.datasets.load_sgdata(**kwargs)
