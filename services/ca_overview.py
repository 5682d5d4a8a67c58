"""What `flask --app app ca status` prints: where the CA keys are, the CA certificates and
when they expire, the root's and issuing CA's CRL dates, how much each kind of signature was
made, the audit trail's latest checkpoint and what interrupted issuances left to settle."""
import datetime as dt
from dataclasses import dataclass

from models import AuditCheckpoint, AuditEvent, Crl, SerialReservation
from pki import ca as pki_ca
from services import ca_store, ceremony, checkpoints, clock, reservations, settings, status


@dataclass
class CaCertificate:
    role: str
    subject: str
    fingerprint: str
    not_after: dt.datetime
    key: str            # where the key is: "offline", or the signer's key id


@dataclass
class Overview:
    backend: str
    certificates: list[CaCertificate]
    root_crl: object | None          # ca_store.RootCrl
    root_warning: str | None
    crl_number: int | None
    crl_next_update: dt.datetime | None
    crl_partitions: int
    unpublished_changes: int
    signed: dict[str, int]           # kind -> signatures made by the online keys
    unsettled_reservations: int
    audit_events: int
    checkpoint: object | None


def overview() -> Overview:
    keys = ca_store.load_ca()
    crl = Crl.select().where(Crl.crl_partition.is_null()).order_by(Crl.number.desc()).first()
    config = settings.current()
    backend = (f"pkcs11: token {config.pkcs11['token']!r} via {config.pkcs11['module']}"
               if ca_store.backend() == "pkcs11"
               else "file: encrypted PKCS#8 in the database")
    return Overview(
        backend=backend,
        certificates=[CaCertificate(role, cert.subject.rfc4514_string(), pki_ca.fingerprint(cert),
                                    clock.naive(cert.not_valid_after_utc), key)
                      for role, cert, key in (
                          ("root", keys.root_cert, "offline"),
                          ("issuing", keys.issuing_cert, keys.issuing_key.key_id),
                          ("ocsp", keys.ocsp_cert, keys.ocsp_key.key_id),
                          ("cmp", keys.cmp_cert, keys.cmp_key and keys.cmp_key.key_id))
                      if cert is not None],
        root_crl=ca_store.root_crl(), root_warning=ceremony.root_crl_warning(),
        crl_number=crl.number if crl else None, crl_next_update=crl.next_update if crl else None,
        crl_partitions=status.crl_partitions(),
        unpublished_changes=status.unpublished_changes(),
        # Certificates since reservations were kept; CRLs still stored (the last few).
        signed={"certificates": SerialReservation.select().where(
                    SerialReservation.der.is_null(False)).count(),
                "CRLs": Crl.select().count(),
                "OCSP responses": ca_store.signature_counts().get("ocsp", 0),
                "audit checkpoints": AuditCheckpoint.select().count()},
        unsettled_reservations=reservations.unsettled().count(),
        audit_events=AuditEvent.select().count(), checkpoint=checkpoints.latest())
