"""What `flask --app app ca status` prints: where the CA keys are, the CA certificates and
when they expire, the CRL's and OCSP signer's dates, how much has been signed, the audit
trail's latest checkpoint and what interrupted issuances left to settle."""
import datetime as dt
from dataclasses import dataclass

from models import AuditEvent, Crl, SerialReservation
from pki import ca as pki_ca
from services import ca_store, checkpoints, clock, reservations, settings, status


@dataclass
class CaCertificate:
    role: str
    subject: str
    fingerprint: str
    not_after: dt.datetime


@dataclass
class Overview:
    backend: str
    certificates: list[CaCertificate]
    crl_number: int | None
    crl_next_update: dt.datetime | None
    unpublished_changes: int
    signed_certificates: int
    signed_crls: int
    unsettled_reservations: int
    audit_events: int
    checkpoint: object | None


def overview() -> Overview:
    keys = ca_store.load_ca()
    crl = Crl.select().order_by(Crl.number.desc()).first()
    return Overview(
        backend=f"file: encrypted PKCS#8 in {settings.current().instance}/ca",
        certificates=[CaCertificate(role, cert.subject.rfc4514_string(), pki_ca.fingerprint(cert),
                                    clock.naive(cert.not_valid_after_utc))
                      for role, cert in (("root", keys.root_cert), ("issuing", keys.issuing_cert),
                                         ("ocsp", keys.ocsp_cert))],
        crl_number=crl.number if crl else None, crl_next_update=crl.next_update if crl else None,
        unpublished_changes=status.unpublished_changes(),
        signed_certificates=SerialReservation.select().where(
            SerialReservation.der.is_null(False)).count(),
        signed_crls=Crl.select().count(),
        unsettled_reservations=reservations.unsettled().count(),
        audit_events=AuditEvent.select().count(), checkpoint=checkpoints.latest())
