"""Serial reservations: no signature without a record (Boulder's issuance cycle).

Before the CA key signs anything, a row with the serial, customer, type and public key is
committed; each step after it says how far it got (linted, with the hash of the linted TBS;
signed, with the certificate itself), and storing the certificate in the customer's
transaction marks it issued. A crash or an error in between leaves the row behind: `jobs run`
settles reservations older than 10 minutes — one never signed is abandoned, and a certificate
signed but never stored is recorded as revoked (cessation of operation), published in the CRL
and audited, so it is never left valid and unknown.
"""
import hashlib
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from peewee import IntegrityError

from models import Certificate, Customer, SerialReservation, db
from pki.profile import crl_partition_named
from pki.serials import random_serial, serial_hex
from services import audit, clock
from services.status import note_change, presign_ocsp, publish_changes

SETTLE_AFTER = timedelta(minutes=10)
UNFINISHED = ("reserved", "linted", "signed")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reserve(customer: Customer, type_id: str, public_key, actor: str) -> SerialReservation:
    """A serial never used before, reserved and committed (call outside any transaction)."""
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    while True:
        serial = serial_hex(random_serial())
        if Certificate.select().where(Certificate.serial == serial).exists():
            continue                 # issued before reservations were kept
        try:
            with db.atomic():
                return SerialReservation.create(
                    serial=serial, customer=customer, cert_type=type_id, actor=actor,
                    public_key_sha256=_sha256(spki), reserved_at=clock.now())
        except IntegrityError:
            continue


def _advance(reservation: SerialReservation, step: str, **fields) -> None:
    with db.atomic():
        SerialReservation.update(step=step, **fields).where(
            SerialReservation.id == reservation.id).execute()
    reservation.step = step
    for name, value in fields.items():
        setattr(reservation, name, value)


def linted(reservation: SerialReservation, tbs: bytes) -> None:
    _advance(reservation, "linted", tbs_sha256=_sha256(tbs))


def refused(reservation: SerialReservation, actor: str, findings) -> None:
    with db.atomic():
        _advance(reservation, "refused")
        audit.record(actor, "issue.lint_refused", reservation.serial, findings=findings)


def signed(reservation: SerialReservation, cert: x509.Certificate) -> None:
    """Keep the signed certificate with its reservation before anything else can fail. The
    signature must cover exactly the TBS that was linted."""
    _advance(reservation, "signed", der=cert.public_bytes(Encoding.DER))
    if _sha256(cert.tbs_certificate_bytes) != reservation.tbs_sha256:
        raise RuntimeError(f"certificate {reservation.serial}: the signed TBS is not the linted one")


def issued(serial: str) -> None:
    """Inside the transaction that stores the certificate."""
    SerialReservation.update(step="issued").where(SerialReservation.serial == serial).execute()


def unsettled(at=None):
    """Reservations an issuance left unfinished more than 10 minutes before `at`."""
    return SerialReservation.select().where(
        SerialReservation.step.in_(UNFINISHED)
        & (SerialReservation.reserved_at < (at or clock.now()) - SETTLE_AFTER))


def settle(actor: str) -> tuple[int, int]:
    """Settle what interrupted issuances left: (abandoned, revoked)."""
    abandoned, revoked = 0, []
    for reservation in unsettled():
        with db.atomic():
            # Claim it: two runs at once settle each reservation once.
            if not SerialReservation.update(step="settling").where(
                    (SerialReservation.id == reservation.id)
                    & SerialReservation.step.in_(UNFINISHED)).execute():
                continue
            if reservation.step != "signed":
                SerialReservation.update(step="abandoned").where(
                    SerialReservation.id == reservation.id).execute()
                audit.record(actor, "issue.abandoned", reservation.serial,
                             customer=reservation.customer.code, step=reservation.step)
                abandoned += 1
                continue
            _record_revoked(reservation, actor)
            revoked.append(reservation.serial)
    if revoked:
        publish_changes()
        presign_ocsp(*revoked)
    return abandoned, len(revoked)


def revoke_undelivered(serial: str, actor: str) -> bool:
    """A certificate signed but refused by its client before it was stored (a CMP certConf
    that rejects it): recorded as revoked now rather than by the next settle. False when it
    was settled or stored meanwhile."""
    with db.atomic():
        reservation = SerialReservation.get(SerialReservation.serial == serial)
        if not SerialReservation.update(step="settling").where(
                (SerialReservation.id == reservation.id)
                & (SerialReservation.step == "signed")).execute():
            return False
        _record_revoked(reservation, actor)
    publish_changes()
    presign_ocsp(serial)
    return True


def _record_revoked(reservation: SerialReservation, actor: str) -> None:
    cert = x509.load_der_x509_certificate(bytes(reservation.der))
    now = clock.now()
    record = Certificate.create(
        serial=reservation.serial, customer=reservation.customer, cert_type=reservation.cert_type,
        status="revoked", subject=cert.subject.rfc4514_string(),
        not_before=clock.naive(cert.not_valid_before_utc),
        not_after=clock.naive(cert.not_valid_after_utc), der=bytes(reservation.der),
        key_generated_here=False, revoked_at=now, revocation_reason="cessation-of-operation",
        status_changed_at=now, crl_partition=crl_partition_named(cert), created_at=now)
    SerialReservation.update(step="revoked").where(SerialReservation.id == reservation.id).execute()
    note_change(record)
    audit.record(actor, "certificate.revoke", reservation.serial, reason="cessation-of-operation",
                 customer=reservation.customer.code, never_delivered=True)
