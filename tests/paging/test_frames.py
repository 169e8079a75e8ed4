"""DataFrames from list calls: typed columns from the models (skipped cleanly without polars/pandas)."""

from __future__ import annotations

import datetime as dt

import pytest
from emulators import emulator_fixture
from practice import PRACTICE, session

emu = emulator_fixture(**PRACTICE)

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")


@module_loop
async def test_polars_columns_follow_the_model(emu) -> None:
    pl = pytest.importorskip("polars")
    async with session(emu) as od:
        rows = await od.appointments.list().collect()
        df = await od.appointments.list().to_polars()
    assert df.shape == (len(rows), 35)
    schema = df.schema
    assert schema["AptNum"] == pl.Int64 and schema["IsHygiene"] == pl.Boolean
    assert schema["AptStatus"] == pl.Categorical and schema["Priority"] == pl.Categorical  # spec enums
    assert schema["Pattern"] == pl.String and schema["AptDateTime"] == pl.Datetime("us")
    assert df["AptNum"].to_list() == [r.AptNum for r in rows]
    # The API's zero dates are None in the models, so null in the frame.
    arrived = [r.DateTimeArrived for r in rows]
    assert None in arrived and df["DateTimeArrived"].null_count() == arrived.count(None)
    assert df["AptDateTime"].to_list() == [r.AptDateTime for r in rows]
    assert sorted(df["AptStatus"].unique().to_list()) == sorted({r.AptStatus for r in rows})


@module_loop
async def test_polars_dates_are_dates(emu) -> None:
    pl = pytest.importorskip("polars")
    async with session(emu) as od:
        df = await od.patients.list().to_polars(max_rows=120)
    assert df.height == 120 and df.schema["Birthdate"] == pl.Date
    assert isinstance(df["Birthdate"].drop_nulls()[0], dt.date)


@module_loop
async def test_pandas_columns_follow_the_model(emu) -> None:
    pd = pytest.importorskip("pandas")
    async with session(emu) as od:
        rows = await od.appointments.list().collect(max_rows=500)
        df = await od.appointments.list().to_pandas(max_rows=500)
    assert len(df) == 500 and list(df.columns)[:3] == ["serverDateTime", "AptNum", "PatNum"]
    assert str(df["AptNum"].dtype) == "int64" and str(df["IsHygiene"].dtype) == "bool"
    assert isinstance(df["AptStatus"].dtype, pd.CategoricalDtype)
    assert str(df["AptDateTime"].dtype) == "datetime64[us]"
    assert df["DateTimeArrived"].isna().sum() == sum(r.DateTimeArrived is None for r in rows)
    async with session(emu) as od:
        pdf = await od.patients.list().to_pandas(max_rows=10)
    assert str(pdf["Birthdate"].dtype) == "datetime64[s]"


@module_loop
async def test_an_empty_list_still_has_typed_columns(emu) -> None:
    pl = pytest.importorskip("polars")
    async with session(emu) as od:
        df = await od.appointments.list(PatNum=999_999).to_polars()
    assert df.height == 0 and df.schema["AptStatus"] == pl.Categorical and df.width == 35


def test_a_missing_library_names_the_extra(monkeypatch) -> None:
    import sys

    from odapi_async._paging import frames as _frames

    monkeypatch.setitem(sys.modules, "polars", None)  # as if not installed: import polars fails
    with pytest.raises(ImportError, match=r"pip install 'odapi-async\[polars\]'"):
        _frames.rows_to_polars([])
