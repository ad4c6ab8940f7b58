"""The booth: what one message means for the voter who sent it, and what we answer.

It judges the messages of a batch in order, remembering what earlier ones changed. Everything a
vote is judged on (who is on each phone, their ballots, who already voted, opt-outs, language
choices) is read in a few queries for the whole batch, not per message.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway import audit, ballot_box, privacy
from gateway.models import OptOutRow, PhonePreferenceRow, VoteRow, utcnow
from gateway.settings import Settings
from gateway.sql import among, insert_ignoring_conflicts, insert_rows, upsert
from messages import catalogue
from messages.ballot import ballot_texts
from messages.voice import Voice
from voting import grammar, rules
from voting.model import Ballot, Consultation, Participation, Person, RevotePolicy
from voting.receipts import PAPER_RECEIPT, new_receipt

MAX_SHOWN_OPTIONS = 9  # numbers repeated back in the "ambiguous" reply


@dataclass(frozen=True)
class Message:
    """A recorded message this job owns: its row is new in, or locked by, the job's transaction."""

    id: int
    provider: str
    channel: str
    sender: str
    body: str
    receipt: str | None  # a USSD vote's, given to the voter when they confirmed
    received_at: datetime


@dataclass(frozen=True)
class Answer:
    outcome: str  # recorded on the inbound message: confirmed, already_voted, stop, ...
    texts: tuple[str, ...] = ()  # what we reply, in parts; empty for none


class ClaimLostError(Exception):
    """Another transaction counted someone this batch counted optimistically: judge it again."""


class Booth:
    """Judges a batch. With `defer_claims`, first votes are claimed together at the end.

    Claiming one participation at a time costs a statement per vote, the largest share of a
    worker's time. Deferred, the booth judges the batch as if each of its claims will win (it
    almost always does: losing needs two workers judging the same person at once), then claims
    them in one `INSERT … ON CONFLICT DO NOTHING RETURNING`. If any claim lost, `settle` raises
    `ClaimLostError` and the caller judges the batch again from a savepoint (`intake.handle_batch`:
    together again a few times, then one claim at a time).
    """

    def __init__(
        self,
        session: Session,
        messages: list[Message],
        settings: Settings,
        defer_claims: bool = False,
    ) -> None:
        self.session = session
        self.settings = settings
        self.defer_claims = defer_claims
        # The deferred first-vote claims, by (consultation ID, person ID).
        self.claims: dict[tuple[int, int], dict[str, object]] = {}
        self.senders = {m.sender for m in messages}
        # One query each for the whole batch: who opted out, and who chose a language. Both
        # tables hold keyed hashes of the numbers; map them back to the numbers of this batch.
        by_digest = {privacy.digest(sender): sender for sender in self.senders}
        self.opted_out = {
            by_digest[d]
            for d in session.scalars(
                select(OptOutRow.phone).where(among(session, OptOutRow.phone, self.senders))
            )
        }
        chosen = select(PhonePreferenceRow.phone, PhonePreferenceRow.language)
        self.languages = {
            by_digest[d]: language
            for d, language in session.execute(
                chosen.where(among(session, PhonePreferenceRow.phone, self.senders))
            )
        }
        self.people: dict[int, dict[str, list[Person]]] = {}
        self.ballots: dict[int, Ballot] = {}
        self.circuit_codes: dict[int, str] = {}
        self.standing: dict[int, dict[int, Participation]] = {}
        self.names: dict[int, str] = {}  # each consultation's name, for receipt checks
        self.ballot_box = PendingVotes()

    def settle(self) -> None:
        """Claim the deferred first votes in one statement; ClaimLostError if any lost."""
        if not self.claims:
            return
        claims, self.claims = list(self.claims.values()), {}
        if ballot_box.claim_first_votes(self.session, claims) < len(claims):
            raise ClaimLostError

    def store(self) -> None:
        """Settle the claims, then write the batch's votes and their audit entries."""
        self.settle()
        self.ballot_box.store(self.session)

    def may_reply(self, sender: str) -> bool:
        """Never to a number that opted out, nor to an address that is not a phone number."""
        return sender not in self.opted_out and sender.startswith("+")

    def handle(self, message: Message, consultation: Consultation | None) -> Answer:
        parsed = grammar.parse(message.body)
        voice = self._voice(message.sender, consultation)
        if isinstance(parsed, grammar.Keyword):
            return self._keyword(parsed.name, message.sender, voice)
        if isinstance(parsed, grammar.ReceiptCheck):
            return self._receipt(parsed.code, voice)
        if isinstance(parsed, grammar.Command) and parsed.name == "language":
            return self._language(message.sender, parsed.argument, voice)
        if consultation is None:
            return Answer("no_consultation", (voice.say("no_consultation"),))
        if isinstance(parsed, grammar.Ambiguous):
            # The catalogue's budget holds nine numbers: a voter who sent dozens sees the first.
            shown = parsed.options[:MAX_SHOWN_OPTIONS]
            options = ", ".join(map(str, shown)) + (
                ", ..." if len(parsed.options) > len(shown) else ""
            )
            return Answer("ambiguous", (voice.say("ambiguous", options=options, example=3),))
        if isinstance(parsed, grammar.Unrecognised):
            return Answer("unrecognised", (voice.say("unrecognised"),))
        if isinstance(parsed, grammar.Command):
            return self._command(message, consultation, parsed, voice)
        return self._vote(message, consultation, parsed, voice)

    # -- language ---------------------------------------------------------------------------

    def _voice(self, sender: str, consultation: Consultation | None) -> Voice:
        """The phone's own choice, else the registry's language for it, else the default."""
        locale = self.languages.get(sender)
        if locale is None and consultation is not None:
            self._prefetch(consultation)
            spoken = {p.language for p in self.people[consultation.id].get(sender, [])}
            locale = spoken.pop() if len(spoken) == 1 else None
        return Voice(locale or catalogue.DEFAULT_LOCALE, self.settings.allow_ucs2)

    def _language(self, sender: str, argument: str | None, voice: Voice) -> Answer:
        locale = catalogue.normalise_locale(argument or "")
        if locale is None:
            choices = ", ".join(code.upper() for code in catalogue.locales())
            return Answer("language", (voice.say("language_unknown", choices=choices),))
        choice = {"phone": sender, "language": locale, "updated_at": utcnow()}
        upsert(self.session, PhonePreferenceRow, choice, key="phone")
        self.languages[sender] = locale
        return Answer("language", (Voice(locale, voice.allow_ucs2).say("language_set"),))

    # -- keywords ---------------------------------------------------------------------------

    def _keyword(self, name: str, sender: str, voice: Voice) -> Answer:
        if name == "stop":
            # Twilio itself confirms the opt-out and blocks our later sends; we stay silent.
            stop = insert_ignoring_conflicts(self.session, OptOutRow)
            self.session.execute(stop.values(phone=sender, at=utcnow()))
            self.opted_out.add(sender)
            return Answer("stop")
        if name == "start":
            self.session.execute(delete(OptOutRow).where(OptOutRow.phone == sender))
            self.opted_out.discard(sender)
            return Answer("start", (voice.say("opted_in"),))
        return Answer("help", (voice.say("help"),))

    def _receipt(self, code: str | None, voice: Voice) -> Answer:
        """Whether the vote behind a receipt counts; never which option it was."""
        if code is None:
            return Answer("receipt", (voice.say("receipt_unreadable"),))
        # A vote of this very batch is a vote too, and is still in memory: storing it here would
        # lock the audit log's head before the batch's other writes (audit.append_many).
        found = self._receipt_in_batch(code) or ballot_box.receipt_status(self.session, code)
        if found is None:
            return Answer("receipt", (voice.say("receipt_unknown", receipt=code),))
        name, replaced = found
        key = "receipt_replaced" if replaced else "receipt_counted"
        return Answer("receipt", (voice.say(key, receipt=code, name=name),))

    def _receipt_in_batch(self, code: str) -> tuple[str, bool] | None:
        """(consultation name, replaced?) for a vote this batch cast and has not stored yet."""
        vote = self.ballot_box.pending.get(code)
        if vote is None:
            return None
        return self.names[vote.consultation_id], vote.replaced_at is not None

    def _command(
        self,
        message: Message,
        consultation: Consultation,
        command: grammar.Command,
        voice: Voice,
    ) -> Answer:
        """OPCIONES and ESTADO: only about the sender's own registered people."""
        self._prefetch(consultation)
        on_phone = self.people[consultation.id].get(message.sender, [])
        person = rules.identify(on_phone, command.national_id, require_id=False)
        if isinstance(person, rules.Reason):
            return Answer(person.value, (voice.say(person.value, name=consultation.name),))
        if command.name == "status":
            return self._status(consultation, person, voice)
        options = (
            self.ballots[person.circuit_id].options if person.circuit_id in self.ballots else {}
        )
        texts = ballot_texts(voice, consultation.name, options, self.settings.ussd_code)
        return Answer("options", tuple(texts))

    def _status(self, consultation: Consultation, person: Person, voice: Voice) -> Answer:
        standing = self.standing[consultation.id].get(person.id)
        if standing is None:
            return Answer("status", (voice.say("status_not_voted", name=consultation.name),))
        if standing.receipt == PAPER_RECEIPT:
            return Answer("status", (voice.say("voted_on_paper", name=consultation.name),))
        text = voice.say("status_voted", name=consultation.name, receipt=standing.receipt)
        return Answer("status", (text,))

    # -- votes ------------------------------------------------------------------------------

    def _vote(
        self, message: Message, consultation: Consultation, vote: grammar.Vote, voice: Voice
    ) -> Answer:
        self._prefetch(consultation)
        on_phone = self.people[consultation.id].get(message.sender, [])
        standing = self.standing[consultation.id]
        verdict = rules.judge(
            consultation, message.received_at, vote.option, vote.national_id, on_phone,
            self.ballots, standing,
        )  # fmt: skip
        if isinstance(verdict, rules.Rejected):
            key = verdict.reason.value
            if verdict.standing and verdict.standing.receipt == PAPER_RECEIPT:
                key = "voted_on_paper"  # a paper ballot has no receipt to quote back
            text = voice.say(key, **_rejection(verdict, consultation, self.ballots))
            return Answer(key, (text,))
        if not self._record(message, consultation, verdict):
            # Another transaction counted this person first: judge again against its vote.
            standing[verdict.person.id] = ballot_box.standing_vote(
                self.session, consultation.id, verdict.person.id
            )
            return self._vote(message, consultation, vote, voice)
        key = "confirmed" if verdict.replaces is None else "replaced"
        receipt = standing[verdict.person.id].receipt
        return Answer(key, (voice.say(key, name=consultation.name, receipt=receipt),))

    def prefetch(self, consultations: Iterable[Consultation]) -> None:
        """Read what the batch is judged on, for each consultation in order of ID, before any
        message is judged: under `last` this locks the participations the batch may replace,
        and so every batch takes those locks before its other writes, in one order."""
        for _, consultation in sorted({c.id: c for c in consultations}.items()):
            self._prefetch(consultation)

    def _prefetch(self, consultation: Consultation) -> None:
        consultation_id = consultation.id
        if consultation_id in self.people:
            return
        self.names[consultation_id] = consultation.name
        people = ballot_box.people_by_phone(self.session, consultation_id, self.senders)
        everyone = [p for on_phone in people.values() for p in on_phone]
        self.people[consultation_id] = people
        circuits = {p.circuit_id for p in everyone}
        self.ballots.update(ballot_box.ballots(self.session, circuits))
        self.circuit_codes.update(ballot_box.circuit_codes(self.session, circuits))
        # Under `last` any of these votes may be replaced: lock them all now (before the batch's
        # other writes, see `prefetch`), in key order, so that two batches replacing the same
        # people wait for each other. Updated one by one in message order, two batches replacing
        # A then B and B then A deadlocked.
        self.standing[consultation_id] = ballot_box.standing_votes(
            self.session, consultation_id, [p.id for p in everyone],
            lock=consultation.revote is RevotePolicy.LAST,
        )  # fmt: skip

    def _record(
        self, message: Message, consultation: Consultation, accepted: rules.Accepted
    ) -> bool:
        """Count the vote; False if the unique constraint says someone else was first."""
        session, at, person = self.session, message.received_at, accepted.person
        receipt = message.receipt or new_receipt()
        key = (consultation.id, person.id)
        if accepted.replaces is None and self.defer_claims:
            self.claims[key] = {
                "consultation_id": consultation.id, "person_id": person.id, "receipt": receipt,
                "voted_at": at, "channel": message.channel, "revision": 0,
            }  # fmt: skip
            won = True
        elif accepted.replaces is None:
            won = ballot_box.claim_first_vote(
                session, consultation.id, person.id, receipt, at, message.channel
            )
        elif key in self.claims:
            # It replaces a first vote of this very batch whose claim is not written yet: the
            # claim carries the new vote instead. Written here, the batch's claims would go in
            # as two groups, and two batches' groups could cross (a deadlock).
            revision = accepted.replaces.revision + 1
            self.claims[key].update(receipt=receipt, voted_at=at, revision=revision)
            won = True
        else:
            won = ballot_box.claim_replacement(
                session, consultation.id, accepted.replaces, receipt, at
            )
        if not won and self.defer_claims:
            raise ClaimLostError
        if not won:
            return False
        vote = CastVote(
            consultation.id, person.circuit_id, self.circuit_codes.get(person.circuit_id, "?"),
            accepted.option, receipt, at,
        )  # fmt: skip
        if accepted.replaces is None:
            self.ballot_box.cast(vote)
            revision = 0
        else:
            self.ballot_box.replace(session, accepted.replaces.receipt, vote)
            revision = accepted.replaces.revision + 1
        self.standing[consultation.id][person.id] = Participation(person.id, receipt, at, revision)
        return True


@dataclass
class CastVote:
    consultation_id: int
    circuit_id: int
    circuit_code: str
    option: int
    receipt: str
    at: datetime
    replaces: str | None = None
    replaced_at: datetime | None = None


class PendingVotes:
    """The batch's votes, held back and then written in a shuffled order with their log entries.

    Participations are written as they are judged (their unique key is the judge). Votes wait
    until the end of the batch and go in at random: so neither the order of the rows in `votes`
    nor the order of the audit log lines up with the order in which people voted.
    """

    def __init__(self) -> None:
        self.pending: dict[str, CastVote] = {}

    def cast(self, vote: CastVote) -> None:
        self.pending[vote.receipt] = vote

    def replace(self, session: Session, old_receipt: str, vote: CastVote) -> None:
        vote.replaces = old_receipt
        earlier = self.pending.get(old_receipt)
        if earlier is not None:  # replaced within this very batch
            earlier.replaced_at = vote.at
        else:
            ballot_box.retire(session, old_receipt, vote.at)
        self.pending[vote.receipt] = vote

    def store(self, session: Session) -> None:
        """Write the held votes and chain them into each consultation's audit log."""
        votes = list(self.pending.values())
        self.pending.clear()
        secrets.SystemRandom().shuffle(votes)
        now = utcnow()
        if votes:
            rows = [
                {"consultation_id": v.consultation_id, "circuit_id": v.circuit_id,
                 "option": v.option, "receipt": v.receipt, "cast_at": v.at,
                 "replaced_at": v.replaced_at}
                for v in votes
            ]  # fmt: skip
            insert_rows(session, VoteRow, rows)  # in this (shuffled) order
        for consultation_id in sorted({v.consultation_id for v in votes}):
            entries = [_audit_entry(v, now) for v in votes if v.consultation_id == consultation_id]
            audit.append_many(session, consultation_id, entries)


def _audit_entry(vote: CastVote, now: datetime) -> tuple[str, dict[str, object], datetime]:
    """What the log says about a vote: no person, no phone, no time finer than the batch's."""
    payload: dict[str, object] = {
        "receipt": vote.receipt,
        "circuit": vote.circuit_code,
        "option": vote.option,
    }
    if vote.replaces is None:
        return ("vote", payload, now)
    return ("replace", {**payload, "replaces": vote.replaces}, now)


def _rejection(
    verdict: rules.Rejected, consultation: Consultation, ballots: dict[int, Ballot]
) -> dict[str, object]:
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
    return params


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 4] -> '1-4'; a ballot with gaps is listed in full."""
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(map(str, numbers))
