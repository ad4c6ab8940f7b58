"""phones: one key, (consultation, phone, person), serves the look-up; id and two indexes go

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:00:00

Nothing reads or refers to `phones.id`: a phone is only ever found by (consultation, phone),
then its person. Yet each imported phone paid for three indexes (the id's, the unique
(person_id, phone_digest) and the look-up's) and a value from a sequence. One primary key,
(consultation_id, phone_digest, person_id), does all their work: its first two columns are the
look-up, and since a person belongs to one consultation it is unique exactly when (person,
phone) is. The key holds the person too, so the look-up need not read the table for it. A
registry of a million people (1.25 million phones) writes one index per phone instead of three
(docs/performance.md, twelfth session).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# SQLite names no constraint: batch mode needs a name to find one by.
NAMING = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
}
NEW_KEY = ["consultation_id", "phone_digest", "person_id"]
OLD_UNIQUE = ["person_id", "phone_digest"]
SQLITE_UNIQUE = "uq_phones_person_id_phone_digest"
LOOKUP = "ix_phones_lookup"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # In place: dropping the column drops its key and the sequence it owned.
        op.drop_constraint(_postgres_unique(), "phones", type_="unique")
        op.drop_column("phones", "id")
        op.drop_index(LOOKUP, "phones")
        op.create_primary_key("phones_pkey", "phones", NEW_KEY)
        return
    with op.batch_alter_table("phones", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(SQLITE_UNIQUE, type_="unique")
        batch_op.drop_column("id")
        batch_op.drop_index(LOOKUP)
        batch_op.create_primary_key("pk_phones", NEW_KEY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("phones_pkey", "phones", type_="primary")
        # A serial column numbers the rows already there as it is added.
        op.execute("ALTER TABLE phones ADD COLUMN id SERIAL PRIMARY KEY")
        op.create_unique_constraint(None, "phones", OLD_UNIQUE)
        op.create_index(LOOKUP, "phones", ["consultation_id", "phone_digest"])
        return
    with op.batch_alter_table("phones", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("pk_phones", type_="primary")
        # INTEGER PRIMARY KEY is SQLite's rowid: the copied rows are numbered as they land.
        batch_op.add_column(sa.Column("id", sa.Integer(), primary_key=True))
        batch_op.create_unique_constraint(SQLITE_UNIQUE, OLD_UNIQUE)
        batch_op.create_index(LOOKUP, ["consultation_id", "phone_digest"])


def _postgres_unique() -> str:
    """The name PostgreSQL gave the unique (person_id, phone_digest) that 0001 left unnamed."""
    found = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'phones'::regclass "
                "AND contype = 'u' AND conkey::int[] = ARRAY(SELECT attnum FROM pg_attribute "
                "WHERE attrelid = 'phones'::regclass AND attname = ANY(:columns) "
                "ORDER BY array_position(:columns, attname::text))::int[]"
            ),
            {"columns": OLD_UNIQUE},
        )
        .scalar_one()
    )
    return str(found)
