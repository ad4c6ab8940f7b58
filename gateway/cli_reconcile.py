"""`consulta reconcile`: Twilio's log of received messages against the gateway's, and the repair.

Which numbers are ours: `--to`, repeated for each number voters text, or else TWILIO_FROM. A
Messaging Service with a pool of numbers has no single From, so its numbers are listed with `--to`.
The consultation (SLUG) gives the time zone of times written without an offset, refuses a repair
once its results are certified (a late vote would change them), and is where the repair is
recorded in `operator_actions`.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.rest import Client
from werkzeug.exceptions import HTTPException

from gateway import flood
from gateway import reconcile as rec
from gateway.cli_database import OperatorError, database
from gateway.db import transaction
from gateway.lifecycle import cli_actor, record
from gateway.models import ConsultationRow, utcnow
from gateway.phones import to_e164
from gateway.privacy import mask
from gateway.providers import twilio
from gateway.settings import Settings


@click.command()
@click.argument("slug")
@click.option(
    "--since",
    required=True,
    help="Start of the window, ISO; without an offset in SLUG's time zone (2026-03-08T07:00).",
)
@click.option("--until", help="End of the window, read the same way (default: now).")
@click.option(
    "--to",
    "numbers",
    multiple=True,
    help="A number voters text, E.164; repeat for several (default: TWILIO_FROM).",
)
@click.option("--dry-run", is_flag=True, help="Compare and list; record nothing.")
def reconcile(  # noqa: PLR0913 - one option per flag
    slug: str, since: str, until: str | None, numbers: tuple[str, ...], dry_run: bool
) -> None:
    """Compare what Twilio received for our numbers with what the gateway stored, and record and
    queue what is missing, exactly as its webhook would have; no repair once SLUG is certified."""
    settings = Settings.from_env()
    ours = _our_numbers(numbers, settings)
    client = _twilio_client(settings)
    with database(settings) as sessions:
        consultation = _consultation(sessions, slug)
        zone = ZoneInfo(consultation.timezone)
        span = _window(since, until, zone)
        found = _compare(client, settings, sessions, ours, span)
        _show(found, span, zone, ours)
        if dry_run or not found.missing:
            click.echo("dry run: nothing recorded" if dry_run else "nothing to record")
            return
        if consultation.status == "certified":
            raise OperatorError(
                f"{slug} is certified: its results are final, so nothing was recorded "
                "(--dry-run lists what is missing)"
            )
        done = _record(settings, sessions, found)
        _note(sessions, consultation.id, span, found, done)
    _show_recording(done)


def _our_numbers(given: tuple[str, ...], settings: Settings) -> list[str]:
    numbers = list(given) or ([settings.twilio_from] if settings.twilio_from else [])
    if not numbers:
        raise click.ClickException(
            "which numbers do voters text? Give --to +58... (repeat for several) or set TWILIO_FROM"
        )
    parsed = [to_e164(number, settings.default_region) for number in numbers]
    for number, e164 in zip(numbers, parsed, strict=True):
        if e164 is None:
            raise click.ClickException(f"--to {number!r} is not a phone number")
    return sorted({e164 for e164 in parsed if e164})


def _twilio_client(settings: Settings) -> Client:
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise click.ClickException(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed to read Twilio's message list"
        )
    return twilio.make_client(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url
    )


def _consultation(sessions: sessionmaker[Session], slug: str) -> ConsultationRow:
    with sessions() as session:
        row = session.scalar(select(ConsultationRow).where(ConsultationRow.slug == slug))
    if row is None:
        raise OperatorError(f"there is no consultation {slug!r}")
    return row


def _window(since: str, until: str | None, zone: ZoneInfo) -> rec.Window:
    try:
        start = rec.moment(since, zone)
        end = rec.moment(until, zone) if until else None
        return rec.window(start, end, utcnow())
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since/--until") from None


def _compare(
    client: Client,
    settings: Settings,
    sessions: sessionmaker[Session],
    ours: list[str],
    span: rec.Window,
) -> rec.Comparison:
    try:
        provider = rec.provider_inbound(client, ours, span)
    except rec.ProviderUnavailable as error:
        raise click.ClickException(str(error)) from None
    gateway = rec.gateway_inbound(sessions, ours, span)
    stored = rec.stored_sids(sessions, [message.sid for message in provider])
    limits = flood.Limits.for_channel(settings, flood.Channel.SMS)
    refused = rec.flooded(provider, limits.per_minute, limits.per_hour)
    return rec.compare(provider, gateway, stored, span, refused)


def _record(
    settings: Settings, sessions: sessionmaker[Session], found: rec.Comparison
) -> rec.Recording:
    if not settings.redis_url:
        raise click.ClickException("REDIS_URL is not set: missing messages could not be queued")
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return rec.record_missing(rec.web_state(settings, sessions, redis), found.missing)
    except HTTPException as error:  # the webhook's 503: the database went away mid-way
        raise click.ClickException(f"stopped: {error.description}; run again") from None
    finally:
        redis.close()


def _note(
    sessions: sessionmaker[Session],
    consultation_id: int,
    span: rec.Window,
    found: rec.Comparison,
    done: rec.Recording,
) -> None:
    detail = (
        f"{span.since.isoformat()} to {span.until.isoformat()}: provider {found.provider_count}, "
        f"gateway {found.gateway_count}, missing {len(found.missing)}, "
        f"recorded {len(done.recorded)}, refused {len(done.refused)}"
    )
    with transaction(sessions) as session:
        record(session, consultation_id, cli_actor(), "reconcile", detail)


# --- what the operator reads --------------------------------------------------------------------


def _show(found: rec.Comparison, span: rec.Window, zone: ZoneInfo, ours: list[str]) -> None:
    shown = f"{_local(span.since, zone)} to {_local(span.until, zone)} {zone.key}"
    click.echo(f"window: {shown}; our numbers: {', '.join(ours)}")
    click.echo(f"Twilio received: {found.provider_count} inbound messages")
    click.echo(f"gateway stored:  {found.gateway_count}")
    click.echo(f"missing at the gateway: {len(found.missing)}")
    for message in found.missing:
        when = _local(message.sent_at, zone, seconds=True)
        click.echo(f"  {message.sid}  from {mask(message.sender)}  {when}")
    if found.flooded:
        click.echo(f"over a sender's flood limit, refused as at the webhook: {len(found.flooded)}")
    click.echo(f"stored but not in Twilio's list: {len(found.unknown)}")
    for stored in found.unknown:
        when = _local(stored.received_at, zone, seconds=True)
        click.echo(f"  {stored.sid}  from {mask(stored.sender)}  {when}")


def _show_recording(done: rec.Recording) -> None:
    click.echo(f"recorded and queued: {len(done.recorded)}")
    if done.arrived:
        click.echo(f"arrived by webhook meanwhile: {len(done.arrived)}")
    for sid, why in done.refused:
        click.echo(f"refused, as the webhook would refuse it: {sid} ({why})")


def _local(at: datetime, zone: ZoneInfo, seconds: bool = False) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


COMMANDS = [reconcile]
