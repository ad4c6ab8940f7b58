"""Small builders for consultations, ballots and registries, written straight to the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from gateway.models import CircuitRow, ConsultationRow, OptionRow, PersonRow, PhoneRow


@dataclass
class Seeded:
    consultation_id: int
    slug: str
    circuits: dict[str, int] = field(default_factory=dict)  # code -> id
    people: dict[str, int] = field(default_factory=dict)  # national_id -> id


def seed(  # noqa: PLR0913 - a builder: every argument has a sensible default
    sessions: sessionmaker[Session],
    slug: str = "cpn-2026",
    opens: datetime | None = None,
    closes: datetime | None = None,
    revote: str = "first",
    require_id: bool = False,
    min_age: int = 15,
    max_age: int | None = None,
    ballots: dict[str, int] | None = None,
    people: list[tuple[str, str, date, list[str]]] | None = None,
) -> Seeded:
    """A consultation open now (unless told otherwise), its ballots and its registry.

    `ballots` maps circuit code to option count; `people` lists
    (national_id, circuit_code, birth_date, phones).
    """
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        consultation = ConsultationRow(
            slug=slug,
            name="Consulta de prueba",
            opens_at=opens or now - timedelta(hours=1),
            closes_at=closes or now + timedelta(hours=8),
            revote=revote,
            require_id=require_id,
            min_age=min_age,
            max_age=max_age,
            winners=1,
            timezone="America/Caracas",
            status="open",
        )
        session.add(consultation)
        session.flush()
        seeded = Seeded(consultation.id, slug)
        for code, count in (ballots or {"C1": 5}).items():
            circuit = CircuitRow(
                consultation_id=consultation.id, code=code, name=f"Circuito {code}"
            )
            session.add(circuit)
            session.flush()
            seeded.circuits[code] = circuit.id
            session.add_all(
                OptionRow(circuit_id=circuit.id, number=n, title=f"Proyecto {code}-{n}")
                for n in range(1, count + 1)
            )
        for national_id, code, birth, phones in people or []:
            person = PersonRow(
                consultation_id=consultation.id,
                national_id=national_id,
                national_id_clear=national_id,
                circuit_id=seeded.circuits[code],
                birth_date=birth,
            )
            session.add(person)
            session.flush()
            seeded.people[national_id] = person.id
            session.add_all(
                PhoneRow(consultation_id=consultation.id, person_id=person.id, phone=phone)
                for phone in phones
            )
    return seeded
