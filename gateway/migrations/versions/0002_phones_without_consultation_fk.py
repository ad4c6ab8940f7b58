"""phones: drop the foreign key on consultation_id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 07:25:00

`phones.consultation_id` repeats its person's consultation so that the webhook-time look-up
(`ix_phones_lookup`: consultation, phone) needs no join. Its foreign key checked nothing the
`person_id` key does not: a phone's person exists, and so does that person's consultation. It
cost one check per phone on import, a quarter of the database's work for a registry of a million.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite names no constraint: batch mode needs a name to find it by.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
SQLITE_NAME = "fk_phones_consultation_id_consultations"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_postgres_name(), "phones", type_="foreignkey")
        return
    with op.batch_alter_table("phones", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(SQLITE_NAME, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("phones", naming_convention=NAMING) as batch_op:
        batch_op.create_foreign_key(SQLITE_NAME, "consultations", ["consultation_id"], ["id"])


def _postgres_name() -> str:
    """The name PostgreSQL gave the key 0001 created without one."""
    found = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'phones'::regclass "
                "AND contype = 'f' AND conkey = ARRAY[(SELECT attnum FROM pg_attribute "
                "WHERE attrelid = 'phones'::regclass AND attname = 'consultation_id')]::smallint[]"
            )
        )
        .scalar_one()
    )
    return str(found)
