"""What a column's collation costs an index of keyed hashes: COPY into a table keyed like phones.

    python -m bench.collation [--rows 1250000] [--pairs 3] [--against default,es-x-icu]

Migration 0005 makes the keyed hashes and message IDs `COLLATE "C"` on PostgreSQL. This writes
`--rows` random 32-character hex values, each with a consultation and a person, into a scratch
table whose primary key is (consultation_id, phone_digest, person_id), as `phones` is, once
under "C" and once under each collation of `--against` ("default" is the database's own), in
alternating order for `--pairs` rounds (the machine's speed drifts within minutes), and prints
each COPY's wall time. Every COPY goes into a new table in its own transaction, as the import's
chunks go into a table that grows.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from bench.report import machine_lines
from bench.stack import scratch_database

TABLE = "collation_bench"


def rows_file(count: int) -> bytes:
    """COPY's text format: consultation 1, a random hash, a person number."""
    lines = io.StringIO()
    for person in range(count):
        lines.write(f"1\t{os.urandom(16).hex()}\t{person}\n")
    return lines.getvalue().encode()


def copy_seconds(url: str, collation: str, data: bytes) -> float:
    collate = (
        sql.SQL("")
        if collation == "default"
        else sql.SQL("COLLATE {}").format(sql.Identifier(collation))
    )
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)))
        db.execute(
            sql.SQL(
                "CREATE TABLE {} (consultation_id int, phone_digest varchar(32) {}, person_id int,"
                " PRIMARY KEY (consultation_id, phone_digest, person_id))"
            ).format(sql.Identifier(TABLE), collate)
        )
        db.execute("CHECKPOINT")  # the previous round's writes are not this one's to flush
        started = time.perf_counter()
        with (
            db.transaction(),
            db.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(TABLE))) as copy,
        ):
            copy.write(data)
        return time.perf_counter() - started


def default_collation(url: str) -> str:
    with psycopg.connect(url) as db:
        found = db.execute(
            "SELECT datcollate, datlocprovider FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    return f"{found[0]} (provider {found[1]})" if found else "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.collation", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_250_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--against", default="default,es-x-icu")
    options = parser.parse_args(argv)
    others = [name.strip() for name in options.against.split(",") if name.strip()]
    print(f"command     python -m bench.collation {' '.join(argv or sys.argv[1:])}".rstrip())
    print(*machine_lines(), sep="\n")
    data = rows_file(options.rows)
    times: dict[str, list[float]] = {name: [] for name in ["C", *others]}
    # A PostgreSQL scratch database needs no folder.
    with scratch_database("postgresql", Path(tempfile.gettempdir())) as (url, _):
        print(f"database    default collation {default_collation(url)}")
        for round_ in range(options.pairs):
            order = ["C", *others] if round_ % 2 == 0 else [*others, "C"]
            for collation in order:
                try:
                    seconds = copy_seconds(url, collation, data)
                except psycopg.errors.UndefinedObject:
                    print(f"collation {collation!r}: this PostgreSQL has no such collation")
                    return 2
                times[collation].append(seconds)
                print(f"round {round_ + 1}   {collation:<12} {seconds:6.2f} s", flush=True)
    for collation, seconds in times.items():
        shown = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"{collation:<12} COPY of {options.rows:,} rows: {shown} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
