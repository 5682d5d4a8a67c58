"""Audit checkpoints as signed text: the chain's head (event id and hash) at a moment, signed
by a CA key, in a form anyone can keep and check with openssl:

    CertCenter audit checkpoint
    event: 1234
    hash: <the event's SHA-256 chain hash>
    at: 2026-12-03T07:40:00Z
    signer: <SHA-256 fingerprint of the signing certificate, hex>
    signature: <base64 RSASSA-PKCS1-v1_5 SHA-256 over every line above, newlines included>

`openssl dgst -sha256 -verify issuing.pub -signature sig.bin statement.txt` checks it.
"""
import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .errors import PkiError
from .signer import as_signer

TITLE = "CertCenter audit checkpoint"
_FORM = re.compile(r"\A" + re.escape(TITLE) + r"\nevent: ([0-9]{1,18})\nhash: ([0-9a-f]{64})\n"
                   r"at: ([0-9T:Z-]{20})\nsigner: ([0-9a-f]{64})\n\Z")


@dataclass(frozen=True)
class Checkpoint:
    event_id: int
    event_hash: str
    at: dt.datetime          # naive UTC
    signer: str
    statement: str           # the exact text signed
    signature: bytes

    def document(self) -> str:
        return self.statement + "signature: " + base64.b64encode(self.signature).decode() + "\n"


def signer_id(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def sign(event_id: int, event_hash: str, at: dt.datetime, key, cert: x509.Certificate) -> Checkpoint:
    statement = (f"{TITLE}\nevent: {event_id}\nhash: {event_hash}\n"
                 f"at: {at:%Y-%m-%dT%H:%M:%SZ}\nsigner: {signer_id(cert)}\n")
    signature = as_signer(key).sign(statement.encode())
    return Checkpoint(event_id, event_hash, at.replace(microsecond=0), signer_id(cert),
                      statement, signature)


def parse(statement: str, signature: bytes) -> Checkpoint:
    """A checkpoint from its signed text and signature; PkiError when the text is not one."""
    form = _FORM.match(statement)
    if form is None:
        raise PkiError("checkpoint_unreadable", "not a checkpoint statement")
    event_id, event_hash, at, signer = form.groups()
    try:
        moment = dt.datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise PkiError("checkpoint_unreadable", f"time {at}") from None
    return Checkpoint(int(event_id), event_hash, moment, signer, statement, signature)


def read_document(text: str) -> Checkpoint:
    """A checkpoint from the document form (a copy someone kept)."""
    statement, marker, rest = text.partition("signature: ")
    try:
        signature = base64.b64decode(rest.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PkiError("checkpoint_unreadable", "signature is not base64") from None
    if not marker:
        raise PkiError("checkpoint_unreadable", "no signature line")
    return parse(statement, signature)


def is_signed_by(checkpoint: Checkpoint, cert: x509.Certificate) -> bool:
    if checkpoint.signer != signer_id(cert):
        return False
    try:
        cert.public_key().verify(checkpoint.signature, checkpoint.statement.encode(),
                                 padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
