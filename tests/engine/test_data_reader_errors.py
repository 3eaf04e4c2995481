"""Every kind of bad input is a DataError whose message and attributes name the file, the line
(header = line 1) and the column. Each CSV is small enough to count its lines by eye."""
from pathlib import Path

import pytest

from engine.data import DataError, read_csv


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip("\n"))
    return path


def rejects(path_or_paths, *, file: str, line, column, fragment: str, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        read_csv(path_or_paths, **kwargs)
    err = info.value
    message = str(err)
    assert Path(err.file).name == file and err.line == line and err.column == column, message
    where = f"{file} line {line}" if line is not None else file
    assert message.startswith(where), message
    if column is not None:
        assert f"column {column!r}" in message, message
    assert fragment in message, message
    assert isinstance(err, ValueError)
    return err


GOOD = """
date,tic,open,high,low,close,volume,score
2021-01-04,AA,1.0,1.2,0.9,1.1,10,0.1
2021-01-05,AA,1.1,1.4,1.0,1.3,11,0.2
2021-01-06,AA,1.3,1.5,1.2,1.4,12,0.3
"""


def bad(tmp_path, old: str, new: str, name="bad.csv") -> Path:
    """GOOD with one substring replaced (it must occur exactly once)."""
    assert GOOD.count(old) == 1
    return write(tmp_path, name, GOOD.replace(old, new))


def test_the_good_example_itself_reads(tmp_path):
    assert read_csv(write(tmp_path, "good.csv", GOOD)).close[:, 0].tolist() == [1.1, 1.3, 1.4]


@pytest.mark.parametrize("column", ["date", "close"])
def test_reader_rejects_a_missing_required_column(tmp_path, column):
    header = "date,tic,open,high,low,close,volume,score"
    kept = [c for c in header.split(",") if c != column]
    rows = [",".join(r.split(",")[i] for i, c in enumerate(header.split(",")) if c != column)
            for r in GOOD.strip().splitlines()[1:]]
    path = write(tmp_path, "nocol.csv", "\n".join([",".join(kept)] + rows) + "\n")
    rejects(path, file="nocol.csv", line=None, column=column, fragment=f"missing required column {column!r}")


def test_reader_rejects_an_unparsable_date(tmp_path):
    rejects(bad(tmp_path, "2021-01-05", "someday"), file="bad.csv", line=3, column="date",
            fragment="cannot parse 'someday' as a date")


def test_reader_rejects_an_empty_date(tmp_path):
    rejects(bad(tmp_path, "2021-01-06", ""), file="bad.csv", line=4, column="date", fragment="as a date")


def test_reader_rejects_an_unparsable_price(tmp_path):
    rejects(bad(tmp_path, ",1.3,11,", ",1.3x,11,"), file="bad.csv", line=3, column="close",
            fragment="cannot parse '1.3x' as a number")


def test_reader_rejects_an_unparsable_feature_value(tmp_path):
    rejects(bad(tmp_path, ",0.3\n", ",zero\n"), file="bad.csv", line=4, column="score",
            fragment="cannot parse 'zero' as a number")


def test_reader_rejects_an_empty_price_cell(tmp_path):
    rejects(bad(tmp_path, ",1.3,11,", ",,11,"), file="bad.csv", line=3, column="close", fragment="missing")


def test_reader_rejects_nan_in_a_feature(tmp_path):
    rejects(bad(tmp_path, ",0.2\n", ",nan\n"), file="bad.csv", line=3, column="score", fragment="missing")


def test_reader_rejects_infinity_in_volume(tmp_path):
    rejects(bad(tmp_path, ",12,", ",inf,"), file="bad.csv", line=4, column="volume",
            fragment="must be finite, got inf")


def test_reader_rejects_a_feature_too_large_for_float32(tmp_path):
    rejects(bad(tmp_path, ",0.2\n", ",1e300\n"), file="bad.csv", line=3, column="score", fragment="float32")


def test_reader_rejects_a_negative_close_with_the_documented_message(tmp_path):
    err = rejects(bad(tmp_path, ",1.3,11,", ",-3.5,11,", name="dj30.csv"), file="dj30.csv", line=3,
                  column="close", fragment="price must be > 0, got -3.5")
    assert str(err) == "dj30.csv line 3, column 'close': price must be > 0, got -3.5"


@pytest.mark.parametrize("old, new, column", [
    ("2021-01-05,AA,1.1,", "2021-01-05,AA,0,", "open"),
    ("1.0,1.2,0.9,1.1", "1.0,1.2,-0.9,1.1", "low"),
])
def test_reader_rejects_prices_that_are_not_positive(tmp_path, old, new, column):
    rejects(bad(tmp_path, old, new), file="bad.csv", line=2 if "1.0,1.2" in old else 3, column=column,
            fragment="price must be > 0")


def test_reader_rejects_negative_volume(tmp_path):
    rejects(bad(tmp_path, ",11,", ",-1,"), file="bad.csv", line=3, column="volume",
            fragment="volume must be >= 0, got -1")


def test_reader_rejects_high_below_low(tmp_path):
    rejects(bad(tmp_path, "1.3,1.5,1.2,1.4", "1.3,1.1,1.2,1.4"), file="bad.csv", line=4, column="high",
            fragment="high 1.1 is below low 1.2")


def test_reader_reports_the_earliest_offending_line_when_there_are_several(tmp_path):
    path = bad(tmp_path, "2021-01-06,AA,1.3,1.5,1.2,1.4,12", "2021-01-06,AA,1.3,1.5,1.2,-1,12")
    path.write_text(path.read_text().replace(",0.2\n", ",oops\n"))
    rejects(path, file="bad.csv", line=3, column="score", fragment="'oops'")


def test_reader_rejects_a_duplicate_date_and_ticker_in_one_file(tmp_path):
    path = write(tmp_path, "dup.csv", GOOD.strip() + "\n2021-01-05,AA,1.1,1.4,1.0,1.3,11,0.2\n")
    rejects(path, file="dup.csv", line=5, column="date",
            fragment="duplicate bar for date 2021-01-05 and ticker 'AA'; first seen in dup.csv line 3")


def test_reader_rejects_a_date_and_ticker_repeated_in_a_later_file(tmp_path):
    first = write(tmp_path, "train.csv", GOOD)
    second = write(tmp_path, "valid.csv", """
date,tic,open,high,low,close,volume,score
2021-01-07,AA,1.4,1.5,1.3,1.5,13,0.4
2021-01-06,AA,1.3,1.5,1.2,1.4,12,0.3
""")
    rejects([first, second], file="valid.csv", line=3, column="date", fragment="first seen in train.csv line 4")


def test_reader_rejects_files_with_different_columns(tmp_path):
    first = write(tmp_path, "train.csv", GOOD)
    second = write(tmp_path, "valid.csv", """
date,tic,open,high,low,close,volume
2021-01-07,AA,1.4,1.5,1.3,1.5,13
""")
    rejects([first, second], file="valid.csv", line=None, column="score", fragment="missing from this file")


def test_reader_rejects_an_empty_ticker(tmp_path):
    rejects(bad(tmp_path, "2021-01-05,AA,", "2021-01-05,,"), file="bad.csv", line=3, column="tic",
            fragment="ticker is missing")


def test_reader_counts_blank_lines_in_line_numbers(tmp_path):
    text = GOOD.replace("2021-01-05,AA,1.1,1.4,1.0,1.3", "\n2021-01-05,AA,1.1,1.4,1.0,-1.3")
    rejects(write(tmp_path, "blank.csv", text), file="blank.csv", line=4, column="close", fragment="> 0")


def test_reader_rejects_an_empty_file(tmp_path):
    rejects(write(tmp_path, "empty.csv", ""), file="empty.csv", line=None, column=None, fragment="empty")


def test_reader_rejects_a_file_with_only_a_header(tmp_path):
    rejects(write(tmp_path, "header.csv", "date,tic,close\n"), file="header.csv", line=None, column=None,
            fragment="no data rows")


def test_reader_rejects_a_row_with_too_many_fields(tmp_path):
    path = write(tmp_path, "ragged.csv", "date,tic,close\n2021-01-04,AA,1\n2021-01-05,AA,2,9\n")
    rejects(path, file="ragged.csv", line=3, column=None, fragment="cannot read the file as CSV")
