"""The synthetic consultation the pipeline benchmark loads: 5,400 circuits, 5-7 options, N people.

Everything about a person follows from their index, so the load process can address a voter
(phone, circuit, ballot size) without reading the registry back from the database, and the
orchestrator can write the CSV files the real `consulta` commands import.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

CIRCUITS = 5_400  # communal circuits per round (domain.md: 5,334-5,338 in 2025)
SLUG = "bench"
NAME = "Consulta de prueba"
MAX_PEOPLE = 9_999_999  # one mobile prefix, seven digits


def circuit_code(circuit: int) -> str:
    return f"CC-{circuit:04d}"


def options_of(circuit: int) -> int:
    """Five, six or seven projects on each ballot (domain.md: "up to seven")."""
    return 5 + circuit % 3


def circuit_of(person: int) -> int:
    return person % CIRCUITS


def national_id(person: int) -> str:
    return f"V{10_000_000 + person}"


def phone(person: int) -> str:
    """E.164, as Twilio sends `From`; the registry file writes it in the national format."""
    return f"+58414{person:07d}"


def unknown_phone(index: int) -> str:
    """A valid Venezuelan mobile that is on nobody's registry entry (another prefix)."""
    return f"+58416{index % 10_000_000:07d}"


def birth_date(person: int) -> date:
    """Everyone between 21 and 75 years old: the age band never refuses a benchmark vote."""
    return date(1950 + person % 55, 1 + person % 12, 1 + person % 28)


def write_ballots(path: Path) -> int:
    """ballots.csv as README describes it; returns the number of option lines."""
    lines = ["circuit_code,circuit_name,option,title"]
    for circuit in range(CIRCUITS):
        code = circuit_code(circuit)
        lines += [
            f"{code},Circuito Comunal {circuit:04d},{n},Proyecto {n} del circuito {circuit:04d}"
            for n in range(1, options_of(circuit) + 1)
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


def write_registry(path: Path, people: int) -> None:
    """registry.csv: one line per person, phones in the national format people type."""
    with path.open("w", encoding="utf-8") as out:
        out.write("national_id,circuit_code,birth_date,phones\n")
        step = 100_000
        for start in range(0, people, step):
            out.write(
                "".join(
                    f"{national_id(p)},{circuit_code(circuit_of(p))},"
                    f"{birth_date(p).isoformat()},0414-{p:07d}\n"
                    for p in range(start, min(people, start + step))
                )
            )
