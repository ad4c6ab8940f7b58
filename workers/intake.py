"""The intake job: a batch of acknowledged messages becomes votes and replies, in one commit.

A batch is claimed row by row (`status = 'pending'`), judged by the pure rules in `voting`,
written under the database's unique constraints, and marked done in the same transaction. So a
job that runs twice, or two jobs that race for the same message, change nothing the second time.
The replies are enqueued only after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.db import transaction
from gateway.models import InboundRow, OptOutRow, OutboundRow, utcnow
from gateway.sql import insert_ignoring_conflicts
from messages import catalogue
from voting import grammar, rules
from voting.model import Ballot, Consultation, Participation, Person
from voting.receipts import new_receipt
from workers import ballot_box, runtime
from workers.replies import enqueue_replies


@dataclass(frozen=True)
class Reply:
    key: str
    params: dict[str, object]


def process_inbound(inbound_ids: list[int]) -> dict[str, int]:
    """RQ job: count the votes among these messages and queue one reply for each."""
    rt = runtime.current()
    with transaction(rt.sessions) as session:
        messages = claim_pending(session, inbound_ids)
        reply_ids = handle_batch(session, messages)
    enqueue_replies(rt, reply_ids)
    return {"processed": len(messages), "replies": len(reply_ids)}


def claim_pending(session: Session, inbound_ids: Sequence[int]) -> list[InboundRow]:
    """The still-pending messages among these, locked; a concurrent job skips them."""
    query = (
        select(InboundRow)
        .where(InboundRow.id.in_(inbound_ids), InboundRow.status == "pending")
        .order_by(InboundRow.received_at, InboundRow.id)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def handle_batch(session: Session, messages: list[InboundRow]) -> list[int]:
    if not messages:
        return []
    consultations = ballot_box.all_consultations(session)
    opted_out = _opted_out(session, {m.sender for m in messages})
    booth = Booth(session, messages)
    now = utcnow()
    outbound: list[OutboundRow] = []
    for message in messages:
        consultation = rules.consultation_for(consultations, message.received_at)
        outcome, reply = booth.handle(message, consultation, opted_out)
        message.status, message.outcome, message.processed_at = "done", outcome, now
        message.consultation_id = consultation.id if consultation else None
        if reply and message.sender not in opted_out and message.sender.startswith("+"):
            body = catalogue.render(reply.key, catalogue.DEFAULT_LOCALE, **reply.params)
            outbound.append(_reply_row(message, body, now))
    session.add_all(outbound)
    session.flush()
    return [row.id for row in outbound]


def _opted_out(session: Session, senders: set[str]) -> set[str]:
    rows = session.scalars(select(OptOutRow.phone).where(OptOutRow.phone.in_(senders)))
    return set(rows)


def _reply_row(message: InboundRow, body: str, now: datetime) -> OutboundRow:
    return OutboundRow(
        inbound_id=message.id,
        provider=message.provider,
        recipient=message.sender,
        body=body,
        status="queued",
        created_at=now,
        updated_at=now,
    )


class Booth:
    """Judges the messages of one batch in order, remembering what earlier ones changed.

    Everything a vote is judged on (who is on each phone, their ballots, who already voted) is
    read in three queries per consultation for the whole batch, not per message.
    """

    def __init__(self, session: Session, messages: list[InboundRow]) -> None:
        self.session = session
        self.senders = {m.sender for m in messages}
        self.people: dict[int, dict[str, list[Person]]] = {}
        self.ballots: dict[int, Ballot] = {}
        self.standing: dict[int, dict[int, Participation]] = {}

    def handle(
        self, message: InboundRow, consultation: Consultation | None, opted_out: set[str]
    ) -> tuple[str, Reply | None]:
        parsed = grammar.parse(message.body)
        if isinstance(parsed, grammar.Keyword):
            return self._keyword(parsed.name, message.sender, opted_out)
        if isinstance(parsed, grammar.ReceiptCheck):
            return self._receipt(parsed.code)
        if consultation is None:
            return "no_consultation", Reply("no_consultation", {})
        if isinstance(parsed, grammar.Ambiguous):
            options = ", ".join(map(str, parsed.options))
            return "ambiguous", Reply("ambiguous", {"options": options, "example": 3})
        if isinstance(parsed, grammar.Unrecognised):
            return "unrecognised", Reply("unrecognised", {})
        return self._vote(message, consultation, parsed)

    def _keyword(self, name: str, sender: str, opted_out: set[str]) -> tuple[str, Reply | None]:
        if name == "stop":
            # Twilio itself confirms the opt-out and blocks our later sends; we stay silent.
            stop = insert_ignoring_conflicts(self.session, OptOutRow)
            self.session.execute(stop.values(phone=sender, at=utcnow()))
            opted_out.add(sender)
            return "stop", None
        if name == "start":
            self.session.execute(delete(OptOutRow).where(OptOutRow.phone == sender))
            opted_out.discard(sender)
            return "start", Reply("opted_in", {})
        return "help", Reply("help", {})

    def _receipt(self, code: str | None) -> tuple[str, Reply]:
        """Whether the vote behind a receipt counts; never which option it was."""
        if code is None:
            return "receipt", Reply("receipt_unreadable", {})
        found = ballot_box.receipt_status(self.session, code)
        if found is None:
            return "receipt", Reply("receipt_unknown", {"receipt": code})
        name, replaced = found
        key = "receipt_replaced" if replaced else "receipt_counted"
        return "receipt", Reply(key, {"receipt": code, "name": name})

    def _vote(
        self, message: InboundRow, consultation: Consultation, vote: grammar.Vote
    ) -> tuple[str, Reply]:
        self._prefetch(consultation.id)
        on_phone = self.people[consultation.id].get(message.sender, [])
        standing = self.standing[consultation.id]
        verdict = rules.judge(
            consultation,
            message.received_at,
            vote.option,
            vote.national_id,
            on_phone,
            self.ballots,
            standing,
        )
        if isinstance(verdict, rules.Rejected):
            return verdict.reason.value, _rejection(verdict, consultation, self.ballots)
        if not self._record(message, consultation, verdict):
            # Another transaction counted this person first: judge again against its vote.
            standing[verdict.person.id] = ballot_box.standing_vote(
                self.session, consultation.id, verdict.person.id
            )
            return self._vote(message, consultation, vote)
        key = "confirmed" if verdict.replaces is None else "replaced"
        receipt = standing[verdict.person.id].receipt
        return key, Reply(key, {"name": consultation.name, "receipt": receipt})

    def _prefetch(self, consultation_id: int) -> None:
        if consultation_id in self.people:
            return
        people = ballot_box.people_by_phone(self.session, consultation_id, self.senders)
        everyone = [p for on_phone in people.values() for p in on_phone]
        self.people[consultation_id] = people
        self.ballots.update(ballot_box.ballots(self.session, {p.circuit_id for p in everyone}))
        self.standing[consultation_id] = ballot_box.standing_votes(
            self.session, consultation_id, [p.id for p in everyone]
        )

    def _record(
        self, message: InboundRow, consultation: Consultation, accepted: rules.Accepted
    ) -> bool:
        """Count the vote; False if the unique constraint says someone else was first."""
        session, at, person = self.session, message.received_at, accepted.person
        receipt = new_receipt()
        if accepted.replaces is None:
            won = ballot_box.claim_first_vote(
                session, consultation.id, person.id, receipt, at, message.channel
            )
        else:
            won = ballot_box.claim_replacement(
                session, consultation.id, accepted.replaces, receipt, at
            )
        if not won:
            return False
        if accepted.replaces is not None:
            ballot_box.retire(session, accepted.replaces.receipt, at)
        ballot_box.cast(session, consultation.id, person.circuit_id, accepted.option, receipt, at)
        self.standing[consultation.id][person.id] = Participation(person.id, receipt, at)
        return True


def _rejection(
    verdict: rules.Rejected, consultation: Consultation, ballots: dict[int, Ballot]
) -> Reply:
    params: dict[str, object] = {"name": consultation.name}
    if verdict.reason is rules.Reason.ALREADY_VOTED and verdict.standing:
        params["receipt"] = verdict.standing.receipt
    if verdict.reason is rules.Reason.NO_SUCH_OPTION and verdict.person:
        ballot = ballots.get(verdict.person.circuit_id)
        numbers = sorted(ballot.options) if ballot else []
        params["valid"] = _ranges(numbers) or "-"
        params["example"] = numbers[0] if numbers else 1
    if verdict.reason is rules.Reason.NOT_OPEN:
        local = consultation.opens_at.astimezone(ZoneInfo(consultation.timezone))
        params["opens"] = local.strftime("%d/%m/%Y %H:%M")
    return Reply(verdict.reason.value, params)


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 4] -> '1-4'; a ballot with gaps is listed in full."""
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(map(str, numbers))
