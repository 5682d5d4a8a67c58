"""Certificate login (proof of possession): a verified customer shows that they hold one of
their certificates, either by opening its files with the password (the files and the key live
only in memory for that request) or by signing a challenge, so that the key never leaves
their device. The certificate must be ours, theirs, unexpired and in force."""
import base64
import binascii
from datetime import timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from models import Certificate, Customer
from services import audit, clock, files, limits, secrets
from services.errors import DomainError

CHALLENGE_LIFE = timedelta(minutes=5)


def _theirs(customer: Customer, record: Certificate | None) -> Certificate:
    if record is None:
        raise DomainError("possession_not_ours", field="files")
    if record.customer_id != customer.id:
        audit.record("customer:" + customer.code, "possession.foreign", record.serial)
        raise DomainError("possession_not_yours", field="files")
    return record


def _in_force(record: Certificate) -> Certificate:
    if record.status == "revoked":
        raise DomainError("possession_revoked", field="files")
    if record.status == "suspended":
        raise DomainError("possession_suspended", field="files")
    if record.not_after <= clock.now():
        raise DomainError("possession_expired", field="files")
    return record


def _by_client(client: str) -> limits.Limit:
    return limits.per_client("possession", client)


def open_own_files(customer: Customer, uploads: list[tuple[str, bytes]], password: str,
                   client: str, in_force: bool = True):
    """Open the customer's certificate files with the password: (our record, the opened
    files). With `in_force` off, a revoked, suspended or expired certificate of theirs is
    returned too, for the caller to explain what it means for them."""
    opened = files.open_with_password(files.read(uploads), password, _by_client(client))
    record = _theirs(customer, files.our_record(opened.certificate))
    if in_force:
        _in_force(record)
    audit.record("customer:" + customer.code, "possession.proved", record.serial, way="files")
    return record, opened


def prove_with_files(customer: Customer, uploads: list[tuple[str, bytes]], password: str,
                     client: str) -> Certificate:
    return open_own_files(customer, uploads, password, client)[0]


def new_challenge() -> str:
    """Text for the customer to sign: random, and marked as ours so it is never a document."""
    return "certcenter-login:" + secrets.random_token()


def _verifies(record: Certificate, challenge: bytes, signature: bytes) -> bool:
    key = x509.load_der_x509_certificate(bytes(record.der)).public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, challenge, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def prove_with_signature(customer: Customer, challenge: str, issued_at, signature_b64: str,
                         client: str, in_force: bool = True) -> Certificate:
    """Accept a base64 signature (openssl dgst -sha256 -sign) of `challenge` by the key of one
    of the customer's certificates in force (with `in_force` off: of any of theirs, newest
    first)."""
    if issued_at is None or clock.now() - issued_at > CHALLENGE_LIFE:
        raise DomainError("challenge_expired", field="signature")
    try:
        signature = base64.b64decode("".join((signature_b64 or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise DomainError("signature_format", field="signature") from None
    if not 64 <= len(signature) <= 1024:
        raise DomainError("signature_format", field="signature")
    attempt = limits.reserve_client_try(_by_client(client))
    candidates = Certificate.select().where(Certificate.customer == customer)
    if in_force:
        candidates = candidates.where((Certificate.status == "valid")
                                      & (Certificate.not_after > clock.now()))
    candidates = candidates.order_by(Certificate.created_at.desc())
    for record in candidates:
        if _verifies(record, challenge.encode(), signature):
            audit.record("customer:" + customer.code, "possession.proved", record.serial,
                         way="signature")
            attempt.succeeded()
            return record
    raise DomainError("signature_wrong", field="signature")
