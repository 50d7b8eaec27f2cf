"""Loading time series as pandas objects with a regular ``DatetimeIndex`` (``index.freq`` set).

A set frequency is what lets the forecasters extend the index into the future (see :mod:`timeseries.series`),
so every loader here either infers it, checks the one given, or (for the bundled weekly CO2 data, which has
gaps) fills the gaps first.

- :func:`read_csv`: any CSV file with a datetime column;
- :func:`load_ett`: ETTh1 (Zhou et al. 2021) in its standard 12/4/4-month train/val/test split;
- :func:`load_sunspots`, :func:`load_co2`: statsmodels' bundled data sets (no download).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

# The project root is the parent of this package; the shared data lives next to it (see its README.md).
ETT_DEFAULT_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ett" / "ETTh1.csv"

# Standard ETTh1 split (Informer, Zhou et al. 2021): 12 months train, 4 val, 4 test, of 30-day months in hours.
ETT_SPLITS = {"train": (0, 8640), "val": (8640, 8640 + 2880), "test": (8640 + 2880, 8640 + 2 * 2880)}


def _set_freq(frame: pd.DataFrame, freq: str | None, what: str) -> pd.DataFrame:
    """Set ``frame.index.freq`` to ``freq`` (checked) or to the inferred frequency; raise on irregular stamps."""
    index = frame.index
    if freq is None:
        if len(index) < 3:
            raise ValueError(f"{what}: cannot infer a frequency from {len(index)} time stamps; pass freq=")
        freq = pd.infer_freq(index)
        if freq is None:
            steps = index.to_series().diff().dropna()
            common = steps.mode().iloc[0]
            first_odd = steps.index[steps != common][0]
            raise ValueError(
                f"{what}: time stamps are not regularly spaced (most steps are {common}, but the one ending at "
                f"{first_odd} is {steps[first_odd]}); pass freq= and fill the gaps, e.g. "
                "frame.asfreq(freq).interpolate()"
            )
    offset = pd.tseries.frequencies.to_offset(freq)
    expected = pd.date_range(index[0], periods=len(index), freq=offset)
    if not expected.equals(pd.DatetimeIndex(index)):
        mismatch = int((expected != index).argmax())
        raise ValueError(
            f"{what}: time stamps do not follow freq={freq!r}: row {mismatch} is {index[mismatch]}, expected "
            f"{expected[mismatch]}; fill the gaps first, e.g. frame.asfreq({freq!r}).interpolate()"
        )
    frame = frame.copy()
    frame.index = expected
    return frame


def read_csv(
    path: str | Path,
    time_column: str = "date",
    columns: Sequence[str] | None = None,
    freq: str | None = None,
) -> pd.DataFrame:
    """Read a CSV file with a datetime column into a float DataFrame indexed by a regular ``DatetimeIndex``.

    Parameters
    ----------
    path : the CSV file (header row required).
    time_column : name of the column holding the time stamps (any format ``pandas.to_datetime`` parses).
    columns : value columns to keep, in this order; default: every column except ``time_column``.
    freq : the expected frequency (a pandas offset alias such as ``"h"`` or ``"D"``); default: inferred.

    Raises ``FileNotFoundError`` for a missing file, ``KeyError`` for a missing time or value column, and
    ``ValueError`` for a file that is empty, has no data rows or is not CSV text (rows with extra fields,
    binary content), unparsable dates, duplicated or decreasing time stamps, irregular spacing (or spacing
    other than ``freq``) and non-numeric value columns; each message names the file and the offending column
    or row. Empty cells are kept as NaN (the forecasters refuse them or, with ``missing="interpolate"``,
    fill them).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    what = path.name
    try:
        raw = pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{what}: the file is empty (a header row is required)") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        # pandas' own messages name neither the file nor, for binary content, what is wrong with it.
        raise ValueError(f"{what}: not a readable CSV file ({type(err).__name__}: {err})") from err
    if raw.empty:
        raise ValueError(f"{what}: no data rows below the header {list(raw.columns)}")
    if time_column not in raw.columns:
        raise KeyError(f"{what}: no time column {time_column!r}; columns are {list(raw.columns)} (pass time_column=)")
    value_columns = [c for c in raw.columns if c != time_column] if columns is None else list(columns)
    missing = [c for c in value_columns if c not in raw.columns]
    if missing:
        raise KeyError(f"{what}: no column(s) {missing}; columns are {list(raw.columns)}")
    if not value_columns:
        raise ValueError(f"{what}: no value columns besides the time column {time_column!r}")

    stamps = pd.to_datetime(raw[time_column], errors="coerce")
    # Coercing then reporting gives the row and text of the first bad stamp, which to_datetime's own error lacks.
    bad = stamps.isna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise ValueError(
            f"{what}: {int(bad.sum())} value(s) in {time_column!r} are not dates, first at row {row}: "
            f"{raw[time_column].iloc[row]!r}"
        )
    index = pd.DatetimeIndex(stamps, name=time_column)
    if index.has_duplicates:
        raise ValueError(f"{what}: duplicated time stamps in {time_column!r}: {list(index[index.duplicated()][:3])}")
    if not index.is_monotonic_increasing:
        row = int((index[1:] < index[:-1]).argmax()) + 1
        raise ValueError(f"{what}: time stamps in {time_column!r} are not increasing: row {row} ({index[row]}) "
                         f"comes before row {row - 1} ({index[row - 1]})")

    values = raw[value_columns]
    non_numeric = [c for c in value_columns if not pd.api.types.is_numeric_dtype(values[c])
                   or pd.api.types.is_bool_dtype(values[c])]
    if non_numeric:
        column = non_numeric[0]
        # NaNs the parser already produced are missing values, not text; report the first genuine text cell.
        text = values[column][pd.to_numeric(values[column], errors="coerce").isna() & values[column].notna()]
        example = f", e.g. {text.iloc[0]!r} at row {text.index[0]}" if len(text) else ""
        raise ValueError(f"{what}: column(s) {non_numeric} are not numeric{example}")
    frame = values.astype(float).set_axis(index, axis=0)
    return _set_freq(frame, freq, what)


def load_ett(path: str | Path | None = None, split: str | None = "train") -> pd.DataFrame:
    """ETTh1: hourly, 7 float columns (``HUFL, HULL, MUFL, MULL, LUFL, LULL`` and the target ``OT``).

    ``split``: ``"train"`` (first 8,640 rows), ``"val"`` (next 2,880), ``"test"`` (next 2,880), or ``None`` for
    all 17,420 rows. ``path`` defaults to ``../shared/data/ett/ETTh1.csv`` relative to the project root.
    """
    if split is not None and split not in ETT_SPLITS:
        raise ValueError(f"split must be one of {sorted(ETT_SPLITS)} or None, got {split!r}")
    path = ETT_DEFAULT_PATH if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ETTh1.csv not found at {path}; download it from https://github.com/zhouhaoyi/ETDataset "
            f"(ETT-small/ETTh1.csv) and put it at {ETT_DEFAULT_PATH}, or pass path="
        )
    frame = read_csv(path, time_column="date", freq="h")
    if split is None:
        return frame
    start, stop = ETT_SPLITS[split]
    if len(frame) < stop:
        raise ValueError(f"{path} has {len(frame)} rows, fewer than the {stop} the standard {split!r} split needs")
    return frame.iloc[start:stop]


def load_sunspots() -> pd.Series:
    """Yearly mean sunspot numbers 1700-2008 (309 values) from statsmodels, indexed at year starts (``"YS"``)."""
    from statsmodels.datasets import sunspots

    data = sunspots.load_pandas().data
    index = pd.date_range(str(int(data["YEAR"].iloc[0])), periods=len(data), freq="YS", name="year")
    return pd.Series(data["SUNACTIVITY"].to_numpy(dtype=float), index=index, name="sunspots")


def load_co2() -> pd.Series:
    """Weekly Mauna Loa CO2 (ppm) 1958-2001 from statsmodels (2,284 weeks ending on Saturday, ``"W-SAT"``).

    The 59 missing weeks are filled by linear interpolation in time, since the forecasters need a gap-free
    series and the gaps are short compared to the seasonal cycle.
    """
    from statsmodels.datasets import co2

    data = co2.load_pandas().data["co2"].astype(float)
    series = data.asfreq("W-SAT").interpolate(method="time", limit_direction="both")
    series.name = "co2"
    series.index.name = "week"
    return series
