"""Certificate status: revocation (폐기), suspension (효력정지) and resumption (효력회복), and
its publication to relying parties through the CRLs and the OCSP responder.

Every status change re-publishes the CRL the changed certificate names (its partition's, or
the full CRL for a certificate from before partitions) and re-signs its OCSP answers before
it returns, and a stored OCSP answer is served only for the status it was signed for, so a
change can never leave a stale "good" behind. The change also leaves notes
(UnpublishedChange), one per CRL that must carry it, in its own transaction, which each
publication removes: a CRL lost to a crash in between is published by `jobs run` or at the
next start. The full CRL's notes of partitioned certificates are left to `jobs run` and to
whoever next asks for the full CRL (latest_crl), which publishes it first.
"""
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from peewee import IntegrityError, fn

from models import (
    AuditEvent,
    CaParameter,
    Certificate,
    Crl,
    Customer,
    OcspResponse,
    UnpublishedChange,
    db,
)
from models.db import one_at_a_time
from pki import crl as pki_crl
from pki import ocsp as pki_ocsp
from pki.bundle import public_key_info
from pki.errors import PkiError
from pki.serials import parse_serial_hex, serial_hex
from services import audit, ca_store, clock, flows, settings
from services.errors import DomainError
from services.i18n import N_
from services.notify import notify
from services.text import one_line

CUSTOMER_REASONS = ["key-compromise", "affiliation-changed", "superseded",
                    "cessation-of-operation"]
OPERATOR_REASONS = CUSTOMER_REASONS + ["privilege-withdrawn"]
CRL_REFRESH = timedelta(hours=12)       # `jobs run` re-publishes a CRL older than this


def _crl_lifetime() -> timedelta:
    return timedelta(hours=settings.current().crl_hours)


# -- changing status -----------------------------------------------------------------------

def find_certificate(serial: str, customer: Customer | None = None,
                     actor: str = "system") -> Certificate:
    """The certificate with this 40-digit hex serial; with `customer`, only theirs. Someone
    else's serial is refused exactly like an unknown one, and the attempt is audited."""
    try:
        normalised = serial_hex(parse_serial_hex(serial or ""))
    except PkiError:
        raise DomainError("serial_invalid", field="serial") from None
    cert = Certificate.get_or_none(Certificate.serial == normalised)
    if cert is not None and customer is not None and cert.customer_id != customer.id:
        audit.record(actor, "certificate.foreign_attempt", normalised, customer=customer.code)
        cert = None
    if cert is None:
        raise DomainError("certificate_not_found", status=404, field="serial")
    return cert


def renewed_into(cert: Certificate, states=("valid", "suspended")) -> list[Certificate]:
    """The unexpired certificates renewed into `cert` (its predecessors running out their
    days), in `states`. To the customer they are one certificate: what happens to it happens
    to them."""
    found, frontier = [], [cert.id]
    while frontier:
        older = list(Certificate.select().where(
            Certificate.replaced_by.in_(frontier) & Certificate.status.in_(list(states))
            & (Certificate.not_after > clock.now())))
        found += older
        frontier = [c.id for c in older]
    return found


def _key_of(record: Certificate) -> bytes:
    return public_key_info(x509.load_der_x509_certificate(bytes(record.der)).public_key())


def _same_key(cert: Certificate, states) -> list[Certificate]:
    """The customer's other unexpired certificates, in `states`, for the public key of
    `cert` (a same-key renewal makes two)."""
    key = _key_of(cert)
    return [other for other in Certificate.select().where(
                (Certificate.customer == cert.customer_id) & (Certificate.id != cert.id)
                & Certificate.status.in_(list(states)) & (Certificate.not_after > clock.now()))
            if _key_of(other) == key]


def changes_along(cert: Certificate, states, reason: str | None = None) -> list[Certificate]:
    """What a change to `cert` changes with it: the certificates renewed into it that are
    in `states`, and, on key compromise, every other certificate of the customer in
    `states` for the same key."""
    along = renewed_into(cert, states)
    if reason == "key-compromise":
        seen = {other.id for other in along}
        along += [other for other in _same_key(cert, states) if other.id not in seen]
    return along


def _change(cert: Certificate, allowed_from: tuple, values: dict, action: str, actor: str,
            message: str, once: str | None = None, **details) -> Certificate:
    """Apply one status change if the certificate is unexpired and still in an allowed
    state (a second, simultaneous request finds it changed and is refused), to it and to
    what changes along with it (changes_along), publish the CRLs, and tell the customer. The
    certificate returned lists the serials that changed with it in `changed_along`. `once`
    names the confirm button's press (services.flows.once)."""
    if cert.not_after <= clock.now():
        raise DomainError("certificate_expired", status=409)
    changed_along = []
    with db.atomic():
        flows.once(once)
        changed = Certificate.update(status_changed_at=clock.now(), **values).where(
            (Certificate.id == cert.id) & Certificate.status.in_(list(allowed_from))).execute()
        if not changed:
            current = Certificate.get_by_id(cert.id).status
            raise DomainError("already_" + current if current in ("revoked", "suspended")
                              else "status_changed", status=409)
        audit.record(actor, "certificate." + action, cert.serial, **details)
        note_change(cert)
        reason = details.get("reason")
        for other in changes_along(cert, allowed_from, reason):
            own_values, own_details = values, details
            if reason == "key-compromise" and _key_of(other) != _key_of(cert):
                # A renewed predecessor with a key of its own: that key was not named.
                own_values = {**values, "revocation_reason": "superseded"}
                own_details = {**details, "reason": "superseded"}
            if Certificate.update(status_changed_at=clock.now(), **own_values).where(
                    (Certificate.id == other.id)
                    & Certificate.status.in_(list(allowed_from))).execute():
                audit.record(actor, "certificate." + action, other.serial,
                             along_with=cert.serial, **own_details)
                note_change(other)
                changed_along.append(other.serial)
    publish_changes()
    cert = Certificate.get_by_id(cert.id)
    cert.changed_along = changed_along
    presign_ocsp(cert.serial, *changed_along)
    notify(cert.customer, action, message, serial=cert.serial[-8:])
    return cert


def _noted(note: str | None) -> dict:
    """An operator's note on a change, kept in its audit event."""
    note = one_line(note, "note", 500)
    return {"note": note} if note else {}


def revoke_certificate(cert: Certificate, reason: str, actor: str,
                       reasons=OPERATOR_REASONS, once: str | None = None,
                       note: str | None = None) -> Certificate:
    """Revoke for good. Irreversible."""
    if reason not in reasons:
        raise DomainError("reason_missing", field="reason")
    return _change(cert, ("valid", "suspended"),
                   {"status": "revoked", "revoked_at": clock.now(), "revocation_reason": reason,
                    "current_slot": None}, "revoke", actor, N_(
                       "[CertCenter] Your certificate (serial ending %(serial)s) was revoked "
                       "and can no longer be used. If you did not ask for this, call us."),
                   once=once, reason=reason, **_noted(note))


def suspend_certificate(cert: Certificate, actor: str, once: str | None = None,
                        note: str | None = None) -> Certificate:
    return _change(cert, ("valid",),
                   {"status": "suspended", "revoked_at": clock.now(),
                    "revocation_reason": "certificate-hold"}, "suspend", actor, N_(
                       "[CertCenter] Your certificate (serial ending %(serial)s) is "
                       "suspended. It works again when you resume it."), once=once,
                   **_noted(note))


def resume_certificate(cert: Certificate, actor: str, once: str | None = None,
                       note: str | None = None) -> Certificate:
    return _change(cert, ("suspended",),
                   {"status": "valid", "revoked_at": None, "revocation_reason": None},
                   "resume", actor, N_(
                       "[CertCenter] Your certificate (serial ending %(serial)s) works again."),
                   once=once, **_noted(note))


@dataclass(frozen=True)
class StatusChange:
    at: object
    change: str              # revoke | suspend | resume
    actor: str               # as audited: customer:P0000001, operator:kim.ra, system:jobs
    reason: str | None
    note: str | None

    @property
    def by_bank(self) -> bool:
        """Done by the bank's staff (console or CLI), not by the customer or a job."""
        return self.actor.startswith("operator:")


_CHANGES = {"certificate." + change: change for change in ("revoke", "suspend", "resume")}


def history(certificates) -> dict[str, list[StatusChange]]:
    """Each certificate's status changes, oldest first, by serial: one query for a page."""
    serials = [cert.serial for cert in certificates]
    found = {serial: [] for serial in serials}
    if serials:
        for event in audit.events().where(AuditEvent.target.in_(serials)
                                          & AuditEvent.action.in_(list(_CHANGES))):
            details = json.loads(event.details)
            found[event.target].append(StatusChange(event.at, _CHANGES[event.action],
                                                    event.actor, details.get("reason"),
                                                    details.get("note")))
    return found


# -- the CRLs -------------------------------------------------------------------------------
#
# The full CRL (/pki/issuing.crl, no issuingDistributionPoint: it covers every certificate, and
# certificates issued before partitions name it) and one CRL per partition (/pki/crl/<n>.crl,
# with an issuingDistributionPoint naming that URL). A certificate's partition is its serial
# modulo the partition count, chosen at `ca init`; it is written into the certificate's CRL
# distribution point and kept in Certificate.crl_partition. Each has its own CRL number
# sequence (RFC 5280 5.2.3 asks for rising numbers per scope): two publishers contend only
# when they publish the same CRL, never a partition against another or the full CRL.

CRL_PARTITIONS_DEFAULT = 16     # also what a database from before partitions uses
CRL_PARTITIONS_MAX = 256
CRLS_KEPT = 10                  # CRLs kept per scope, older ones deleted


def crl_partitions() -> int:
    """How many partitions the CRL is split into (chosen at `ca init`)."""
    value = (CaParameter.select(CaParameter.value)
             .where(CaParameter.name == "crl_partitions").scalar())
    return CRL_PARTITIONS_DEFAULT if value is None else int(value)


def check_crl_partitions(count: int) -> None:
    if not 1 <= count <= CRL_PARTITIONS_MAX:
        raise DomainError("crl_partitions_range", maximum=CRL_PARTITIONS_MAX)


def set_crl_partitions(count: int) -> None:
    """Choose the partition count: at `ca init`, before any certificate names a partition."""
    check_crl_partitions(count)
    (CaParameter.insert(name="crl_partitions", value=str(count))
     .on_conflict(conflict_target=[CaParameter.name],
                  update={CaParameter.value: str(count)}).execute())


def crl_partition_for(serial: int) -> int:
    """The partition a new certificate with this serial goes to."""
    return serial % crl_partitions()


def _scope(model, partition: int | None):
    return (model.crl_partition.is_null() if partition is None
            else model.crl_partition == partition)


def _entries(scope=None) -> list:
    """Revoked and suspended certificates that have not yet expired (RFC 5280 lets a CRL
    drop entries past their certificate's expiry), all or those in `scope` (a condition on
    Certificate.crl_partition: an equality or IS NULL, which its covering index serves)."""
    query = (Certificate.select(Certificate.serial, Certificate.revoked_at,
                                Certificate.revocation_reason)
             .where(Certificate.status.in_(["revoked", "suspended"])
                    & (Certificate.not_after > clock.now())))
    if scope is not None:
        query = query.where(scope)
    # The driver's rows, without peewee's conversion per value: for 100,000 rows that
    # conversion took longer than the rest of the reading. SQLite's text is parsed with its
    # offset appended: a sixth of the time of parsing it and then replacing the tzinfo.
    entry, parse, found = pki_crl.RevokedEntry, datetime.fromisoformat, []
    for serial, revoked_at, reason in db.execute(query):
        # A DateTimeField's value as the driver returns it (SQLite: its text), aware UTC.
        at = (parse(revoked_at + "+00:00") if isinstance(revoked_at, str)
              else revoked_at.replace(tzinfo=UTC))
        found.append(entry(int(serial, 16), at, reason or "unspecified",
                           at if reason == "key-compromise" else None))
    return found


def _full_entries() -> tuple[list[bytes], list, int]:
    """What the full CRL lists, call in the publication's transaction: the entries of each
    partition's latest CRL that carries every status change, in DER as they were signed
    there, and the revoked certificates of the other partitions and without a partition.
    (DER lists, RevokedEntry list, how many entries in all.)"""
    # Encoding 100,000 entries took most of a full publication; the partitions have mostly
    # encoded them already. Reading from the notes first, then the CRLs: a partition
    # published in between is read as published, a change in between stays noted.
    stale = _unpublished_scopes()
    numbers = dict(Crl.select(Crl.crl_partition, fn.MAX(Crl.number))
                   .where(Crl.crl_partition.is_null(False)).group_by(Crl.crl_partition).tuples())
    current = {partition: number for partition, number in numbers.items()
               if partition not in stale}
    listed, count = [], 0
    for partition, number in sorted(current.items()):
        der, entries = (Crl.select(Crl.der, Crl.entries)
                        .where((Crl.crl_partition == partition) & (Crl.number == number))
                        .tuples().get())
        listed.append(pki_crl.listed_der(bytes(der)))
        count += entries
    if not current:
        rest = _entries()
    else:       # one query per scope: with OR or IN, SQLite reads all revoked rows instead
        rest = [entry for scope in [None, *sorted(set(range(crl_partitions())) - set(current))]
                for entry in _entries(_scope(Certificate, scope))]
    return listed, rest, count + len(rest)


def note_change(cert: Certificate) -> None:
    """A certificate's status changed: call inside the change's transaction. Until they are
    published, the full CRL and the certificate's partition each keep a note of it."""
    scopes = [None] if cert.crl_partition is None else [None, cert.crl_partition]
    UnpublishedChange.insert_many([{"serial": cert.serial, "changed_at": clock.now(),
                                    "crl_partition": scope} for scope in scopes]).execute()


def unpublished_changes() -> int:
    """Certificates whose last status change is not on every CRL that lists them yet."""
    return UnpublishedChange.select(fn.COUNT(UnpublishedChange.serial.distinct())).scalar()


def _unpublished_scopes() -> set:
    return {partition for (partition,) in
            UnpublishedChange.select(UnpublishedChange.crl_partition).distinct().tuples()}


def _latest(partition: int | None) -> Crl | None:
    return Crl.select().where(_scope(Crl, partition)).order_by(Crl.number.desc()).first()


def _pending(partition: int | None) -> bool:
    """Whether a status change is not on the scope's latest CRL yet."""
    return UnpublishedChange.select().where(_scope(UnpublishedChange, partition)).exists()


def publish_crl(partition: int | None = None, unless_current: bool = False) -> Crl:
    """Build, sign and store the next CRL of one scope: the full CRL, or with `partition`
    that partition's. One publisher of a scope at a time on every host (on SQLite, a second
    publisher finds its number taken and goes again). With `unless_current`, the scope's
    latest CRL instead when it already carries every status change: what a second asker
    finds after waiting for the first one's publication."""
    with one_at_a_time("crl" if partition is None else f"crl-{partition}"):
        return _publish_crl(partition, unless_current)


def _publish_crl(partition: int | None, unless_current: bool) -> Crl:
    ca = ca_store.load_ca()
    url = None if partition is None else ca_store.urls(partition).crl
    for _attempt in range(3):
        if unless_current:
            latest = _latest(partition)
            if latest is not None and not _pending(partition):
                return latest
        number = (Crl.select(fn.MAX(Crl.number)).where(_scope(Crl, partition)).scalar() or 0) + 1
        last = (Crl.select(Crl.this_update).where(_scope(Crl, partition))
                .order_by(Crl.number.desc()).first())
        # HTTP dates count whole seconds: a CRL published in the same second as the last
        # one of its scope would share its Last-Modified, and If-Modified-Since would hide it.
        now = clock.now().replace(microsecond=0)
        if last and now <= last.this_update:
            now = last.this_update + timedelta(seconds=1)
        with db.atomic():            # one snapshot: the entries and the notes they cover
            covered = (UnpublishedChange.select(fn.MAX(UnpublishedChange.id))
                       .where(_scope(UnpublishedChange, partition)).scalar())
            if partition is None:
                listed, entries, count = _full_entries()
            else:
                listed, entries = [], _entries(_scope(Certificate, partition))
                count = len(entries)
        der = pki_crl.build_crl_der(ca.issuing_cert, ca.issuing_key, entries, number,
                                    clock.aware(now), clock.aware(now + _crl_lifetime()), url,
                                    listed)
        try:
            with db.atomic():
                row = Crl.create(number=number, crl_partition=partition, this_update=now,
                                 next_update=now + _crl_lifetime(), entries=count, der=der)
                oldest_kept = (Crl.select(Crl.number).where(_scope(Crl, partition))
                               .order_by(Crl.number.desc()).offset(CRLS_KEPT - 1).limit(1).scalar())
                if oldest_kept is not None:
                    Crl.delete().where(_scope(Crl, partition)
                                       & (Crl.number < oldest_kept)).execute()
                if covered is not None:
                    UnpublishedChange.delete().where(_scope(UnpublishedChange, partition)
                                                     & (UnpublishedChange.id <= covered)).execute()
            return row
        except IntegrityError:
            continue            # another process published this CRL's number first: go again
    raise DomainError("crl_conflict", status=503)


def _unpartitioned_pending() -> bool:
    """Whether a status change not on the full CRL yet is to a certificate without a
    partition (issued before partitions: the full CRL is the one it names)."""
    return (UnpublishedChange.select()
            .join(Certificate, on=Certificate.serial == UnpublishedChange.serial)
            .where(UnpublishedChange.crl_partition.is_null()
                   & Certificate.crl_partition.is_null()).exists())


def publish_changes() -> list[Crl]:
    """Publish the CRLs that status changes are not on yet and that their certificates name:
    the changed certificates' partitions, and the full CRL only for a certificate without a
    partition. Nothing when another process has published them meanwhile."""
    # The full CRL's other notes stay until `jobs run` or the next download of
    # /pki/issuing.crl publishes it (latest_crl): whoever asks for it still gets every
    # change, and a revocation no longer waits for all 100,000 entries to be signed again.
    partitions = sorted(partition for partition in _unpublished_scopes()
                        if partition is not None)
    return ([publish_crl(partition) for partition in partitions]
            + ([publish_crl()] if _unpartitioned_pending() else []))


def publish_lost_changes() -> list[Crl]:
    """At start: publish the CRLs a crash kept from carrying a status change, if any."""
    if unpublished_changes() and ca_store.exists():
        return publish_changes()
    return []


def latest_crl(partition: int | None = None) -> Crl:
    """The latest full CRL, or with `partition` that partition's; published now if there is
    none yet (an empty partition gets an empty CRL), and the full CRL also when a status
    change is not on it yet (publish_changes leaves partitioned certificates' changes to
    it). Simultaneous askers wait for one publication and share it."""
    latest = _latest(partition)
    if latest is None or (partition is None and _pending(None)):
        return publish_crl(partition, unless_current=True)
    return latest


def partition_crl(partition: int) -> Crl | None:
    """The latest CRL of a partition, or None when there is no such partition."""
    if not 0 <= partition < crl_partitions():
        return None
    return latest_crl(partition)


def crls_due(at=None) -> list:
    """The scopes `jobs run` at `at` (default now) would publish, partitions first and None
    for the full CRL: each that has no CRL yet, whose last is older than CRL_REFRESH, or that
    a status change is not on yet."""
    stale = (at or clock.now()) - CRL_REFRESH
    latest = dict(Crl.select(Crl.crl_partition, fn.MAX(Crl.this_update))
                  .group_by(Crl.crl_partition).tuples())
    pending = _unpublished_scopes()
    partitions = sorted(set(range(crl_partitions()))
                        | {partition for partition in pending if partition is not None})
    return [scope for scope in [*partitions, None]
            if scope in pending or latest.get(scope) is None
            or latest[scope] <= stale]


def crl_is_due(at=None) -> bool:
    """Whether `jobs run` at `at` (default now) would publish any CRL (crls_due)."""
    return bool(crls_due(at))


# -- OCSP -----------------------------------------------------------------------------------
#
# Answers are pre-signed, as Let's Encrypt and cfssl do it: one per certificate and CertID
# hash, signed when the certificate is issued or changes status, refreshed by `jobs run`, kept
# in ocsp_response and served as stored (views/ocsp_stored.py, without Flask). A stored answer
# is served only while the certificate's status and time of last change are still the ones it
# was signed for, its signer is the current one, and it is less than half-way to nextUpdate:
# whatever path changed a status, and whether or not anything re-signed since, no stale
# "good" can be served. Anything else is signed on the spot, and stored when it can be reused.

# nextUpdate - thisUpdate. Eight hours (the CA/Browser Forum's floor; big CAs sign for days)
# rather than one: refreshed every 3 hours, each certificate costs 2 x 8 signatures a day
# instead of about 2 x 60, and a relying party that keeps an answer until nextUpdate keeps it
# no longer than the CRL (never longer: see _ocsp_validity).
OCSP_VALIDITY = timedelta(hours=8)
OCSP_HASHES = (hashes.SHA1(), hashes.SHA256())   # the CertID hashes pki.ocsp accepts


def _ocsp_validity() -> timedelta:
    return min(OCSP_VALIDITY, _crl_lifetime())


def _ocsp_refresh_age() -> timedelta:
    """`jobs run` signs an answer again at this age: before half-way even when an hour of
    runs was missed (at half-way the responder stops serving it and signs on the spot)."""
    return _ocsp_validity() * 3 / 8


@dataclass
class OcspAnswer:
    der: bytes
    this_update: object          # naive UTC; None for an unsigned error response
    next_update: object


_CERT_STATE = (Certificate.serial, Certificate.status, Certificate.revoked_at,
               Certificate.revocation_reason, Certificate.status_changed_at)


def _cert_status(state: str, revoked_at, reason) -> pki_ocsp.CertStatus:
    if state == "valid":
        return pki_ocsp.CertStatus("good")
    # A suspended certificate is "revoked" with reason certificateHold (RFC 6960 2.2).
    return pki_ocsp.CertStatus("revoked", clock.aware(revoked_at), reason or "unspecified")


def _sign(question: pki_ocsp.OcspQuestion, cert_status: pki_ocsp.CertStatus) -> OcspAnswer:
    ca = ca_store.load_ca()
    # Whole seconds: the stored times are then exactly the DER's and the HTTP dates'.
    now = clock.now().replace(microsecond=0)
    next_update = now + _ocsp_validity()
    der = pki_ocsp.build_response(question, cert_status, ca.ocsp_cert, ca.ocsp_key,
                                  clock.aware(now), clock.aware(next_update))
    ca_store.count_signature("ocsp")
    return OcspAnswer(der, now, next_update)


def _store(question: pki_ocsp.OcspQuestion, state: tuple, answer: OcspAnswer) -> None:
    serial, cert_state, _revoked_at, _reason, changed_at = state
    (OcspResponse.insert(serial=serial, hash_algorithm=question.hash_algorithm.name,
                         issuer_name_hash=question.issuer_name_hash,
                         issuer_key_hash=question.issuer_key_hash, status=cert_state,
                         status_changed_at=changed_at, signer=ca_store.ocsp_signer_id(),
                         der=answer.der, this_update=answer.this_update,
                         next_update=answer.next_update)
     .on_conflict(conflict_target=[OcspResponse.serial, OcspResponse.hash_algorithm],
                  preserve=[OcspResponse.issuer_name_hash, OcspResponse.issuer_key_hash,
                            OcspResponse.status, OcspResponse.status_changed_at,
                            OcspResponse.signer, OcspResponse.der, OcspResponse.this_update,
                            OcspResponse.next_update])
     .execute())


def _sign_and_store(state: tuple) -> None:
    """Sign and store the answers about one certificate (a row of _CERT_STATE), one per
    CertID hash."""
    issuing_cert = ca_store.load_ca().issuing_cert
    serial, cert_state, revoked_at, reason, _changed_at = state
    for algorithm in OCSP_HASHES:
        name_hash, key_hash = pki_ocsp.issuer_hashes(issuing_cert, algorithm)
        question = pki_ocsp.OcspQuestion(name_hash, key_hash, int(serial, 16), algorithm, None)
        _store(question, state, _sign(question, _cert_status(cert_state, revoked_at, reason)))


def presign_ocsp(*serials: str) -> None:
    """Sign and store the answers about these certificates: call right after issuing one or
    changing its status, so the next question is answered from storage."""
    if serials:
        for state in Certificate.select(*_CERT_STATE).where(
                Certificate.serial.in_(serials)).tuples():
            _sign_and_store(state)


# One statement, no query builder: this runs on every OCSP request (about 1/10 of the time
# peewee takes to build it). The join is what refuses an answer signed before a change.
_STORED = """SELECT r.der, r.this_update, r.next_update FROM ocsp_response r
JOIN certificate c ON c.serial = r.serial
WHERE r.serial = {p} AND r.hash_algorithm = {p} AND r.issuer_name_hash = {p}
  AND r.issuer_key_hash = {p} AND r.signer = {p} AND r.status = c.status
  AND r.status_changed_at IS NOT DISTINCT FROM c.status_changed_at"""


def _naive(value) -> datetime:
    # SQLite hands back the text peewee stored; PostgreSQL a datetime.
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@functools.cache
def _stored_sql(param: str) -> str:
    return _STORED.format(p=param)


def stored_ocsp_answer(question: pki_ocsp.OcspQuestion) -> OcspAnswer | None:
    """The stored answer to a question without nonce, if it may be served now."""
    row = db.execute_sql(_stored_sql(db.param), (
        serial_hex(question.serial), question.hash_algorithm.name, question.issuer_name_hash,
        question.issuer_key_hash, ca_store.ocsp_signer_id())).fetchone()
    if row is None:
        return None
    this_update, next_update = _naive(row[1]), _naive(row[2])
    if clock.now() >= this_update + (next_update - this_update) / 2:
        return None                   # past half-way: `jobs run` has not been refreshing it
    return OcspAnswer(bytes(row[0]), this_update, next_update)


def _root_answer(question) -> OcspAnswer:
    """The root's pre-signed answer about a CA certificate it issued; unauthorized when the
    last ceremony signed none for it, or the one it signed has run out (the nonce, if any, is
    not echoed: RFC 9654 lets a responder leave it out, and the root key is offline)."""
    found = ca_store.root_answer(question.serial, question.hash_algorithm.name)
    if found is not None:
        der, this_update, next_update = found
        if this_update <= clock.now() < next_update:
            return OcspAnswer(der, this_update, next_update)
    return OcspAnswer(pki_ocsp.unauthorized_response(), None, None)


def ocsp_answer(request_der: bytes) -> OcspAnswer:
    """The DER OCSP response to a DER request: malformedRequest for anything unreadable. A
    question without nonce gets the stored answer when there is one; a nonce gets a fresh
    signature that echoes it (RFC 9654 would let us ignore it, but `openssl ocsp`, which
    sends one by default, then warns "no nonce in response")."""
    try:
        question = pki_ocsp.parse_request(request_der)
    except PkiError:
        return OcspAnswer(pki_ocsp.malformed_response(), None, None)
    ca = ca_store.load_ca()
    if pki_ocsp.is_our_issuer(question, ca.root_cert):
        return _root_answer(question)
    if question.nonce is None:
        stored = stored_ocsp_answer(question)
        if stored is not None:
            return stored
    state = None
    if pki_ocsp.is_our_issuer(question, ca.issuing_cert):
        state = (Certificate.select(*_CERT_STATE, Certificate.not_after)
                 .where(Certificate.serial == serial_hex(question.serial)).tuples().first())
    if state is None:
        return _sign(question, pki_ocsp.CertStatus("unknown"))
    answer = _sign(question, _cert_status(*state[1:4]))
    # Kept for the next asker unless it carries a nonce; answers about expired certificates
    # are not kept (refresh_ocsp_answers drops them).
    if question.nonce is None and state[5] > clock.now():
        _store(question, state[:5], answer)
    return answer


# -- OCSP: refreshing -----------------------------------------------------------------------

def _due_certificates(at):
    """Unexpired certificates without a fresh answer for every CertID hash at `at`: none
    yet, older than the refresh age, by another signer, or for a status since changed."""
    fresh = OcspResponse.select(fn.COUNT(OcspResponse.id)).where(
        (OcspResponse.serial == Certificate.serial)
        & (OcspResponse.signer == ca_store.ocsp_signer_id())
        & (OcspResponse.status == Certificate.status)
        & ((OcspResponse.status_changed_at == Certificate.status_changed_at)
           | (OcspResponse.status_changed_at.is_null()
              & Certificate.status_changed_at.is_null()))
        & (OcspResponse.this_update > at - _ocsp_refresh_age()))
    return Certificate.select(*_CERT_STATE).where(
        (Certificate.not_after > at) & (fresh < len(OCSP_HASHES)))


def _expired_answers(at):
    return OcspResponse.serial.in_(
        Certificate.select(Certificate.serial).where(Certificate.not_after <= at))


def ocsp_refresh_due(at=None) -> tuple[int, int]:
    """(certificates whose answers `jobs run` at `at` would sign, answers about expired
    certificates it would drop)."""
    at = at or clock.now()
    return (_due_certificates(at).count(),
            OcspResponse.select().where(_expired_answers(at)).count())


def refresh_ocsp_answers() -> tuple[int, int]:
    """Sign what is due, drop the answers about expired certificates: (certificates signed
    for, answers dropped). Two runs at once may both sign one; either answer is right."""
    now = clock.now()
    dropped = OcspResponse.delete().where(_expired_answers(now)).execute()
    due = list(_due_certificates(now).tuples())     # read before writing to what it reads
    for state in due:
        _sign_and_store(state)
    return len(due), dropped


def rotate_ocsp_signer(actor: str) -> tuple[str, int]:
    """A new OCSP signer, and every stored answer signed again by it (those of the old one
    are no longer served in any case): (its fingerprint, certificates signed for)."""
    fingerprint = ca_store.rotate_signer("ocsp", actor)
    return fingerprint, refresh_ocsp_answers()[0]
