"""people: one foreign key, (circuit, consultation), instead of one on each

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:30:00

A person's circuit and consultation were checked apart: the circuit existed, the consultation
existed. One composite key checks both at once, and more: that the circuit is one of the
person's consultation's (`circuits.consultation_id` still refers to `consultations`). It costs
one check per person on import instead of two, about a tenth of the database's work for a
registry of a million (docs/performance.md, eleventh session).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# SQLite names no constraint: batch mode needs a name to find one by.
NAMING = {
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s",
}
CIRCUIT_KEY = "uq_circuits_id_consultation_id"
PERSON_KEY = "fk_people_circuit_in_consultation"
OLD_KEYS = {"circuit_id": "circuits", "consultation_id": "consultations"}


def upgrade() -> None:
    with op.batch_alter_table("circuits", naming_convention=NAMING) as batch_op:
        batch_op.create_unique_constraint(CIRCUIT_KEY, ["id", "consultation_id"])
    with op.batch_alter_table("people", naming_convention=NAMING) as batch_op:
        for column, table in OLD_KEYS.items():
            batch_op.drop_constraint(_old_name(column, table), type_="foreignkey")
        batch_op.create_foreign_key(
            PERSON_KEY, "circuits", ["circuit_id", "consultation_id"], ["id", "consultation_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("people", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(PERSON_KEY, type_="foreignkey")
        for column, table in OLD_KEYS.items():
            batch_op.create_foreign_key(f"fk_people_{column}_{table}", table, [column], ["id"])
    with op.batch_alter_table("circuits", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(CIRCUIT_KEY, type_="unique")


def _old_name(column: str, table: str) -> str:
    """The key's name: PostgreSQL's own (0001 gave none), or the one NAMING gives on SQLite."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return f"fk_people_{column}_{table}"
    found = bind.execute(
        sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'people'::regclass "
            "AND contype = 'f' AND conkey = ARRAY[(SELECT attnum FROM pg_attribute "
            "WHERE attrelid = 'people'::regclass AND attname = :column)]::smallint[]"
        ),
        {"column": column},
    ).scalar_one()
    return str(found)
