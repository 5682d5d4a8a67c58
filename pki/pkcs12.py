"""Reading .p12/.pfx files (RFC 7292) ourselves, so that an upload cannot choose what opening it costs.

OpenSSL never sees an uploaded .p12: it runs whatever key derivation the file names, for as long
as the file says. Here the structure is walked first and every derivation it asks for is priced
(kdf.Budget) before the first one runs: the MAC (RFC 7292 appendix B, or PBMAC1 of RFC 9579) and
each encrypted content and shrouded key bag (the PBEs of RFC 7292 appendix C, or PBES2). A bag
found inside encrypted contents is priced against what is left of the same budget before its own.
"""

import hashlib
import hmac
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import Cipher
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5652, rfc7292, rfc9579

from . import rc2
from .errors import PkiError
from .kdf import Budget, pkcs12_kdf
from .pbes2 import PBES2, PRFS, Pbes2, Pbkdf2, cbc_decrypt, decode, unpad

_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_KEY_BAG = "1.2.840.113549.1.12.10.1.1"
_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
_PBMAC1 = "1.2.840.113549.1.5.14"
# MAC digests the PKCS#12 KDF (RFC 7292 appendix B) is defined for here: OID -> hashlib name.
# MD5 and others are refused: no current writer uses them.
_MAC_HASHES = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
# The PBEs of RFC 7292 appendix C by OID: (cipher, key bytes, IV bytes); all derive with SHA-1.
_PKCS12_PBES = {
    "1.2.840.113549.1.12.1.1": ("rc4", 16, 0),
    "1.2.840.113549.1.12.1.2": ("rc4", 5, 0),
    "1.2.840.113549.1.12.1.3": ("3des", 24, 8),
    "1.2.840.113549.1.12.1.4": ("3des", 16, 8),
    "1.2.840.113549.1.12.1.5": ("rc2", 16, 8),
    "1.2.840.113549.1.12.1.6": ("rc2", 5, 8),
}


def parse_pfx(data: bytes):
    """The PFX structure (version 3, authSafe ContentInfo) of a .p12, or PkiError("p12_unreadable")."""
    pfx = decode(data, rfc7292.PFX(), "p12_unreadable")
    if int(pfx["version"]) != 3:
        raise PkiError("p12_unreadable", f"PFX version {int(pfx['version'])}")
    if str(pfx["authSafe"]["contentType"]) != _DATA:
        # Public-key integrity mode (signedData): no password to check, nobody issues these.
        raise PkiError("p12_unsupported", f"authSafe {pfx['authSafe']['contentType']}")
    return pfx


@dataclass
class _Locked:
    """Something only the password opens: encrypted SafeContents, or a shrouded key bag."""
    algorithm: object  # its AlgorithmIdentifier
    ciphertext: bytes
    safe_contents: bool


def _safe_contents(der: bytes):
    return decode(der, rfc7292.SafeContents(), "p12_unreadable")


def _shrouded(bag) -> _Locked:
    epki = decode(bytes(bag["bagValue"]), rfc7292.EncryptedPrivateKeyInfo(), "p12_unreadable")
    return _Locked(epki["encryptionAlgorithm"], bytes(epki["encryptedData"]), False)


def _walk(pfx) -> tuple[bytes, list[_Locked], list]:
    """(the MAC'd authSafe content, what is locked, the bags in the clear), deriving nothing."""
    content = bytes(decode(bytes(pfx["authSafe"]["content"]), univ.OctetString(), "p12_unreadable"))
    locked, clear = [], []
    for info in decode(content, rfc7292.AuthenticatedSafe(), "p12_unreadable"):
        kind = str(info["contentType"])
        if kind == _ENCRYPTED_DATA:
            encrypted = decode(bytes(info["content"]), rfc5652.EncryptedData(), "p12_unreadable")
            inner = encrypted["encryptedContentInfo"]
            if not inner["encryptedContent"].isValue:
                raise PkiError("p12_unreadable", "encrypted contents without ciphertext")
            locked.append(_Locked(inner["contentEncryptionAlgorithm"], bytes(inner["encryptedContent"]), True))
        elif kind == _DATA:
            der = bytes(decode(bytes(info["content"]), univ.OctetString(), "p12_unreadable"))
            for bag in _safe_contents(der):
                (locked.append(_shrouded(bag)) if str(bag["bagId"]) == _SHROUDED_KEY_BAG else clear.append(bag))
        else:
            raise PkiError("p12_unsupported", f"authSafe content {kind}")
    return content, locked, clear


def pkcs12_guess_material(data: bytes) -> list[bytes]:
    """The bytes a password guess on a .p12 is tested against and that no one can change without
    the password: the MAC, and the ciphertext of each encrypted content and of each shrouded key
    bag in the clear (a bag inside encrypted contents is covered by those contents)."""
    pfx = parse_pfx(data)
    _, locked, _ = _walk(pfx)
    found = [bytes(pfx["macData"]["mac"]["digest"])] if pfx["macData"].isValue else []
    return found + [item.ciphertext for item in locked]


class _Mac:
    """The file's MAC, priced when read; verify() derives."""

    def __init__(self, mac_data, budget: Budget, empty_password: bool):
        algorithm = mac_data["mac"]["digestAlgorithm"]
        self.expected = bytes(mac_data["mac"]["digest"])
        if str(algorithm["algorithm"]) == _PBMAC1:
            # RFC 9579: PBKDF2 has its own salt and count; macSalt and iterations are ignored.
            if not algorithm["parameters"].isValue:
                raise PkiError("p12_unreadable", "PBMAC1 without parameters")
            params = decode(bytes(algorithm["parameters"]), rfc9579.PBMAC1_params(), "p12_unreadable")
            self.pbkdf2 = Pbkdf2(params["keyDerivationFunc"], "p12", budget, None)
            if self.pbkdf2.key_bytes is None:
                raise PkiError("p12_unreadable", "PBMAC1 without a key length")
            self.hash_name = PRFS.get(str(params["messageAuthScheme"]["algorithm"]))
            if self.hash_name is None:
                raise PkiError("p12_unsupported", f"PBMAC1 MAC {params['messageAuthScheme']['algorithm']}")
            return
        self.pbkdf2 = None
        self.salt, self.iterations = bytes(mac_data["macSalt"]), int(mac_data["iterations"])
        # An empty password is also tried as no bytes at all, as OpenSSL does: writers disagree on it.
        self.tries = 2 if empty_password else 1
        budget.charge(self.iterations, len(self.salt), 0, times=self.tries)
        self.hash_name = _MAC_HASHES.get(str(algorithm["algorithm"]))
        if self.hash_name is None:
            raise PkiError("p12_unsupported", f"MAC digest {algorithm['algorithm']}")

    def verify(self, password: str, bmp: bytes, content: bytes) -> bytes | None:
        """The password bytes the MAC proves right for the PKCS#12 PBEs, or None when it is wrong."""
        if self.pbkdf2 is not None:
            key = self.pbkdf2.derive(password.encode("utf-8"))
            return bmp if self._matches(key, content) else None
        size = hashlib.new(self.hash_name).digest_size
        for secret in (bmp, b"")[:self.tries]:
            key = pkcs12_kdf(self.hash_name, secret, self.salt, self.iterations, 3, size)
            if self._matches(key, content):
                return secret
        return None

    def _matches(self, key: bytes, content: bytes) -> bool:
        return hmac.compare_digest(hmac.new(key, content, self.hash_name).digest(), self.expected)


class _Decryption:
    """How one locked item is decrypted, priced when read; decrypt() derives."""

    def __init__(self, algorithm, budget: Budget):
        oid = str(algorithm["algorithm"])
        if oid == PBES2:
            self.pbes2 = Pbes2(algorithm["parameters"], "p12", budget)
            return
        if oid not in _PKCS12_PBES:
            raise PkiError("p12_unsupported", f"encryption {oid}")
        self.pbes2 = None
        self.cipher, self.key_bytes, self.iv_bytes = _PKCS12_PBES[oid]
        if not algorithm["parameters"].isValue:
            raise PkiError("p12_unreadable", "PBE without parameters")
        params = decode(bytes(algorithm["parameters"]), rfc7292.Pkcs_12PbeParams(), "p12_unreadable")
        self.salt, self.iterations = bytes(params["salt"]), int(params["iterations"])
        budget.charge(self.iterations, len(self.salt), self.key_bytes, times=2 if self.iv_bytes else 1)

    def decrypt(self, password: str, bmp: bytes, ciphertext: bytes) -> bytes:
        if self.pbes2 is not None:  # PBES2 takes the password as UTF-8, not as a BMPString
            return self.pbes2.decrypt(password.encode("utf-8"), ciphertext)
        key = pkcs12_kdf("sha1", bmp, self.salt, self.iterations, 1, self.key_bytes)
        if self.cipher == "rc4":
            decryptor = Cipher(ARC4(key), None).decryptor()
            return decryptor.update(ciphertext) + decryptor.finalize()
        iv = pkcs12_kdf("sha1", bmp, self.salt, self.iterations, 2, self.iv_bytes)
        if self.cipher == "3des":
            return cbc_decrypt(TripleDES(key), iv, ciphertext, "p12")
        if not ciphertext or len(ciphertext) % 8:
            raise PkiError("p12_unreadable", "ciphertext is not a whole number of blocks")
        return unpad(rc2.cbc_decrypt(key, 8 * self.key_bytes, iv, ciphertext), 64, "p12")


def _priced(pfx, password: str, bmp: bytes):
    """Price every derivation in sight, then check the MAC: (the password bytes the PKCS#12 PBEs
    take, the locked items with their decryptions, the bags in the clear, the budget left)."""
    content, locked, clear = _walk(pfx)
    budget = Budget("p12_unreadable")
    mac = _Mac(pfx["macData"], budget, not password) if pfx["macData"].isValue else None
    priced = [(_Decryption(item.algorithm, budget), item) for item in locked]
    if mac is not None:
        bmp = mac.verify(password, bmp, content)
        if bmp is None:
            raise PkiError("p12_password_incorrect")
    return bmp, priced, clear, budget


def _unlock(password: str, bmp: bytes, priced, clear, budget: Budget) -> tuple[list[bytes], list[bytes]]:
    """(PKCS#8 keys, certificate DERs): the locked items decrypted, bags inside them priced first."""
    keys, certs, clear = [], [], list(clear)
    for decryption, item in priced:
        plain = decryption.decrypt(password, bmp, item.ciphertext)
        if not item.safe_contents:
            keys.append(plain)
            continue
        for bag in _safe_contents(plain):
            if str(bag["bagId"]) == _SHROUDED_KEY_BAG:
                inner = _shrouded(bag)
                keys.append(_Decryption(inner.algorithm, budget).decrypt(password, bmp, inner.ciphertext))
            else:
                clear.append(bag)
    for bag in clear:
        kind = str(bag["bagId"])
        if kind == _KEY_BAG:
            keys.append(bytes(bag["bagValue"]))
        elif kind == _CERT_BAG:
            cert_bag = decode(bytes(bag["bagValue"]), rfc7292.CertBag(), "p12_unreadable")
            if str(cert_bag["certId"]) == _X509_CERTIFICATE:
                certs.append(bytes(decode(bytes(cert_bag["certValue"]), univ.OctetString(), "p12_unreadable")))
    return keys, certs


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def read_pkcs12(data: bytes, password: str):
    """(private key, certificate, extra certificates) from a .p12/.pfx, modern or legacy (3DES, RC2, RC4).

    A .p12 carries no randomNum; callers that need one ask for the NPKI files.
    """
    pfx = parse_pfx(data)
    try:
        bmp = password.encode("utf-16-be") + b"\0\0"  # a BMPString with its terminator
    except UnicodeEncodeError:  # lone surrogates cannot be a BMPString
        raise PkiError("p12_password_incorrect", "password not encodable") from None
    bmp, priced, clear, budget = _priced(pfx, password, bmp)
    try:
        keys, ders = _unlock(password, bmp, priced, clear, budget)
        if not keys:
            raise PkiError("p12_unreadable", "no private key")
        key = serialization.load_der_private_key(keys[0], password=None)
        certs = [x509.load_der_x509_certificate(der) for der in ders]
        mine = [c for c in certs if _spki(c.public_key()) == _spki(key.public_key())]
    except (ValueError, UnsupportedAlgorithm) as exc:
        code = getattr(exc, "code", "p12_unreadable")
        if code not in ("p12_unreadable", "p12_password_incorrect"):
            raise  # kdf_over_cap, p12_unsupported
        # Without a MAC a wrong password shows only as noise where keys and certificates should be.
        raise PkiError("p12_unreadable" if pfx["macData"].isValue else "p12_password_incorrect",
                       getattr(exc, "detail", None) or str(exc)) from None
    if not mine:
        raise PkiError("p12_unreadable", "no certificate for the key")
    return key, mine[0], [c for c in certs if c is not mine[0]]
