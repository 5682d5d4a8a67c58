"""Four eyes on an operator's weightiest decisions: approving a business-general (법인 범용)
certificate, and revoking a certificate for key compromise on a customer's behalf. The first
officer's decision is recorded and waits; it takes effect only when a second officer confirms
it within 24 hours. Nobody confirms their own."""
import json
from dataclasses import dataclass
from datetime import timedelta

from models import SecondApproval, db
from services import audit, clock, issuance, status
from services.errors import DomainError

CONFIRM_WITHIN = timedelta(hours=24)
NEEDS_TWO_APPROVALS = {"business-general"}     # certificate types whose approval takes two


@dataclass(frozen=True)
class Waiting:
    asked_by: str
    asked_at: object
    params: dict


def _open(kind: str, subject: str):
    return (SecondApproval.select()
            .where((SecondApproval.kind == kind) & (SecondApproval.subject == str(subject))
                   & SecondApproval.confirmed_at.is_null()
                   & (SecondApproval.expires_at > clock.now()))
            .order_by(SecondApproval.id.desc()))


def waiting(kind: str, subject) -> Waiting | None:
    """The decision waiting for a second officer, if there is one."""
    row = _open(kind, subject).first()
    return Waiting(row.asked_by, row.asked_at, json.loads(row.params)) if row else None


def ask(kind: str, subject, operator: str, **params) -> None:
    """The first officer's decision: recorded, waiting for a second. Asking again while one
    waits changes nothing."""
    if waiting(kind, subject) is not None:
        return
    now = clock.now()
    with db.atomic():
        SecondApproval.create(kind=kind, subject=str(subject), asked_by=operator,
                              params=json.dumps(params, ensure_ascii=False), asked_at=now,
                              expires_at=now + CONFIRM_WITHIN)
        audit.record("operator:" + operator, kind + ".asked", str(subject), **params)


def confirm(kind: str, subject, operator: str) -> Waiting:
    """The second officer's confirmation: returns the first decision to carry out (inside the
    caller's transaction, so that the decision and its confirmation commit together)."""
    row = _open(kind, subject).first()
    if row is None:
        raise DomainError("four_eyes_nothing", status=409)
    if row.asked_by == operator:
        raise DomainError("four_eyes_same", status=403)
    claimed = SecondApproval.update(confirmed_by=operator, confirmed_at=clock.now()).where(
        (SecondApproval.id == row.id) & SecondApproval.confirmed_at.is_null()).execute()
    if not claimed:                       # two officers confirming at once: one wins
        raise DomainError("four_eyes_nothing", status=409)
    audit.record("operator:" + operator, kind + ".confirmed", str(subject), asked_by=row.asked_by)
    return Waiting(row.asked_by, row.asked_at, json.loads(row.params))


# -- the decisions that take two -----------------------------------------------------------

def approve_request(request_id: int, operator: str, documents) -> str:
    """An officer approves a business request, noting the documents checked: "approved", or
    "waiting" for a second officer when the type takes two (then the second officer's
    approval carries it out, with the documents both noted)."""
    request = issuance.find_request(request_id)
    documents = issuance.checked_documents(documents)
    if request.cert_type in NEEDS_TWO_APPROVALS:
        if waiting("request.approve", request_id) is None:
            if request.status != "requested":
                raise DomainError("request_decided", status=409, id=request_id,
                                  state=request.status)
            ask("request.approve", request_id, operator, documents=documents)
            return "waiting"
        first = confirm("request.approve", request_id, operator)
        documents = sorted(set(documents) | set(first.params.get("documents", [])),
                           key=issuance.DOCUMENTS.index)
    issuance.approve_request(request_id, operator, documents)
    return "approved"


def revoke_certificate(record, reason: str, operator: str, note: str | None = None):
    """An officer revokes on a customer's behalf: the revoked certificate (with what changed
    along with it), or None while a revocation for key compromise waits for a second
    officer."""
    if reason == "key-compromise":
        if waiting("certificate.revoke", record.serial) is None:
            if record.status not in ("valid", "suspended"):
                raise DomainError("already_revoked", status=409)
            ask("certificate.revoke", record.serial, operator, reason=reason, note=note or "")
            return None
        first = confirm("certificate.revoke", record.serial, operator)
        note = "; ".join(filter(None, [first.params.get("note"), note]))
    return status.revoke_certificate(record, reason, "operator:" + operator, note=note)
