"""Certificate files people bring: what they are (for the support desk), and whether they are
one of ours and in force."""
from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from models import Certificate
from pki import bundle as pki_bundle
from pki import files as pki_files
from pki import npki
from pki.errors import PkiError
from pki.serials import serial_hex
from services import limits
from services.errors import DomainError
from services.passwords import check_new_password


def read(files: list[tuple[str, bytes]]) -> "pki_bundle.Bundle":
    try:
        return pki_bundle.read_bundle(files)
    except PkiError as error:
        raise DomainError(error.code, field="files", detail=error.detail or "") from None


def _certificate_limits(found: "pki_bundle.Bundle") -> list[limits.Limit]:
    try:
        targets = pki_bundle.guess_targets(found)
    except PkiError as error:
        raise DomainError(error.code, field="files", detail=error.detail or "") from None
    return [limits.per_target("certificate", target.hex()) for target in targets]


def open_with_password(found: "pki_bundle.Bundle", password: str, by_client: limits.Limit,
                       field: str = "password") -> "pki_bundle.Opened":
    """Open the key with the password a person typed. Each try counts against the client
    (`by_client`) and against the key itself, from any number of addresses, before the key is
    derived; a wrong password, or a file that asks for too much work to open, stays counted."""
    by_key = _certificate_limits(found)
    try:
        attempt = limits.reserve(by_client, *by_key)
    except limits.LimitReached as reached:
        if reached.limit == by_client:
            raise DomainError("client_blocked", status=429) from None
        raise DomainError("certificate_blocked", field=field, status=429, until=reached.until) from None
    try:
        opened = pki_bundle.open_bundle(found, password or "")
    except PkiError as error:
        if error.code in ("key_password_incorrect", "p12_password_incorrect"):
            _owner_failed(found.certificate)
            raise DomainError("password_wrong_for_files", field=field) from None
        if error.code != "kdf_over_cap":
            attempt.succeeded()           # not a guess: the file itself cannot be used
        raise DomainError(error.code, field="files", detail=error.detail or "") from None
    attempt.succeeded()
    return opened


def _owner_failed(certificate) -> None:
    """A wrong password for one of our certificates counts toward its owner's 100."""
    from services.verification import customer_failed
    record = our_record(certificate)
    if record is not None:
        customer_failed(record.customer, "certificate_password")


def our_record(certificate) -> Certificate | None:
    """Our database row for a certificate, if we issued exactly this one."""
    if certificate is None:
        return None
    row = Certificate.get_or_none(Certificate.serial == serial_hex(certificate.serial_number))
    if row is not None and bytes(row.der) == certificate.public_bytes(Encoding.DER):
        return row
    return None


def inspect(files: list[tuple[str, bytes]], password: str | None) -> dict:
    """What the files are, and (with a password) whether it opens the key and the key matches
    the certificate; with our status when the certificate is ours."""
    found = read(files)
    try:
        described = pki_bundle.describe(found, password)
    except PkiError as error:
        raise DomainError(error.code, field="files", detail=error.detail or "") from None
    record = our_record(found.certificate)
    described["ours"] = record is not None
    described["status"] = record.status if record else None
    return described



@dataclass
class NewFiles:
    filename: str
    media_type: str
    content: bytes


def issuer_organisation(certificate) -> str:
    """The issuer's O=, which names the NPKI folder the files belong in."""
    names = [a.value for a in certificate.issuer if a.oid == NameOID.ORGANIZATION_NAME]
    return str(names[0]) if names else "NPKI"


def change_password(files: list[tuple[str, bytes]], old: str, new: str, again: str,
                    client: str) -> NewFiles:
    """The same certificate with its key encrypted under the new password, in the format it
    came in (an NPKI folder keeps its key scheme; a .p12 stays a .p12). Nothing is stored."""
    opened = open_with_password(read(files), old, limits.per_client("password", client),
                                field="old_password")
    check_new_password(new, again, field="password")
    cert = opened.certificate
    if opened.scheme == "pkcs12":
        return NewFiles("certificate.p12", "application/x-pkcs12",
                        pki_files.pkcs12(opened.private_key, cert, opened.extra_certs, new,
                                         cert.subject.rfc4514_string()))
    key_file = npki.encrypt_private_key(opened.private_key, new, opened.random_num,
                                        scheme=opened.scheme)
    return NewFiles("NPKI.zip", "application/zip",
                    npki.npki_zip(cert, key_file, issuer_organisation(cert)))
