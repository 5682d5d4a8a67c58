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

WRONG_PASSWORDS = 20          # wrong certificate passwords per client address per hour


def read(files: list[tuple[str, bytes]]) -> "pki_bundle.Bundle":
    try:
        return pki_bundle.read_bundle(files)
    except PkiError as error:
        raise DomainError(error.code, field="files", detail=error.detail or "") from None


def open_with_password(found: "pki_bundle.Bundle", password: str, limit_key: str,
                       field: str = "password") -> "pki_bundle.Opened":
    """Open the key with the password a person typed. A wrong one counts against
    `limit_key` (a client address), and is refused once the hour's limit is reached."""
    if limits.blocked(limit_key, WRONG_PASSWORDS):
        raise DomainError("client_blocked", status=429)
    try:
        return pki_bundle.open_bundle(found, password or "")
    except PkiError as error:
        if error.code in ("key_password_incorrect", "p12_password_incorrect"):
            limits.count_failure(limit_key)
            raise DomainError("password_wrong_for_files", field=field) from None
        raise DomainError(error.code, field="files", detail=error.detail or "") from None


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
    opened = open_with_password(read(files), old, "password:" + client, field="old_password")
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
