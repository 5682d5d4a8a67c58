"""Registering another institution's certificate (타기관 인증서 등록): a verified customer
brings a certificate another bank issued them, and we record it as theirs once we are sure it
is: it chains to a trust anchor, it is in force, they hold its key, and its VID was made from
their own resident registration number. Only the certificate is kept, never the key."""
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from peewee import IntegrityError

from models import RegisteredCertificate, db
from pki import npki
from pki.errors import PkiError
from pki.serials import serial_hex
from services import audit, clock, customers, files, limits, trust, verification
from services.errors import DomainError


def _actor(customer) -> str:
    return "customer:" + customer.code


def _check_rrn(customer, rrn: str, by_client: limits.Limit) -> str:
    """The 13 digits typed, if they are the customer's own: the VID proves the certificate
    was made for those digits, so they must be this customer's. A wrong one counts toward the
    client and the customer, like a wrong PIN."""
    digits = customers.normalise_rrn(rrn)
    attempt = verification.reserve_customer_try(customer, by_client)
    if customers.rrn_lookup(digits) != customer.rrn_hmac:
        verification.customer_failed(customer, "registration_rrn")
        raise DomainError("identity_mismatch", field="rrn")
    verification.customer_succeeded(customer, attempt)
    return digits


def _check_certificate(opened) -> None:
    """The certificate itself: not ours, in force, from an institution we trust. Validity is
    checked before the chain so that an expired certificate is called expired (what the
    customer can act on: get a new one) even when its issuer is unknown too. A missing CA
    certificate on the way is told apart: the customer can bring it, or the bank can."""
    cert = opened.certificate
    if files.our_record(cert) is not None:
        raise DomainError("register_is_ours", field="files")
    now = clock.aware(clock.now())
    if now < cert.not_valid_before_utc:
        raise DomainError("register_not_yet_valid", field="files",
                          since=clock.naive(cert.not_valid_before_utc))
    if now > cert.not_valid_after_utc:
        raise DomainError("register_expired", field="files",
                          until=clock.naive(cert.not_valid_after_utc))
    try:
        trust.path(cert, opened.extra_certs, now)
    except trust.NoPath as no_path:
        code = "register_intermediate_missing" if no_path.issuer_missing else "register_untrusted"
        raise DomainError(code, field="files") from None


def _check_vid(opened, rrn: str) -> None:
    """The certificate's VID against the one recomputed from the RRN and the key's randomNum."""
    if opened.random_num is None:
        # A .p12 drops the randomNum the NPKI key file carries, and without it there is
        # no VID to recompute.
        raise DomainError("register_needs_npki", field="files")
    try:
        identify = npki.read_identify_data(opened.certificate)
    except PkiError:
        identify = None
    if identify is None:
        raise DomainError("register_no_vid", field="files")
    if npki.compute_vid(rrn, opened.random_num) != identify[1]:
        raise DomainError("register_vid_mismatch", field="files")


def register(customer, uploads: list[tuple[str, bytes]], password: str, rrn: str,
             client: str) -> RegisteredCertificate:
    """Check the files and record the certificate as the customer's; else DomainError."""
    by_client = limits.per_client("register", client)
    digits = _check_rrn(customer, rrn, by_client)
    opened = files.open_with_password(files.read(uploads), password, by_client)
    _check_certificate(opened)
    _check_vid(opened, digits)
    cert = opened.certificate
    serial, issuer = serial_hex(cert.serial_number), cert.issuer.rfc4514_string()
    try:
        with db.atomic():
            row = RegisteredCertificate.create(
                customer=customer, serial=serial, issuer=issuer,
                subject=cert.subject.rfc4514_string(),
                not_before=clock.naive(cert.not_valid_before_utc),
                not_after=clock.naive(cert.not_valid_after_utc),
                der=cert.public_bytes(Encoding.DER),
                registered_at=clock.now())
            audit.record(_actor(customer), "registration.add", str(row.id), serial=serial,
                         issuer=issuer)
    except IntegrityError:
        # The unique index decides, so that two submits at once cannot both register.
        raise DomainError("register_duplicate", field="files", status=409) from None
    return row


def _first(name: x509.Name, *oids) -> str | None:
    for oid in oids:
        values = [a.value for a in name if a.oid == oid]
        if values:
            return str(values[0])
    return None


def names(row: RegisteredCertificate) -> dict:
    """What people call the certificate and its issuer: the subject's CN and the issuer's O
    (else its CN), falling back to the whole name."""
    cert = x509.load_der_x509_certificate(bytes(row.der))
    return {"name": _first(cert.subject, NameOID.COMMON_NAME) or row.subject,
            "issuer": _first(cert.issuer, NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME)
            or row.issuer}


def registered_of(customer) -> list[RegisteredCertificate]:
    return list(RegisteredCertificate.select()
                .where(RegisteredCertificate.customer == customer)
                .order_by(RegisteredCertificate.registered_at.desc(),
                          RegisteredCertificate.id.desc()))


def find(customer, registration_id: int) -> RegisteredCertificate:
    """One of the customer's own registrations; anyone else's is as good as missing."""
    row = RegisteredCertificate.get_or_none((RegisteredCertificate.id == registration_id)
                                            & (RegisteredCertificate.customer == customer))
    if row is None:
        raise DomainError("registration_not_found", status=404)
    return row


def remove(customer, registration_id: int, actor: str) -> RegisteredCertificate:
    """Forget one of the customer's registrations; returns the row as it was."""
    with db.atomic():
        row = find(customer, registration_id)
        row.delete_instance()
        audit.record(actor, "registration.remove", str(registration_id), serial=row.serial,
                     issuer=row.issuer)
    return row
