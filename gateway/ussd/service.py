"""One USSD hop, answered: find the session, walk the new inputs, save, show the screen.

Reads are cheap by design: the session (menu position, the voter's registry entries and
ballot) is one Redis GET; only the first hop of a session reads the database, once. A vote is
recorded and queued exactly as an SMS vote is, and the worker judges it by the same rules.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from sqlalchemy import Select, bindparam, select

from gateway import ballot_box, inbox, privacy
from gateway.app import WebState
from gateway.inbound import hand_to_queue, record_inbound
from gateway.models import PersonRow, PhonePreferenceRow, utcnow
from gateway.providers.base import InboundMessage, Screen, UssdHop
from gateway.sql import upsert
from gateway.ussd import store
from gateway.ussd.menu import Context, Say, State, Voter, screen, start, step
from messages import catalogue
from voting import rules
from voting.model import Ballot, Consultation, RevotePolicy
from voting.receipts import new_receipt

log = logging.getLogger(__name__)


@dataclass
class HopLedger:
    """The menu's window on the vote store, for one hop."""

    web: WebState
    hop: UssdHop
    consultation_id: int | None

    def standing_receipt(self, person_id: int) -> str | None:
        if self.consultation_id is None:
            return None
        with self.web.lookups.connect() as connection:
            return ballot_box.standing_receipt(connection, self.consultation_id, person_id)

    def fingerprint(self, national_id: str) -> str:
        return privacy.digest(national_id)

    def _national_id(self, voter: Voter) -> str:
        """The worker tells the people on a phone apart by ID: the session holds it sealed."""
        if voter.sealed_id:
            return privacy.keys().open(voter.sealed_id)
        with self.web.lookups.connect() as connection:
            return connection.scalars(_sealed_id(), {"person_id": voter.person_id}).one()

    def cast(self, voter: Voter, option: int) -> str:
        """Record the vote as an inbound message, keyed by the session: one vote per session.

        Where SMS are acknowledged once in Redis (ACK_AFTER=redis), so is this vote: it goes in
        the Redis inbox, and the worker writes it with the SMS of its batch.
        """
        message = InboundMessage(
            provider=self.hop.provider,
            external_id=f"ussd-{self.hop.session_id}"[:64],
            sender=self.hop.phone,
            recipient=self.hop.service_code[:32],
            body=f"VOTO {option} {self._national_id(voter)}",
            received_at=utcnow(),
            channel="ussd",
            receipt=new_receipt(),
        )
        if self.web.settings.ack_after == "redis":
            try:
                return inbox.put_once(self.web.redis, message)
            except RedisError:
                log.warning("redis unavailable: USSD vote written to the database instead")
        inbound_id = record_inbound(self.web, message)
        if inbound_id is None:  # this session already voted: show the receipt it was given
            with self.web.lookups.connect() as connection:
                given = ballot_box.inbound_receipt(
                    connection, message.provider, message.external_id
                )
            return given or ""
        hand_to_queue(self.web, inbound_id)
        return message.receipt or ""


@functools.cache
def _sealed_id() -> Select[str]:
    """Built once, as ballot_box builds the menu's other look-ups."""
    return select(PersonRow.national_id_clear).where(PersonRow.id == bindparam("person_id"))


def answer(web: WebState, hop: UssdHop) -> Screen:
    settings = web.settings
    if hop.ends:
        store.forget(web.ussd_redis, hop.provider, hop.session_id)
        return Screen("", end=True)
    session, inputs = _session_and_inputs(web, hop)
    state = session.state
    ledger = HopLedger(web, hop, _consultation_id(session))
    for entry in inputs:
        if state.step == "end":  # inputs after the end of a crafted path are not walked
            break
        before = state.locale
        state = step(state, session.context, entry, _say(state.locale), ledger)
        if state.locale != before:
            _remember_language(web, hop.phone, state.locale)
    text, end = screen(state, session.context, _say(state.locale))
    seen = session.seen + len(inputs) if hop.whole_path else 0
    kept = store.Session(state, session.context, seen)
    store.save(
        web.ussd_redis, hop.provider, hop.session_id, hop.phone, kept,
        settings.ussd_session_seconds, settings.ussd_resume_seconds,
    )  # fmt: skip
    return Screen(text, end)


def _session_and_inputs(web: WebState, hop: UssdHop) -> tuple[store.Session, tuple[str, ...]]:
    """The stored session and the inputs it has not walked yet; a new one if there is none."""
    known = store.load(web.ussd_redis, hop.provider, hop.session_id)
    if known is not None and known.state.step == "end":
        return replace(known, state=replace(known.state, end_key="ussd_ended", end_params={})), ()
    if known is not None:
        if not hop.whole_path:
            return known, hop.inputs
        fresh = hop.inputs[known.seen :] if len(hop.inputs) >= known.seen else hop.inputs[-1:]
        return known, fresh
    if not hop.starts and not hop.whole_path:
        # Hubtel's "latest input" for a session we never saw: we cannot know where it was.
        ended = State(step="end", end_key="ussd_ended")
        return store.Session(ended, Context()), ()
    resumed = store.load_resumable(web.ussd_redis, hop.phone) if hop.starts else None
    if resumed is not None and resumed.state.step not in {"main", "end"}:
        return replace(resumed, state=replace(resumed.state, notice="ussd_resumed"), seen=0), ()
    context, locale = _read_context(web, hop.phone)
    return store.Session(start(context, locale), context, 0), hop.inputs


def _read_context(web: WebState, phone: str) -> tuple[Context, str]:
    """Everything the menu will need, read once at the first hop."""
    with web.lookups.connect() as connection:
        consultations, preferred = ballot_box.consultations_and_language(connection, phone)
        consultation = rules.consultation_for(consultations, utcnow())
        if consultation is None:
            return Context(closed="ussd_no_consultation"), preferred or catalogue.DEFAULT_LOCALE
        people, ballots = ballot_box.registered_with_ballots(connection, consultation.id, phone)
    voters = tuple(
        Voter(
            p.person_id,
            p.national_id_digest,
            p.circuit_id,
            rules.age_allowed(consultation, p.birth_date),
            p.national_id_sealed,
        )
        for p in people
    )
    spoken = {p.language for p in people if p.language}
    locale = preferred or (spoken.pop() if len(spoken) == 1 else catalogue.DEFAULT_LOCALE)
    return _context(consultation, voters, ballots), locale


def _context(
    consultation: Consultation, voters: tuple[Voter, ...], ballots: dict[int, Ballot]
) -> Context:
    reason = rules.window_reason(consultation, utcnow())
    opens = consultation.opens_at.astimezone(ZoneInfo(consultation.timezone))
    return Context(
        name=consultation.name,
        closed=f"ussd_{reason.value}" if reason else None,
        opens=opens.strftime("%d/%m/%Y %H:%M"),
        require_id=consultation.require_id,
        revote_last=consultation.revote is RevotePolicy.LAST,
        voters=voters,
        ballots={circuit_id: dict(b.options) for circuit_id, b in ballots.items()},
        consultation_id=consultation.id,
    )


def _consultation_id(session: store.Session) -> int | None:
    return session.context.consultation_id


def _remember_language(web: WebState, phone: str, locale: str) -> None:
    """The USSD language choice also sets the language of the SMS that follow."""
    with web.sessions() as session, session.begin():
        choice = {"phone": phone, "language": locale, "updated_at": utcnow()}
        upsert(session, PhonePreferenceRow, choice, key="phone")


def _say(locale: str) -> Say:
    def say(key: str, **params: object) -> str:
        return catalogue.render(key, locale, allow_ucs2=False, **params)

    return say
