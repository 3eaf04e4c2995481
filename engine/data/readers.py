"""Read TradeMaster-style CSV files into a validated, rectangular MarketData.

The long format has one row per (date, tic): required columns `date`, `tic`, `close`; `open`, `high`,
`low`, `adjcp`, `volume` when present; every other numeric column is a feature, in file order. A file
without `tic` is one asset. Known column names match case-insensitively ("Close", "Adj Close").

Every problem is a DataError naming the file, the 1-based line (header = line 1) and the column. The
checks run vectorised over whole columns and only then locate the first offending row, because dj30's
train.csv alone has 58k rows. Line numbers count blank lines but assume no quoted field spans lines.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.errors import DataError
from engine.data.features import price_features
from engine.data.frequency import ASSET_CLASSES, detect_asset_class, detect_frequency
from engine.data.frequency import periods_per_year as bars_per_year
from engine.data.market import MarketData

PRICES = ("open", "high", "low", "close", "adjcp")
KNOWN = ("date", "tic") + PRICES + ("volume",)
ALIASES = {"adj close": "adjcp", "adj_close": "adjcp", "adjclose": "adjcp", "ticker": "tic"}
MISSING_MODES = ("error", "drop", "ffill")
F32_MAX = float(np.finfo(np.float32).max)

EMPTY_FILE = "the file is empty"
NO_ROWS = "the file has a header but no data rows"
UNREADABLE = "cannot read the file as CSV: {reason}"
MISSING_COLUMN = "missing required column {column!r}"
DUPLICATE_COLUMN = "column {column!r} appears twice (as {first!r} and {second!r})"
EXTRA_COLUMN = "column {column!r} is not in {first}; files read together need the same columns"
LACKING_COLUMN = "column {column!r} of {first} is missing from this file; files read together need the same columns"
BAD_DATE = "cannot parse {value!r} as a date"
BAD_NUMBER = "cannot parse {value!r} as a number"
MISSING_VALUE = "value is missing (empty or NaN)"
NOT_FINITE = "value must be finite, got {value}"
TOO_LARGE = "feature value {value} does not fit in float32"
PRICE_NOT_POSITIVE = "price must be > 0, got {value}"
VOLUME_NEGATIVE = "volume must be >= 0, got {value}"
HIGH_BELOW_LOW = "high {high} is below low {low}"
MISSING_TICKER_NAME = "ticker is missing"
DUPLICATE = "duplicate bar for date {date} and ticker {tic!r}; first seen in {first}"
MISSING_TICKER = ("ticker {tic!r} has no bar on {date} ({count} of {total} dates missing for it); "
                  "pass missing='drop' or missing='ffill' to align the tickers")
MISSING_AT_START = "ticker {tic!r} has no bar on the first date {date}, so there is no earlier bar to forward-fill from"
NOTHING_LEFT = "no date has a bar for every ticker, so missing='drop' leaves nothing"
BAD_MISSING = "missing must be one of {choices}, got {value!r}"
BAD_ASSET_CLASS = "asset_class must be one of {choices} or None, got {value!r}"
BAD_PERIODS = "periods_per_year must be > 0, got {value!r}"


@dataclass
class _File:
    """One parsed and row-validated file: per-row arrays, in file order."""

    path: Path
    names: dict[str, str]          # canonical name -> name as written in the file
    dates: np.ndarray              # datetime64[ns]
    tics: np.ndarray               # object (str)
    lines: np.ndarray              # int64, 1-based line numbers
    values: dict[str, np.ndarray]  # price/volume columns, float64
    features: dict[str, np.ndarray]  # feature columns in file order, float64


def read_csv(path_or_paths, *, missing: str = "error", asset_class: str | None = None,
             periods_per_year: float | None = None, name: str | None = None) -> MarketData:
    """Read one CSV file, or several concatenated in order (e.g. train, valid, test), into MarketData.

    missing: what to do when a ticker has no bar on a date that others have: "error" (DataError naming
        the ticker and its first missing date), "drop" (drop every such date), "ffill" (repeat the
        ticker's previous close as a flat bar, open = high = low = close, with volume 0, and its
        previous features; a ticker absent on the very first date is an error).
    asset_class: "equity" or "crypto"; None detects it (frequency.detect_asset_class: crypto when at
        least 10% of the bars fall on weekends).
    periods_per_year: overrides the value implied by the frequency and asset class. With it, dates
        whose spacing matches no known frequency are accepted as frequency "irregular".
    name: the market's name, default the first file's stem; also the ticker of a one-file market
        without a `tic` column (several files without `tic` take each file's stem as ticker).

    Tickers come out sorted by name and bars by date. Files without feature columns get the default
    price features (engine.data.features.price_features). meta holds "asset_class", "files",
    "missing", "dropped_dates", "filled_bars" and "feature_source" ("file" or "computed").
    """
    paths = [Path(path_or_paths)] if isinstance(path_or_paths, (str, os.PathLike)) else [Path(p) for p in path_or_paths]
    if not paths:
        raise ValueError("read_csv needs at least one path")
    if missing not in MISSING_MODES:
        raise ValueError(BAD_MISSING.format(choices=", ".join(MISSING_MODES), value=missing))
    if asset_class is not None and asset_class not in ASSET_CLASSES:
        raise ValueError(BAD_ASSET_CLASS.format(choices=", ".join(ASSET_CLASSES), value=asset_class))
    if periods_per_year is not None and not periods_per_year > 0:
        raise ValueError(BAD_PERIODS.format(value=periods_per_year))

    files = [_read_file(p, name if (name and len(paths) == 1) else p.stem) for p in paths]
    _check_same_columns(files)
    dates, tickers, prices, features, feature_names, meta = _assemble(files, missing)

    try:
        frequency = detect_frequency(dates)
    except DataError as err:
        if periods_per_year is None:
            raise err.located(file=paths[0], column=files[0].names["date"]) from None
        frequency = "irregular"
    asset = asset_class or detect_asset_class(dates, frequency)
    ppy = float(periods_per_year) if periods_per_year is not None else bars_per_year(frequency, asset)
    meta.update(asset_class=asset, files=[str(p) for p in paths], missing=missing)
    return MarketData(
        dates=dates, tickers=tickers, prices=prices, features=features,
        feature_names=feature_names, frequency=frequency, periods_per_year=ppy,
        name=name or paths[0].stem, meta=meta,
    )


# ---------------------------------------------------------------------------------------------- one file

def _read_file(path: Path, default_ticker: str) -> _File:
    names, raw = _header(path)
    for required in ("date", "close"):
        if required not in names:
            raise DataError(MISSING_COLUMN.format(column=required), file=path, column=required)
    text_columns = {raw[k]: str for k in ("date", "tic") if k in raw}
    try:
        # Only empty cells are missing: a ticker named "NA" or "NULL" stays a ticker.
        frame = pd.read_csv(path, dtype=text_columns, keep_default_na=False, na_values=[""],
                            skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _parser_error(path, exc) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    lines = np.arange(2, len(frame) + 2, dtype=np.int64)
    keep = frame.notna().any(axis=1).to_numpy()  # blank lines come back as all-empty rows
    if not keep.all():
        frame, lines = frame.loc[keep].reset_index(drop=True), lines[keep]
    if len(frame) == 0:
        raise DataError(NO_ROWS, file=path)

    problems: list[tuple[int, int, DataError]] = []  # (row, check order, error); the earliest row wins
    dates = _parse_dates(frame[names["date"]], path, names["date"], lines, problems)
    tics = _tickers(frame, names, path, lines, problems, default_ticker)
    values = {k: _numbers(frame[names[k]], path, names[k], lines, problems, required=True)
              for k in PRICES + ("volume",) if k in names}
    features = _features(frame, names, path, lines, problems)
    _check_values(values, features, path, names, lines, problems)
    if problems:
        raise min(problems, key=lambda p: (p[0], p[1]))[2]
    return _File(path, names, dates, tics, lines, values, features)


def _tickers(frame: pd.DataFrame, names: dict[str, str], path: Path, lines: np.ndarray, problems: list,
             default_ticker: str) -> np.ndarray:
    if "tic" not in names:
        return np.full(len(frame), default_ticker, dtype=object)
    tics = frame[names["tic"]].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    _first(tics == "", 0, lambda i: DataError(MISSING_TICKER_NAME, file=path, line=int(lines[i]),
                                              column=names["tic"]), problems)
    return tics


def _features(frame: pd.DataFrame, names: dict[str, str], path: Path, lines: np.ndarray,
              problems: list) -> dict[str, np.ndarray]:
    """The numeric columns beyond the known ones (a column of text is no feature)."""
    features = {}
    for column in frame.columns:
        if column in names.values() or column.startswith("Unnamed: ") or column == "":
            continue
        numbers = _numbers(frame[column], path, column, lines, problems, required=False)
        if numbers is not None:
            features[column] = numbers
    return features


def _header(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """canonical name -> name as written (stripped), and -> the raw header cell, for the known columns."""
    try:
        header = pd.read_csv(path, nrows=0)
    except pd.errors.EmptyDataError:
        raise DataError(EMPTY_FILE, file=path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _parser_error(path, exc) from None
    names: dict[str, str] = {}
    raw: dict[str, str] = {}
    for column in header.columns:
        written = str(column).strip()
        key = ALIASES.get(written.lower(), written.lower())
        if key in KNOWN:
            if key in names:
                raise DataError(DUPLICATE_COLUMN.format(column=key, first=names[key], second=written),
                                file=path, line=1, column=written)
            names[key], raw[key] = written, column
    return names, raw


def _parser_error(path: Path, exc: Exception) -> DataError:
    match = re.search(r"line (\d+)", str(exc))
    return DataError(UNREADABLE.format(reason=str(exc).strip()), file=path,
                     line=int(match.group(1)) if match else None)


def _first(mask: np.ndarray, order: int, make, problems: list) -> None:
    """Record the error of the first True row of mask, if any."""
    bad = np.flatnonzero(mask)
    if len(bad):
        problems.append((int(bad[0]), order, make(int(bad[0]))))


def _parse_dates(column: pd.Series, path, written, lines, problems) -> np.ndarray:
    text = column.astype(str).str.strip()
    empty = column.isna().to_numpy()
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    failed = parsed.isna().to_numpy() & ~empty
    if failed.any():
        # Rare non-ISO spellings ("01/02/2012"): retry only those rows with pandas' per-value parser.
        parsed.loc[failed] = pd.to_datetime(text[failed], format="mixed", utc=True, errors="coerce")
    bad = parsed.isna().to_numpy()
    _first(bad, 0, lambda i: DataError(BAD_DATE.format(value="" if empty[i] else text.iloc[i]),
                                       file=path, line=int(lines[i]), column=written), problems)
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def _numbers(column: pd.Series, path, written, lines, problems, *, required: bool) -> np.ndarray | None:
    """float64 values of a column; None for an extra column that is text rather than numbers.

    An extra column is text when fewer than half of its non-empty cells parse as numbers; otherwise
    it is a numeric column with bad cells, and the first one is an error.
    """
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    text = column.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    present = column.notna().to_numpy()
    spelled_nan = text.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
    failed = np.isnan(numbers) & present & ~spelled_nan
    if not required and failed.sum() * 2 > present.sum():
        return None
    _first(failed, 1, lambda i: DataError(BAD_NUMBER.format(value=text.iloc[i]), file=path,
                                         line=int(lines[i]), column=written), problems)
    return numbers


def _check_values(values, features, path, names, lines, problems) -> None:
    """Finite values, positive prices, non-negative volume, high >= low, features within float32."""
    def at(column, message):
        return lambda i: DataError(message(i), file=path, line=int(lines[i]), column=column)

    checked = [(names[k], v) for k, v in values.items()] + list(features.items())
    for order, (column, v) in enumerate(checked, start=2):
        _first(np.isnan(v), order, at(column, lambda i: MISSING_VALUE), problems)
        _first(np.isinf(v), order, at(column, lambda i, v=v: NOT_FINITE.format(value=v[i])), problems)
    base = 2 + len(checked)
    for k in PRICES:
        if k in values:
            v = values[k]
            _first(v <= 0, base, at(names[k], lambda i, v=v: PRICE_NOT_POSITIVE.format(value=v[i])), problems)
    if "volume" in values:
        v = values["volume"]
        _first(v < 0, base, at(names["volume"], lambda i: VOLUME_NEGATIVE.format(value=v[i])), problems)
    if "high" in values and "low" in values:
        hi, lo = values["high"], values["low"]
        _first(hi < lo, base + 1, at(names["high"], lambda i: HIGH_BELOW_LOW.format(high=hi[i], low=lo[i])),
               problems)
    for column, v in features.items():
        _first(np.abs(v) > F32_MAX, base + 2, at(column, lambda i, v=v: TOO_LARGE.format(value=v[i])), problems)


# ------------------------------------------------------------------------------------ several files → panel

def _check_same_columns(files: list[_File]) -> None:
    first = files[0]
    expected = set(first.values) | set(first.features)
    for f in files[1:]:
        have = set(f.values) | set(f.features)
        for column in sorted(have - expected):
            raise DataError(EXTRA_COLUMN.format(column=column, first=first.path.name),
                            file=f.path, line=1, column=column)
        for column in sorted(expected - have):
            raise DataError(LACKING_COLUMN.format(column=column, first=first.path.name), file=f.path, column=column)


def _assemble(files: list[_File], missing: str):
    """Stack the files' rows into (T, N) arrays, refusing duplicates and handling missing bars."""
    dates = np.concatenate([f.dates for f in files])
    tics = np.concatenate([f.tics for f in files])
    lines = np.concatenate([f.lines for f in files])
    owner = np.concatenate([np.full(len(f.dates), i) for i, f in enumerate(files)])
    uniq_dates, date_code = np.unique(dates, return_inverse=True)
    tickers, tic_code = np.unique(tics.astype(str), return_inverse=True)
    t, n = len(uniq_dates), len(tickers)

    key = date_code.astype(np.int64) * n + tic_code
    dup = pd.Series(key).duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        j = int(np.flatnonzero(key == key[i])[0])
        f, g = files[owner[i]], files[owner[j]]
        raise DataError(DUPLICATE.format(date=_day(dates[i]), tic=str(tics[i]), first=f"{g.path.name} line {lines[j]}"),
                        file=f.path, line=int(lines[i]), column=f.names["date"])

    present = np.zeros((t, n), dtype=bool)
    present[date_code, tic_code] = True
    prices = {}
    for k in files[0].values:
        panel = np.full((t, n), np.nan)
        panel[date_code, tic_code] = np.concatenate([f.values[k] for f in files])
        prices[k] = panel
    feature_names = tuple(files[0].features)
    feats = np.full((t, n, len(feature_names)), np.nan)
    for c, column in enumerate(feature_names):
        feats[date_code, tic_code, c] = np.concatenate([f.features[column] for f in files])

    meta = {"dropped_dates": 0, "filled_bars": 0}
    if not present.all():
        where = lambda d: files[owner[int(np.flatnonzero(date_code == d)[0])]]  # noqa: E731
        if missing == "error":
            _raise_missing(present, uniq_dates, tickers, where)
        if missing == "drop":
            keep = present.all(axis=1)
            if not keep.any():
                raise DataError(NOTHING_LEFT, file=files[0].path)
            meta["dropped_dates"] = int((~keep).sum())
            uniq_dates, feats = uniq_dates[keep], feats[keep]
            prices = {k: v[keep] for k, v in prices.items()}
        else:
            prices, feats = _forward_fill(present, prices, feats, uniq_dates, tickers, where)
            meta["filled_bars"] = int((~present).sum())
    if feature_names:
        meta["feature_source"] = "file"
        features = feats.astype(np.float32)
    else:
        meta["feature_source"] = "computed"
        feature_names, features = price_features(prices)
    tickers = tuple(str(x) for x in tickers)
    return uniq_dates.astype("datetime64[ns]"), tickers, prices, features, feature_names, meta


def _raise_missing(present, dates, tickers, where) -> None:
    absent = ~present
    first_missing = np.where(absent.any(axis=0), absent.argmax(axis=0), len(dates))
    col = int(np.argmin(first_missing))  # the ticker missing earliest (ties: first by name)
    row = int(first_missing[col])
    f = where(row)
    raise DataError(MISSING_TICKER.format(tic=str(tickers[col]), date=_day(dates[row]),
                                          count=int(absent[:, col].sum()), total=len(dates)),
                    file=f.path, column=f.names.get("tic", "tic"))


def _forward_fill(present, prices, feats, dates, tickers, where):
    """Fill a ticker's missing bars from its previous bar: a flat bar at the previous close, volume 0.

    A missing bar means nothing traded, so open/high/low equal the carried close rather than copying
    the previous bar's range.
    """
    if not present[0].all():
        col = int(np.argmin(present[0]))
        f = where(0)
        raise DataError(MISSING_AT_START.format(tic=str(tickers[col]), date=_day(dates[0])),
                        file=f.path, column=f.names.get("tic", "tic"))
    t, n = present.shape
    source = np.where(present, np.arange(t)[:, None], 0)
    source = np.maximum.accumulate(source, axis=0)  # row of the last real bar at or before t
    cols = np.arange(n)[None, :]
    filled = {k: v[source, cols] for k, v in prices.items()}
    absent = ~present
    for k in ("open", "high", "low"):
        if k in filled:
            filled[k][absent] = filled["close"][absent]
    if "volume" in filled:
        filled["volume"][absent] = 0.0
    return filled, feats[source, cols]


def _day(value) -> str:
    text = str(np.datetime64(value, "s"))
    return text[:10] if text.endswith("T00:00:00") else text.replace("T", " ")
