"""Signed checkpoints of the audit trail, and the check of the whole trail against them.

The hash chain alone shows an edited or removed event, but whoever can write the database can
rewrite the chain from the edit on, or cut events from its end. A checkpoint is the chain's
head signed by the issuing CA's key, which is not in the database; the latest is published at
/pki/audit-checkpoint so that anyone can keep copies. `verify` recomputes the chain and holds
it against every stored checkpoint and every copy it is given.
"""
from dataclasses import dataclass

from models import AuditCheckpoint, AuditEvent, db
from pki import checkpoint as pki_checkpoint
from pki.errors import PkiError
from services import audit, ca_store, clock


def latest() -> AuditCheckpoint | None:
    return AuditCheckpoint.select().order_by(AuditCheckpoint.id.desc()).first()


def is_due() -> bool:
    """Whether events were appended since the latest checkpoint."""
    head = audit.head()
    last = latest()
    return head is not None and (last is None or last.event_id != head.id)


def sign() -> AuditCheckpoint | None:
    """Sign the chain's head now, unless the latest checkpoint already covers it."""
    if not is_due():
        return None
    head = audit.head()
    keys = ca_store.load_ca()
    signed = pki_checkpoint.sign(head.id, head.hash, clock.now(), keys.issuing_key,
                                 keys.issuing_cert)
    with db.atomic():
        return AuditCheckpoint.create(event_id=signed.event_id, event_hash=signed.event_hash,
                                      at=signed.at, statement=signed.statement,
                                      signature=signed.signature, signer=signed.signer)


def document(row: AuditCheckpoint) -> str:
    """The checkpoint as published: its statement and signature, for anyone to keep."""
    return _parsed(row).document()


def _parsed(row: AuditCheckpoint) -> pki_checkpoint.Checkpoint:
    return pki_checkpoint.parse(row.statement, bytes(row.signature))


@dataclass
class Verdict:
    events: int
    latest: AuditCheckpoint | None
    failed_event: int | None = None     # the first event that fails, when one does
    reason: str = ""

    @property
    def holds(self) -> bool:
        return self.failed_event is None


def _failure(signed: pki_checkpoint.Checkpoint, source: str) -> tuple[int, str] | None:
    """Why the trail does not agree with one checkpoint, or None when it does."""
    if not pki_checkpoint.is_signed_by(signed, ca_store.load_ca().issuing_cert):
        return signed.event_id, (f"the checkpoint of {signed.at:%Y-%m-%d %H:%M}Z ({source}) "
                                 "is not signed by the issuing CA")
    event = AuditEvent.get_or_none(AuditEvent.id == signed.event_id)
    if event is None:
        return signed.event_id, (f"the event is missing, though the checkpoint of "
                                 f"{signed.at:%Y-%m-%d %H:%M}Z ({source}) covers it: events were deleted")
    if event.hash != signed.event_hash:
        return signed.event_id, (f"its hash differs from the one the checkpoint of "
                                 f"{signed.at:%Y-%m-%d %H:%M}Z ({source}) signed: the trail was rewritten")
    return None


def verify(copies: list[str] = ()) -> Verdict:
    """Recompute the chain, then hold it against every stored checkpoint and every copy (the
    document text of a checkpoint someone kept). The verdict names the first event that
    fails."""
    verdict = Verdict(AuditEvent.select().count(), latest())
    failures = []
    broken = audit.verify_chain()
    if broken is not None:
        failures.append((broken, "its hash does not follow from the event before it and its "
                                 "own contents: it was edited, or an event before it deleted"))
    signed = []
    for row in AuditCheckpoint.select().order_by(AuditCheckpoint.id):
        try:
            signed.append((_parsed(row), "stored"))
        except PkiError:
            failures.append((row.event_id, f"stored checkpoint {row.id} is not a checkpoint any more"))
    for number, text in enumerate(copies, 1):
        try:
            signed.append((pki_checkpoint.read_document(text), f"copy {number}"))
        except PkiError as error:
            raise ValueError(f"copy {number} is not a checkpoint: {error.detail}") from None
    failures += [found for found in (_failure(cp, source) for cp, source in signed) if found]
    if failures:
        verdict.failed_event, verdict.reason = min(failures)
    return verdict
