"""PBES2 (RFC 8018): PBKDF2 and a CBC cipher, as NPKI signPri.key files and .p12 files use it.

Errors carry the caller's prefix ("key" for NPKI, "p12" for PKCS#12): `<prefix>_unreadable`,
`<prefix>_unsupported`, `<prefix>_password_incorrect`; and kdf_over_cap from the Budget.
"""

import hashlib

from cryptography.hazmat.decrepit.ciphers.algorithms import SEED, TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pyasn1.codec.der import decoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc8018

from .errors import PkiError
from .kdf import Budget

PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
SEED_CBC = "1.2.410.200004.1.4"

# PBKDF2 pseudo-random functions by OID: hashlib name. RFC 8018 makes HMAC-SHA1 the default when
# the PRF is absent (Korean toolkits' PBES2-SEED files); OpenSSL writes HMAC-SHA256.
PRFS = {
    "1.2.840.113549.2.7": "sha1",
    "1.2.840.113549.2.8": "sha224",
    "1.2.840.113549.2.9": "sha256",
    "1.2.840.113549.2.10": "sha384",
    "1.2.840.113549.2.11": "sha512",
}

# Encryption schemes by OID: (algorithm class, key bytes).
CIPHERS = {
    SEED_CBC: (SEED, 16),
    "2.16.840.1.101.3.4.1.2": (algorithms.AES, 16),
    "2.16.840.1.101.3.4.1.22": (algorithms.AES, 24),
    "2.16.840.1.101.3.4.1.42": (algorithms.AES, 32),
    "1.2.840.113549.3.7": (TripleDES, 24),  # des-ede3-cbc, which older OpenSSL wrote
}


def decode(data: bytes, spec, code: str):
    """DER-decode `data` as `spec`, turning any failure or trailing bytes into PkiError(code)."""
    try:
        value, rest = decoder.decode(data, asn1Spec=spec)
    except Exception as exc:  # pyasn1 raises assorted exception types on malformed input
        raise PkiError(code, f"DER decoding failed: {exc}") from None
    if rest:
        raise PkiError(code, "trailing bytes after DER value")
    return value


class Pbkdf2:
    """PBKDF2 parameters (RFC 8018 A.2), charged to `budget` as soon as they are read.

    `key_bytes` is what the key's use needs, for when the parameters leave the length out.
    """

    def __init__(self, kdf, prefix: str, budget: Budget, key_bytes: int | None):
        if str(kdf["algorithm"]) != PBKDF2:
            raise PkiError(f"{prefix}_unsupported", f"key derivation {kdf['algorithm']}")
        if not kdf["parameters"].isValue:
            raise PkiError(f"{prefix}_unreadable", "PBKDF2 without parameters")
        k = decode(bytes(kdf["parameters"]), rfc8018.PBKDF2_params(), f"{prefix}_unreadable")
        if k["salt"].getName() != "specified":
            raise PkiError(f"{prefix}_unsupported", "PBKDF2 salt from another source")
        self.salt = bytes(k["salt"]["specified"])
        self.iterations = int(k["iterationCount"])
        self.key_bytes = int(k["keyLength"]) if k["keyLength"].isValue else key_bytes
        budget.charge(self.iterations, len(self.salt), self.key_bytes or 0)
        prf_oid = str(k["prf"]["algorithm"])
        if prf_oid not in PRFS:
            raise PkiError(f"{prefix}_unsupported", f"PBKDF2 PRF {prf_oid}")
        self.prf = PRFS[prf_oid]

    def derive(self, password: bytes) -> bytes:
        return hashlib.pbkdf2_hmac(self.prf, password, self.salt, self.iterations, self.key_bytes)


class Pbes2:
    """The parsed parameters of a PBES2 AlgorithmIdentifier: everything needed to derive and decrypt."""

    def __init__(self, params, prefix: str, budget: Budget, ciphers: dict = CIPHERS):
        self.prefix = prefix
        if params is None or not params.isValue:
            raise PkiError(f"{prefix}_unreadable", "PBES2 without parameters")
        p = decode(bytes(params), rfc8018.PBES2_params(), f"{prefix}_unreadable")
        scheme = p["encryptionScheme"]
        self.cipher_oid = str(scheme["algorithm"])
        self.cipher, key_bytes = ciphers.get(self.cipher_oid, (None, None))
        self.kdf = Pbkdf2(p["keyDerivationFunc"], prefix, budget, key_bytes)
        if self.cipher is None:
            raise PkiError(f"{prefix}_unsupported", f"PBES2 encryption scheme {self.cipher_oid}")
        if self.kdf.key_bytes != key_bytes:
            raise PkiError(f"{prefix}_unreadable", f"PBKDF2 key length {self.kdf.key_bytes} does not fit the cipher")
        if not scheme["parameters"].isValue:
            raise PkiError(f"{prefix}_unreadable", "PBES2 cipher without an IV")
        self.iv = bytes(decode(bytes(scheme["parameters"]), univ.OctetString(), f"{prefix}_unreadable"))
        if len(self.iv) != self.cipher.block_size // 8:
            raise PkiError(f"{prefix}_unreadable", f"IV of {len(self.iv)} bytes")

    def decrypt(self, password: bytes, ciphertext: bytes) -> bytes:
        return cbc_decrypt(self.cipher(self.kdf.derive(password)), self.iv, ciphertext, self.prefix)


def cbc_decrypt(algorithm, iv: bytes, ciphertext: bytes, prefix: str) -> bytes:
    block_bytes = algorithm.block_size // 8
    if not ciphertext or len(ciphertext) % block_bytes:
        raise PkiError(f"{prefix}_unreadable", "ciphertext is not a whole number of blocks")
    decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
    return unpad(decryptor.update(ciphertext) + decryptor.finalize(), algorithm.block_size, prefix)


def unpad(padded: bytes, block_bits: int, prefix: str) -> bytes:
    unpadder = padding.PKCS7(block_bits).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        # CBC with a wrong key almost always leaves invalid padding.
        raise PkiError(f"{prefix}_password_incorrect") from None


def cbc_encrypt(algorithm, iv: bytes, plaintext: bytes) -> bytes:
    padder = padding.PKCS7(algorithm.block_size).padder()
    encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
    return encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()
