"""The hash-chained audit trail: every state change appends one event whose hash covers
the previous event's hash, so a removed or edited row breaks the chain."""
import hashlib
import json

from models import AuditEvent, db
from services import clock

GENESIS = "0" * 64


def _digest(prev_hash: str, at, actor: str, action: str, target: str | None, details: str) -> str:
    material = json.dumps([prev_hash, at.isoformat(), actor, action, target, details],
                          ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def record(actor: str, action: str, target: str | None = None, **details) -> AuditEvent:
    """Append an event. Call inside the transaction of the change it records."""
    with db.atomic():
        last = AuditEvent.select().order_by(AuditEvent.id.desc()).first()
        prev_hash = last.hash if last else GENESIS
        at = clock.now()
        body = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
        return AuditEvent.create(at=at, actor=actor, action=action, target=target, details=body,
                                 prev_hash=prev_hash,
                                 hash=_digest(prev_hash, at, actor, action, target, body))


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
