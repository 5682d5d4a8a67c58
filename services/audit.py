"""The hash-chained audit trail: every state change appends one event whose hash covers
the previous event's hash, so a removed or edited row breaks the chain."""
import hashlib
import json

from peewee import IntegrityError, PostgresqlDatabase

from models import AuditEvent, db
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


# Any number: the key of the PostgreSQL advisory lock that queues appends to the chain.
_CHAIN_LOCK = 0x617564697400    # "audit\0"


def _queue_for_the_chain() -> None:
    """Wait for the chain's head. SQLite's single writer already queues writers (a
    transaction takes the write lock when it begins); on PostgreSQL a transaction-scoped
    advisory lock does it, held until the caller's transaction commits, so that two hosts
    never both read the same last event."""
    if isinstance(db.obj, PostgresqlDatabase):
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))


def record(actor: str, action: str, target: str | None = None, **details) -> AuditEvent:
    """Append an event. Call inside the transaction of the change it records.

    Writers queue for the chain's head (_queue_for_the_chain); should two still read the
    same last event, they cannot both append after it (prev_hash is unique): the one that
    loses rolls back its savepoint, reads the new last event and appends after that."""
    body = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
    for _try in range(APPEND_TRIES):
        try:
            with db.atomic():            # a savepoint inside the caller's transaction
                _queue_for_the_chain()
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
