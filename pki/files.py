"""Certificate and key file formats other than NPKI: PEM, DER and PKCS#12, written and read."""

import hashlib
import hmac

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat
from cryptography.hazmat.primitives.serialization.pkcs12 import (
    PBES,
    load_key_and_certificates,
    serialize_key_and_certificates,
)
from pyasn1.codec.der import decoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5652, rfc7292, rfc8018

from .errors import PkiError
from .npki import MAX_ITERATIONS, PBES2

# OWASP's current PBKDF2-HMAC-SHA256 minimum; DESIGN.md asks for at least this.
PKCS12_ITERATIONS = 600_000


def pkcs12(key, cert: x509.Certificate, chain: list[x509.Certificate], password: str,
           friendly_name: str) -> bytes:
    """A .p12 with key, certificate and chain: AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC.

    cryptography offers no way to set the MAC's iteration count, which stays at 2048.
    """
    if not password:
        raise PkiError("password_required")
    encryption = (PrivateFormat.PKCS12.encryption_builder()
                  .kdf_rounds(PKCS12_ITERATIONS)
                  .key_cert_algorithm(PBES.PBESv2SHA256AndAES256CBC)
                  .hmac_hash(hashes.SHA256())
                  .build(password.encode("utf-8")))
    return serialize_key_and_certificates(
        friendly_name.encode("utf-8"), key, cert, chain, encryption)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def chain_pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(cert_pem(c) for c in certs)


_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_PKCS12_PBE_ARC = "1.2.840.113549.1.12.1."
_PBKDF2 = "1.2.840.113549.1.5.12"
# MAC digests the PKCS#12 KDF (RFC 7292 appendix B) is defined for here: OID -> hashlib name.
_MAC_HASHES = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}


def _p12_decode(data: bytes, spec):
    try:
        value, rest = decoder.decode(data, asn1Spec=spec)
    except Exception as exc:  # pyasn1 raises assorted exception types on malformed input
        raise PkiError("p12_unreadable", f"DER decoding failed: {exc}") from None
    if rest:
        raise PkiError("p12_unreadable", "trailing bytes after DER value")
    return value


def parse_pfx(data: bytes):
    """The PFX structure (version 3, authSafe ContentInfo) of a .p12, or PkiError("p12_unreadable")."""
    pfx = _p12_decode(data, rfc7292.PFX())
    if int(pfx["version"]) != 3:
        raise PkiError("p12_unreadable", f"PFX version {int(pfx['version'])}")
    if str(pfx["authSafe"]["contentType"]) != _DATA:
        # Public-key integrity mode (signedData): no password to check, nobody issues these.
        raise PkiError("p12_unsupported", f"authSafe {pfx['authSafe']['contentType']}")
    return pfx


def _check_iterations(algorithm) -> None:
    """Refuse an encryption AlgorithmIdentifier whose iteration count is out of bounds."""
    oid = str(algorithm["algorithm"])
    if not algorithm["parameters"].isValue:
        return  # nothing to derive; cryptography refuses it
    params = bytes(algorithm["parameters"])
    if oid.startswith(_PKCS12_PBE_ARC):
        iterations = int(_p12_decode(params, rfc7292.Pkcs_12PbeParams())["iterations"])
    elif oid == PBES2:
        kdf = _p12_decode(params, rfc8018.PBES2_params())["keyDerivationFunc"]
        if str(kdf["algorithm"]) != _PBKDF2 or not kdf["parameters"].isValue:
            return
        iterations = int(_p12_decode(bytes(kdf["parameters"]), rfc8018.PBKDF2_params())["iterationCount"])
    else:
        return
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise PkiError("p12_unreadable", f"iteration count {iterations} out of range")


def _check_visible_iterations(auth_safe: bytes) -> None:
    """Bound the CPU a hostile .p12 can make the key derivations cost, before any of them runs.

    The file chooses every iteration count. Those of encrypted SafeContents and of shrouded key bags
    in plain SafeContents are visible before decryption; a bag nested inside encrypted contents is
    not, and is left to cryptography.
    """
    for info in _p12_decode(auth_safe, rfc7292.AuthenticatedSafe()):
        kind = str(info["contentType"])
        if kind == _ENCRYPTED_DATA:
            encrypted = _p12_decode(bytes(info["content"]), rfc5652.EncryptedData())
            _check_iterations(encrypted["encryptedContentInfo"]["contentEncryptionAlgorithm"])
        elif kind == _DATA:
            safe = _p12_decode(bytes(_p12_decode(bytes(info["content"]), univ.OctetString())),
                               rfc7292.SafeContents())
            for bag in safe:
                if str(bag["bagId"]) == _SHROUDED_KEY_BAG:
                    epki = _p12_decode(bytes(bag["bagValue"]), rfc7292.EncryptedPrivateKeyInfo())
                    _check_iterations(epki["encryptionAlgorithm"])


def _pkcs12_kdf(hash_name: str, password: bytes, salt: bytes, iterations: int, purpose: int, size: int) -> bytes:
    """The PKCS#12 key derivation (RFC 7292 appendix B.2); purpose 3 is the MAC key."""
    u, v = hashlib.new(hash_name).digest_size, hashlib.new(hash_name).block_size

    def fill(b: bytes) -> bytes:  # b repeated to the next whole number of v-byte blocks
        n = v * -(-len(b) // v)
        return (b * -(-n // len(b)))[:n] if b else b""

    d = bytes([purpose]) * v
    i = bytearray(fill(salt) + fill(password))
    out = b""
    while len(out) < size:
        a = hashlib.new(hash_name, d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = hashlib.new(hash_name, a).digest()
        out += a
        b = int.from_bytes((a * (-(-v // u)))[:v], "big")
        for j in range(0, len(i), v):
            block = (int.from_bytes(i[j:j + v], "big") + b + 1) % (1 << (8 * v))
            i[j:j + v] = block.to_bytes(v, "big")
    return out[:size]


def _mac_verdict(pfx, password: str) -> bool | None:
    """True/False when the MAC proves the password right/wrong; None when there is no MAC we can check.

    cryptography gives the same ValueError for a wrong password and a damaged file; the MAC, keyed
    by the password alone, tells the two apart.
    """
    if not pfx["macData"].isValue:
        return None
    mac_data = pfx["macData"]
    hash_name = _MAC_HASHES.get(str(mac_data["mac"]["digestAlgorithm"]["algorithm"]))
    if hash_name is None:
        return None  # e.g. PBMAC1 (RFC 9579): cryptography checks it
    iterations = int(mac_data["iterations"])
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise PkiError("p12_unreadable", f"MAC iteration count {iterations} out of range")
    content = bytes(_p12_decode(bytes(pfx["authSafe"]["content"]), univ.OctetString()))
    expected = bytes(mac_data["mac"]["digest"])
    # BMPString with its two-byte terminator; an empty password is also tried as no bytes at all,
    # as OpenSSL does, since writers disagree on it.
    candidates = [password.encode("utf-16-be") + b"\0\0"] + ([b""] if not password else [])
    for secret in candidates:
        key = _pkcs12_kdf(hash_name, secret, bytes(mac_data["macSalt"]), iterations, 3,
                          hashlib.new(hash_name).digest_size)
        if hmac.compare_digest(hmac.new(key, content, hash_name).digest(), expected):
            return True
    return False


def pkcs12_guess_material(data: bytes) -> list[bytes]:
    """The bytes a password guess on a .p12 is tested against and that no one can change without
    the password: the MAC, and the ciphertext of each shrouded key bag in plain SafeContents (a
    bag inside encrypted contents is covered by the MAC, or by the encrypted contents' own
    ciphertext when there is no MAC)."""
    pfx = parse_pfx(data)
    found = [bytes(pfx["macData"]["mac"]["digest"])] if pfx["macData"].isValue else []
    auth_safe = bytes(_p12_decode(bytes(pfx["authSafe"]["content"]), univ.OctetString()))
    for info in _p12_decode(auth_safe, rfc7292.AuthenticatedSafe()):
        kind = str(info["contentType"])
        if kind == _ENCRYPTED_DATA:
            encrypted = _p12_decode(bytes(info["content"]), rfc5652.EncryptedData())
            content = encrypted["encryptedContentInfo"]["encryptedContent"]
            if content.isValue:
                found.append(bytes(content))
        elif kind == _DATA:
            safe = _p12_decode(bytes(_p12_decode(bytes(info["content"]), univ.OctetString())),
                               rfc7292.SafeContents())
            for bag in safe:
                if str(bag["bagId"]) == _SHROUDED_KEY_BAG:
                    epki = _p12_decode(bytes(bag["bagValue"]), rfc7292.EncryptedPrivateKeyInfo())
                    found.append(bytes(epki["encryptedData"]))
    return found


def read_pkcs12(data: bytes, password: str):
    """(private key, certificate, extra certificates) from a .p12/.pfx, modern or legacy (3DES, RC2).

    A .p12 carries no randomNum; callers that need one ask for the NPKI files.
    """
    pfx = parse_pfx(data)
    try:
        password.encode("utf-16-be")
    except UnicodeEncodeError:  # lone surrogates cannot be a BMPString
        raise PkiError("p12_password_incorrect", "password not encodable") from None
    _check_visible_iterations(bytes(_p12_decode(bytes(pfx["authSafe"]["content"]), univ.OctetString())))
    verdict = _mac_verdict(pfx, password)
    if verdict is False:
        raise PkiError("p12_password_incorrect")
    try:
        key, cert, extra = load_key_and_certificates(data, password.encode("utf-8"))
    except UnsupportedAlgorithm as exc:
        raise PkiError("p12_unsupported", str(exc)) from None
    except (ValueError, TypeError) as exc:
        if verdict is None:
            raise PkiError("p12_password_incorrect", str(exc)) from None
        # The MAC proved the password; what fails is the content (or a cipher this OpenSSL lacks).
        raise PkiError("p12_unreadable", str(exc)) from None
    if key is None or cert is None:
        raise PkiError("p12_unreadable", "no private key" if key is None else "no certificate")
    return key, cert, list(extra)
