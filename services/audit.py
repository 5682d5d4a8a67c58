"""The hash-chained audit trail: every state change appends one event whose hash covers
the previous event's hash, so a removed or edited row breaks the chain."""
import hashlib
import json

from peewee import IntegrityError

from models import AuditEvent, db
from models.db import wait_turn
from services import clock

GENESIS = "0" * 64


def _digest(prev_hash: str, at, actor: str, action: str, target: str | None, details: str) -> str:
    material = json.dumps([prev_hash, at.isoformat(), actor, action, target, details],
                          ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


APPEND_TRIES = 20


def head() -> AuditEvent | None:
    """The last event appended."""
    return AuditEvent.select().order_by(AuditEvent.id.desc()).first()


def record(actor: str, action: str, target: str | None = None, **details) -> AuditEvent:
    """Append an event. Call inside the transaction of the change it records.

    Writers queue for the chain's head (models.db.wait_turn); should two still read the
    same last event, they cannot both append after it (prev_hash is unique): the one that
    loses rolls back its savepoint, reads the new last event and appends after that."""
    body = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
    for _try in range(APPEND_TRIES):
        try:
            with db.atomic():            # a savepoint inside the caller's transaction
                wait_turn("audit-chain")   # one appender at a time, on every host
                last = head()
                prev_hash = last.hash if last else GENESIS
                at = clock.now()
                return AuditEvent.create(at=at, actor=actor, action=action, target=target,
                                         details=body, prev_hash=prev_hash,
                                         hash=_digest(prev_hash, at, actor, action, target, body))
        except IntegrityError:
            continue
    raise RuntimeError(f"audit trail: no place to append after {APPEND_TRIES} tries")


def events(target: str | None = None, since=None):
    """Events oldest first, about `target` (a serial or customer code) and from `since`."""
    query = AuditEvent.select().order_by(AuditEvent.id)
    if target:
        query = query.where(AuditEvent.target == target)
    if since:
        query = query.where(AuditEvent.at >= since)
    return query


def verify_chain() -> int | None:
    """The id of the first event that does not chain, or None if the whole trail holds."""
    prev_hash = GENESIS
    for event in AuditEvent.select().order_by(AuditEvent.id):
        expected = _digest(prev_hash, event.at, event.actor, event.action, event.target,
                           event.details)
        if event.prev_hash != prev_hash or event.hash != expected:
            return event.id
        prev_hash = event.hash
    return None
