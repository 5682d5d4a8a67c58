"""Keyed hashing and encryption of the secrets we keep: RRN HMACs, PIN hashes, TOTP
secrets, one-time codes. Keys are derived from the instance master key, one per purpose."""
import base64
import hashlib
import hmac
import os
import secrets as _random

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services import settings


def _subkey(purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"certcenter:" + purpose.encode()).derive(settings.current().master_key)


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` under the purpose's key, hex. Used for lookups (RRN, codes)."""
    return hmac.new(_subkey(purpose), value.encode(), hashlib.sha256).hexdigest()


def hash_pin(pin: str) -> str:
    """A slow salted hash for short secrets people type (account PINs)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_pin(pin: str, stored: str) -> bool:
    try:
        _scheme, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt), n=2**14, r=8, p=1,
                             dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def encrypt(purpose: str, plaintext: bytes) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_subkey(purpose)).encrypt(nonce, plaintext, purpose.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(purpose: str, token: str) -> bytes | None:
    """The plaintext, or None if the token was not made by `encrypt` for this purpose."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        return AESGCM(_subkey(purpose)).decrypt(raw[:12], raw[12:], purpose.encode())
    except (ValueError, InvalidTag):
        return None


def random_text(alphabet: str, n: int) -> str:
    return "".join(_random.choice(alphabet) for _ in range(n))


def random_digits(n: int) -> str:
    return random_text("0123456789", n)


def random_token() -> str:
    return _random.token_urlsafe(32)
