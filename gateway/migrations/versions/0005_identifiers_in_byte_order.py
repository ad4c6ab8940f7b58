"""identifiers in byte order: keyed hashes and provider IDs compared as bytes on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 03:00:00

The keyed hashes of national IDs and phones, and the providers' message IDs, are looked up and kept
unique by index, and every insert into those indexes compares its value with a dozen others. Under
the database's default collation each comparison goes through the locale's rules (glibc's
`strcoll`, or ICU's), which order the words of a language; these values are hex and ASCII codes
whose only order that matters is any fixed one. Under `COLLATE "C"` PostgreSQL compares them with
`memcmp`. COPY of 1,250,000 rows into a table keyed like phones took 6.2 to 6.8 s under "C" against
8.5 to 9.6 s under an ICU Spanish collation and 7.3 to 8.0 s under this machine's C.UTF-8 (three
alternating rounds, `python -m bench.collation`); the import of a million people, which writes two
such indexes, did not move measurably on C.UTF-8 (four alternating pairs, within the machine's
drift; docs/performance.md, thirteenth session). A database created in a Spanish locale, as a
deployment here would be, gains the most.

Only the collation changes, so PostgreSQL rewrites no table, but it rebuilds the indexes on these
columns, holding their tables meanwhile: upgrade between rounds, as for every migration. SQLite
already compares text as bytes (BINARY). The models leave the collation out on purpose: the same
types are cast into arrays for the bulk statements, where a collation cannot be written, and a
comparison between a "C" column and a value of the default collation is made in "C".
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> (column, its VARCHAR length)
IDENTIFIERS = {
    "people": [("national_id_digest", 32)],
    "phones": [("phone_digest", 32)],
    "opt_outs": [("phone_digest", 32)],
    "phone_preferences": [("phone_digest", 32)],
    "inbound_messages": [("provider", 32), ("external_id", 64)],
    "outbound_messages": [("provider_sid", 64)],
}


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate(None)  # the database's default again


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in IDENTIFIERS.items():
        for column, length in columns:
            op.alter_column(
                table,
                column,
                type_=sa.String(length, collation=collation),
                existing_type=sa.String(length),
            )
