"""Reads candle exports back with clients from PyPI and compares every value with a reference.

Usage: python3 tests/export_read.py [--every=N] REFERENCE.json KIND:PATH...
  --every=N       compare every N-th row only (all rows are still read and counted)
  REFERENCE.json  the candles the test wrote to the gold table, in file order: a list of objects
                  keyed by the export's column names; times epoch ms, doubles as JSON numbers,
                  decimals as their exact text, vwap null when absent.
  KIND            csv (read with Python's csv module and DuckDB's read_csv, every column as text)
                  or parquet (read with pyarrow and DuckDB's read_parquet).
Prints one line per file and reader; exits 1 on the first difference, naming row and column.
"""
import csv
import json
import sys
from datetime import datetime, timezone
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ["symbol", "interval", "window_start", "window_end", "open", "high", "low", "close",
           "volume", "pv_sum", "vwap", "trade_count", "is_final", "gap_ms", "gap_count", "coverage"]
DECIMALS = {"volume", "pv_sum", "vwap"}
DOUBLES = {"open", "high", "low", "close", "coverage"}
INTEGERS = {"trade_count", "gap_ms", "gap_count"}
TIMES = {"window_start", "window_end"}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EVERY = 1


def fail(where, message):
    print(f"export_read: {where}: {message}", file=sys.stderr)
    sys.exit(1)


def ms_of(dt):
    if dt.tzinfo is None:
        fail("time", f"{dt!r} has no zone")
    delta = dt - EPOCH
    return (delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000)


def same(where, name, got, want):
    """got: a typed value as a reader gives it; want: the reference's."""
    if want is None:
        if got is not None and got != "":
            fail(where, f"{name}: want null, got {got!r}")
        return
    if name in DECIMALS:
        if not isinstance(got, str):
            fail(where, f"{name}: a decimal must arrive as exact text, got {type(got).__name__} {got!r}")
        if got != want or Decimal(got) != Decimal(want):
            fail(where, f"{name}: want {want}, got {got}")
    elif name in DOUBLES:
        if not isinstance(got, float) or got != float(want):
            fail(where, f"{name}: want {float(want)!r}, got {got!r}")
    elif name in TIMES:
        if ms_of(got) != want:
            fail(where, f"{name}: want {want} ms, got {got!r}")
    elif name in INTEGERS:
        if not isinstance(got, int) or isinstance(got, bool) or got != want:
            fail(where, f"{name}: want {want}, got {got!r}")
    elif got != want:
        fail(where, f"{name}: want {want!r}, got {got!r}")


def typed_from_text(name, text):
    """A CSV field as the export documents it."""
    if text == "" and name == "vwap":
        return None
    if name in DOUBLES:
        return float(text)
    if name in TIMES:
        if not text.endswith("Z") or len(text) != 24:
            fail("csv", f"{name}: {text!r} is not ISO 8601 UTC with milliseconds")
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if name in INTEGERS:
        return int(text)
    if name == "is_final":
        if text not in ("true", "false"):
            fail("csv", f"is_final: {text!r}")
        return text == "true"
    return text


def compare(label, header, rows, reference, convert=lambda name, value: value):
    if list(header) != COLUMNS:
        fail(label, f"columns {list(header)} != {COLUMNS}")
    if len(rows) != len(reference):
        fail(label, f"{len(rows)} rows, want {len(reference)}")
    for i in range(0, len(rows), EVERY):
        for name, got in zip(header, rows[i]):
            same(f"{label} row {i}", name, convert(name, got), reference[i][name])
    print(f"{label}: {len(rows)} rows, " +
          ("all equal" if EVERY == 1 else f"every {EVERY}th equal"))


def read_csv_module(path, reference):
    with open(path, newline="", encoding="utf-8") as f:
        raw = f.read()
    if raw and not raw.endswith("\r\n"):
        fail(path, "lines must end with CRLF")
    records = list(csv.reader(raw.splitlines(keepends=True)))
    header, body = records[0], records[1:]
    compare(f"{path} (csv module)", header, body, reference, typed_from_text)


def read_csv_duckdb(path, reference):
    rel = duckdb.sql(f"SELECT * FROM read_csv('{path}', header = true, all_varchar = true)")
    compare(f"{path} (duckdb read_csv)", rel.columns, rel.fetchall(), reference,
            lambda name, text: typed_from_text(name, text if text is not None else ""))


def read_parquet_pyarrow(path, reference):
    table = pq.read_table(path)
    schema = table.schema
    want_types = {
        "symbol": pa.string(), "interval": pa.string(),
        "window_start": pa.timestamp("ms", tz="UTC"), "window_end": pa.timestamp("ms", tz="UTC"),
        "open": pa.float64(), "high": pa.float64(), "low": pa.float64(), "close": pa.float64(),
        "volume": pa.string(), "pv_sum": pa.string(), "vwap": pa.string(),
        "trade_count": pa.int64(), "is_final": pa.bool_(),
        "gap_ms": pa.int64(), "gap_count": pa.int64(), "coverage": pa.float64(),
    }
    for name, want in want_types.items():
        field = schema.field(name)
        if field.type != want:
            fail(path, f"pyarrow type of {name}: {field.type}, want {want}")
        if field.nullable != (name == "vwap"):
            fail(path, f"{name} nullable={field.nullable}")
    columns = table.to_pydict()
    rows = [[columns[n][i] for n in schema.names] for i in range(table.num_rows)]
    compare(f"{path} (pyarrow, {pq.ParquetFile(path).num_row_groups} row groups)", schema.names,
            rows, reference)


def read_parquet_duckdb(path, reference):
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    types = dict(con.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()[i][:2]
                 for i in range(len(COLUMNS)))
    for name in DECIMALS:
        if types[name] != "VARCHAR":
            fail(path, f"duckdb type of {name}: {types[name]}")
    for name in TIMES:
        if types[name] != "TIMESTAMP WITH TIME ZONE":
            fail(path, f"duckdb type of {name}: {types[name]}")
    rel = con.sql(f"SELECT * FROM read_parquet('{path}')")
    compare(f"{path} (duckdb read_parquet)", rel.columns, rel.fetchall(), reference)


def main():
    global EVERY
    args = sys.argv[1:]
    if args and args[0].startswith("--every="):
        EVERY = int(args.pop(0).split("=", 1)[1])
    reference = json.load(open(args[0], encoding="utf-8"))
    for arg in args[1:]:
        kind, path = arg.split(":", 1)
        if kind == "csv":
            read_csv_module(path, reference)
            read_csv_duckdb(path, reference)
        elif kind == "parquet":
            read_parquet_pyarrow(path, reference)
            read_parquet_duckdb(path, reference)
        else:
            fail(arg, "kind must be csv or parquet")


if __name__ == "__main__":
    main()
