"""Copying certificate files between devices (인증서 내보내기/가져오기). One device sends the
NPKI files or a .p12 and gets a one-time 12-digit code; another enters the code and receives
exactly those files, once. The relay never sees the certificate password.

The code's first four digits say which transfer is meant, so wrong codes can be counted
against it (five destroy it); all twelve are the secret. Only an HMAC of the code is kept, and
the files are sealed with AES-256-GCM under a key derived from the code with scrypt.
"""
import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from models import Transfer, db
from pki import npki
from services import audit, clock, limits, secrets
from services.errors import DomainError
from services.files import issuer_organisation
from services.files import read as read_files

LIFE = timedelta(minutes=10)
WRONG_CODES = 5                         # per transfer, then it is destroyed
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


@dataclass
class Sent:
    transfer: Transfer
    code: str                            # shown once to the sender, never stored


def _seal_key(code: str, salt: bytes) -> bytes:
    return hashlib.scrypt(code.encode(), salt=salt, dklen=32, **_SCRYPT)


def _payload(files: list[tuple[str, bytes]]) -> tuple[str, str, bytes]:
    """(kind, filename, bytes) to relay: a .p12 or an NPKI zip as it was sent; loose NPKI
    files are put into the NPKI folder layout."""
    found = read_files(files)
    if found.p12 is not None:
        if found.certificate is not None and found.encrypted_key is not None:
            raise DomainError("bundle_ambiguous", field="files")
        return "p12", "certificate.p12", found.p12
    if found.certificate is None or found.encrypted_key is None:
        raise DomainError("transfer_incomplete", field="files")
    if found.certificate.not_valid_after_utc <= clock.aware(clock.now()):
        raise DomainError("transfer_expired_certificate", field="files")
    if len(files) == 1 and zipfile.is_zipfile(io.BytesIO(files[0][1])):
        return "npki", "NPKI.zip", files[0][1]
    return "npki", "NPKI.zip", npki.npki_zip(found.certificate, found.encrypted_key,
                                             issuer_organisation(found.certificate))


def _new_code() -> str:
    """12 digits whose first four are not the locator of another live transfer."""
    while True:
        code = secrets.random_digits(12)
        if not Transfer.select().where((Transfer.locator == code[:4])
                                       & (Transfer.expires_at > clock.now())).exists():
            return code


def send(files: list[tuple[str, bytes]]) -> Sent:
    kind, filename, payload = _payload(files)
    code, salt, nonce = _new_code(), os.urandom(16), os.urandom(12)
    sealed = nonce + AESGCM(_seal_key(code, salt)).encrypt(nonce, payload, code[:4].encode())
    now = clock.now()
    with db.atomic():
        transfer = Transfer.create(locator=code[:4],
                                   code_hmac=secrets.keyed_hash("transfer", code), salt=salt,
                                   sealed=sealed, kind=kind, filename=filename,
                                   expires_at=now + LIFE, created_at=now)
        audit.record("anonymous", "transfer.send", str(transfer.id), kind=kind)
    return Sent(transfer, code)


def normalise_code(typed: str) -> str:
    code = re.sub(r"[\s-]", "", typed or "")
    if not re.fullmatch(r"[0-9]{12}", code):         # not \d: it takes any script's digits
        raise DomainError("transfer_code_format", field="code")
    return code


@dataclass
class Received:
    filename: str
    media_type: str
    content: bytes


def _take_try(locator: str, now) -> Transfer | None:
    """Take one of the five tries of the live transfer the code's first four digits name,
    before the code is compared: the fifth wrong one destroys the files. None when no live
    transfer has that locator, or its tries are used up."""
    candidate = (Transfer.select().where((Transfer.locator == locator) & (Transfer.expires_at > now)
                                         & Transfer.sealed.is_null(False)).first())
    if candidate is None:
        return None
    taken = Transfer.update(wrong_tries=Transfer.wrong_tries + 1).where(
        (Transfer.id == candidate.id) & (Transfer.wrong_tries < WRONG_CODES)
        & Transfer.sealed.is_null(False)).execute()
    return candidate if taken else None


def _wrong(transfer: Transfer | None) -> None:
    if transfer is None:
        return
    with db.atomic():
        Transfer.update(sealed=None).where(
            (Transfer.id == transfer.id) & (Transfer.wrong_tries >= WRONG_CODES)).execute()
        audit.record("anonymous", "transfer.wrong_code", str(transfer.id))


def receive(typed_code: str, client: str) -> Received:
    """The files behind the code, once. Each try counts against the client and the transfer
    before the code is compared."""
    code = normalise_code(typed_code)
    attempt = limits.reserve_client_try(limits.per_client("transfer", client))
    now = clock.now()
    tried = _take_try(code[:4], now)
    transfer = Transfer.get_or_none(Transfer.code_hmac == secrets.keyed_hash("transfer", code))
    if transfer is None or (tried is None and transfer.sealed is not None
                            and transfer.expires_at > now):
        _wrong(tried)
        raise DomainError("transfer_code_wrong", field="code")
    attempt.succeeded()
    if tried is not None and tried.id == transfer.id:    # the right code: its try is given back
        Transfer.update(wrong_tries=Transfer.wrong_tries - 1).where(Transfer.id == tried.id).execute()
    if transfer.received_at is not None:
        raise DomainError("transfer_used", status=410, field="code")
    if transfer.sealed is None or transfer.expires_at <= now:
        raise DomainError("transfer_gone", status=410, field="code")
    sealed = bytes(transfer.sealed)
    try:
        payload = AESGCM(_seal_key(code, bytes(transfer.salt))).decrypt(
            sealed[:12], sealed[12:], code[:4].encode())
    except InvalidTag:
        raise DomainError("transfer_gone", status=410, field="code") from None
    with db.atomic():
        taken = Transfer.update(received_at=now, sealed=None).where(
            (Transfer.id == transfer.id) & Transfer.received_at.is_null()).execute()
        if taken:
            audit.record("anonymous", "transfer.receive", str(transfer.id))
    if not taken:
        raise DomainError("transfer_used", status=410, field="code")
    media = "application/x-pkcs12" if transfer.kind == "p12" else "application/zip"
    return Received(transfer.filename, media, payload)


@dataclass
class Progress:
    state: str                           # waiting | received | expired
    seconds_left: int


def progress(transfer_id: int) -> Progress:
    transfer = Transfer.get_or_none(Transfer.id == transfer_id)
    now = clock.now()
    if transfer is None:
        return Progress("expired", 0)
    if transfer.received_at is not None:
        return Progress("received", 0)
    if transfer.sealed is None or transfer.expires_at <= now:
        return Progress("expired", 0)
    return Progress("waiting", int((transfer.expires_at - now).total_seconds()))


def expired_count(at) -> int:
    """How many transfers a purge at `at` would delete."""
    return Transfer.select().where(Transfer.expires_at <= at).count()


def purge() -> int:
    """Delete expired transfers (received or destroyed ones hold no files already; their row
    stays until expiry so that the sender's page can say what happened)."""
    with db.atomic():
        count = Transfer.delete().where(Transfer.expires_at <= clock.now()).execute()
        if count:
            audit.record("system", "transfer.purged", None, count=count)
    return count
