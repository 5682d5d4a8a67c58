"""Certificate files as customers bring them, told apart by content: NPKI zip, signCert.der/PEM, signPri.key, .p12,
and the CA certificates that may come with them (the chain up to the issuing bank's root).

read_bundle() only recognises and sorts the files; open_bundle() decrypts the key with the password
and checks it against the certificate; describe() reports on both for the support desk.
"""

import binascii
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from pyasn1_alt_modules import rfc5208

from . import npki, pkcs12
from .errors import PkiError
from .serials import serial_hex

# Certificate files are a few KB; these bound what a hostile upload costs us.
MAX_BUNDLE_BYTES = 1024 * 1024
MAX_ZIP_ENTRIES = 20
MAX_ZIP_UNCOMPRESSED = 1024 * 1024

# Inside an NPKI zip only the signing pair counts: the folders also hold kmCert.der/kmPri.key (the
# key-management pair) and sometimes other certificates' folders, which are not what was meant.
# Other certificate files count only if they are CA certificates: the chain, when a bank ships it.
_ZIP_CERT_NAME = "signcert.der"
_ZIP_KEY_NAME = "signpri.key"
_ZIP_CA_SUFFIXES = (".der", ".cer", ".crt", ".pem")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n")
MAX_PEM_BLOCKS = 10  # a certificate, its key and a chain; a file with more is not one of ours

# Errors describe() reports as findings rather than raises: the files are fine, the password or
# the pairing is not (or we cannot check it).
_REPORTED = {"key_password_incorrect", "p12_password_incorrect", "key_unsupported", "p12_unsupported"}


@dataclass
class Bundle:
    """What read_bundle() recognised: a certificate and an encrypted signPri.key, or a .p12;
    and any CA certificates that came with them."""
    certificate: x509.Certificate | None = None
    encrypted_key: bytes | None = None
    p12: bytes | None = None
    names: list[str] = field(default_factory=list)
    ca_certs: list[x509.Certificate] = field(default_factory=list)


@dataclass
class Opened:
    certificate: x509.Certificate
    private_key: object
    random_num: bytes | None
    scheme: str  # a key of npki.SCHEMES, or "pkcs12"
    extra_certs: list = field(default_factory=list)
    encrypted_key: bytes | None = None  # the signPri.key as it came, for an NPKI folder


def _certificate(der: bytes) -> x509.Certificate | None:
    """The certificate in `der`, or None; touches the fields describe() shows so that it fails here."""
    try:
        cert = x509.load_der_x509_certificate(der)
        _touched = (cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                    cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number)
    except Exception:  # cryptography parses lazily and raises more than ValueError on odd input
        return None
    return cert


def is_ca(cert: x509.Certificate) -> bool:
    """Whether the certificate's basicConstraints say CA."""
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except Exception:  # no basicConstraints, or extensions that do not parse
        return False


def _zip_ca_certificates(entry: str, data: bytes) -> list[x509.Certificate]:
    """The CA certificates in a zip entry (DER or PEM); anything else there is ignored."""
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            certs = [value for kind, value in _classify_pem(entry, data) if kind == "certificate"]
        except PkiError:
            return []
    else:
        certs = [_certificate(data)]
    return [cert for cert in certs if cert is not None and is_ca(cert)]


def _is_encrypted_key(der: bytes) -> bool:
    try:
        npki._decode(der, rfc5208.EncryptedPrivateKeyInfo(), "key_unreadable")
    except PkiError:
        return False
    return True


def _is_pkcs12(der: bytes) -> bool:
    try:
        pkcs12.parse_pfx(der)
    except PkiError as exc:
        return exc.code == "p12_unsupported"  # a PFX all the same; opening it says why it cannot be used
    return True


def _classify_der(der: bytes) -> tuple[str, object] | None:
    cert = _certificate(der)
    if cert is not None:
        return "certificate", cert
    if _is_encrypted_key(der):
        return "key", der
    if _is_pkcs12(der):
        return "p12", der
    return None


def _pem_blocks(content: bytes) -> list[tuple[bytes, bytes]] | None:
    """(label, base64 body) of each PEM block; None when a block is not closed by its own END
    line before the next marker, or there are too many. One pass, no backtracking: a file of
    thousands of BEGIN lines costs one read of it."""
    blocks, at = [], 0
    while (begin := _PEM_BEGIN.search(content, at)) is not None:
        end = content.find(b"-----END ", begin.end())
        closing = b"-----END " + begin.group(1) + b"-----"
        if (end < 0 or len(blocks) == MAX_PEM_BLOCKS or b"-----" in content[begin.end():end]
                or not content.startswith(closing, end)):
            return None
        blocks.append((begin.group(1), content[begin.end():end]))
        at = end + len(closing)
    return blocks


def _classify_pem(name: str, content: bytes) -> list[tuple[str, object]]:
    blocks = _pem_blocks(content)
    if not blocks:
        raise PkiError("bundle_unknown_file", name)
    found = []
    for label, body in blocks:
        try:
            der = binascii.a2b_base64(body)
        except (binascii.Error, ValueError):
            raise PkiError("bundle_unknown_file", name) from None
        if label == b"CERTIFICATE" and (cert := _certificate(der)) is not None:
            found.append(("certificate", cert))
        elif label == b"ENCRYPTED PRIVATE KEY" and _is_encrypted_key(der):
            found.append(("key", der))
        else:
            # Includes unencrypted PRIVATE KEY blocks: the center takes keys only under a password.
            raise PkiError("bundle_unknown_file", name)
    return found


def _zip_parts(entry: str) -> list[str]:
    """Path components of a zip entry name, refusing absolute paths and "..": we never extract, but
    a name like that means the zip was made to attack something."""
    if "\x00" in entry or entry.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", entry):
        raise PkiError("bundle_zip_refused", f"unsafe entry name {entry!r}")
    # Old Windows tools write backslashes as separators.
    parts = re.split(r"[/\\]", entry)
    if ".." in parts:
        raise PkiError("bundle_zip_refused", f"unsafe entry name {entry!r}")
    return parts


def _zip_members(name: str, content: bytes) -> list[tuple[str, object]]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise PkiError("bundle_zip_refused", f"{len(infos)} entries")
            # Declared sizes first (a bomb is refused before inflating anything); zipfile then
            # never yields more than the declared size, and a lie fails its CRC check.
            if sum(info.file_size for info in infos) > MAX_ZIP_UNCOMPRESSED:
                raise PkiError("bundle_zip_refused", "uncompressed size over the limit")
            found, chain = [], []
            for info in infos:
                parts = _zip_parts(info.filename)
                entry = parts[-1].lower()
                if info.is_dir() or not (entry in (_ZIP_CERT_NAME, _ZIP_KEY_NAME)
                                         or entry.endswith(_ZIP_CA_SUFFIXES)):
                    continue
                if info.flag_bits & 0x1:
                    raise PkiError("bundle_zip_refused", "encrypted entry")
                with zf.open(info) as member:
                    data = member.read(MAX_ZIP_UNCOMPRESSED + 1)
                if len(data) > MAX_ZIP_UNCOMPRESSED:
                    raise PkiError("bundle_zip_refused", "uncompressed size over the limit")
                if entry == _ZIP_CERT_NAME:
                    cert = _certificate(data)
                    if cert is None:
                        raise PkiError("bundle_unknown_file", f"{name}:{info.filename}")
                    found.append(("certificate", cert))
                elif entry != _ZIP_KEY_NAME:
                    chain += [("certificate", cert) for cert in _zip_ca_certificates(info.filename, data)]
                else:
                    if not _is_encrypted_key(data):
                        raise PkiError("bundle_unknown_file", f"{name}:{info.filename}")
                    found.append(("key", data))
    except PkiError:
        raise
    except Exception as exc:  # zipfile, zlib, bz2 and lzma raise many types on damaged archives
        raise PkiError("bundle_zip_unreadable", f"{name}: {type(exc).__name__}: {exc}") from None
    if not found:
        raise PkiError("bundle_unknown_file", name)
    return found + chain


def read_bundle(uploads: list[tuple[str, bytes]]) -> Bundle:
    """Sort (filename, content) pairs into a Bundle by what the bytes are; names are only for messages."""
    if sum(len(content) for _, content in uploads) > MAX_BUNDLE_BYTES:
        raise PkiError("bundle_too_large")
    certs, keys, p12s, names = [], [], [], []
    for name, content in uploads:
        if content.startswith(_ZIP_MAGIC):
            found, label = _zip_members(name, content), "NPKI zip"
        elif content.lstrip().startswith(b"-----BEGIN") or b"\n-----BEGIN " in content[:4096]:
            found, label = _classify_pem(name, content), None
        else:
            kind = _classify_der(content)
            if kind is None:
                raise PkiError("bundle_unknown_file", name)
            found, label = [kind], None
        for kind, value in found:
            {"certificate": certs, "key": keys, "p12": p12s}[kind].append(value)
            if label is None and kind == "certificate" and is_ca(value):
                names.append("CA certificate")
            elif label is None:
                names.append({"certificate": "signCert.der", "key": "signPri.key", "p12": "cert.p12"}[kind])
        if label is not None:
            names.append(label)
    # CA certificates beside the customer's own (or a .p12) are its chain; a CA certificate
    # alone is what was brought (and opening it then says the key is not its).
    chain = [cert for cert in certs if is_ca(cert)]
    if len(chain) < len(certs) or p12s:
        certs = [cert for cert in certs if not is_ca(cert)]
    else:
        chain = []
    # A .p12 holds both a certificate and a key, so it pairs with nothing else.
    if len(certs) + len(p12s) > 1 or len(keys) + len(p12s) > 1:
        raise PkiError("bundle_ambiguous")
    if not (certs or keys or p12s):
        raise PkiError("bundle_empty")
    return Bundle(certs[0] if certs else None, keys[0] if keys else None, p12s[0] if p12s else None, names,
                  chain)


def _decrypt(bundle: Bundle, password: str):
    """(key, certificate or None, extra certificates, randomNum, scheme), without the match check."""
    if bundle.p12 is not None:
        key, cert, extra = pkcs12.read_pkcs12(bundle.p12, password)
        return key, cert, extra, None, "pkcs12"
    if bundle.encrypted_key is None:
        raise PkiError("bundle_no_key")
    scheme = npki.key_scheme(bundle.encrypted_key)
    key, random_num = npki.read_private_key(bundle.encrypted_key, password)
    return key, bundle.certificate, list(bundle.ca_certs), random_num, scheme


def _ciphertext(epki_der: bytes) -> bytes:
    return bytes(npki._decode(epki_der, rfc5208.EncryptedPrivateKeyInfo(), "key_unreadable")["encryptedData"])


def guess_targets(bundle: Bundle) -> list[bytes]:
    """What a password guess on these files is tested against, as SHA-256 digests: the
    encrypted key (its ciphertext, which no one can change without the password), and for a
    .p12 also its MAC. However the rest of the upload is varied — another certificate beside
    the key, another zip, a MAC stripped — the same key gives the same digests. Derives
    nothing."""
    found = []
    if bundle.encrypted_key is not None:
        found.append(_ciphertext(bundle.encrypted_key))
    if bundle.p12 is not None:
        found += pkcs12.pkcs12_guess_material(bundle.p12)
    return [hashlib.sha256(material).digest() for material in found]


def public_key_info(public_key) -> bytes:
    """The key's SubjectPublicKeyInfo, DER: what two certificates for one key share."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(key, cert: x509.Certificate) -> bool:
    """Whether the private key belongs to the certificate's public key."""
    try:
        cert_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise PkiError("cert_key_unsupported") from None
    return public_key_info(key.public_key()) == public_key_info(cert_key)


def open_bundle(bundle: Bundle, password: str) -> Opened:
    """Decrypt the bundle's key and check it is the certificate's; the files live only in memory."""
    if bundle.p12 is None and bundle.certificate is None:
        raise PkiError("bundle_no_certificate")
    key, cert, extra, random_num, scheme = _decrypt(bundle, password)
    if not key_matches(key, cert):
        raise PkiError("key_mismatch")
    return Opened(cert, key, random_num, scheme, extra,
                  None if bundle.p12 is not None else bundle.encrypted_key)


def describe(bundle: Bundle, password: str | None) -> dict:
    """What the files are, for `files inspect`: JSON-ready values, None where unknown.

    A wrong password or a key that does not match is a finding, reported in the result (with its
    error code in "problem"); PkiError is raised only when the files themselves are unreadable.
    "ok" is True when there is a certificate and a key, the password opens it and it matches.
    """
    out = dict(recognised=list(bundle.names), subject=None, issuer=None, serial=None, not_before=None,
               not_after=None, key_scheme=None, password_opens=None, key_matches=None,
               random_num_present=None, random_num=None, problem=None, ok=False)
    cert = bundle.certificate
    if bundle.p12 is not None:
        out["key_scheme"] = "pkcs12"
    elif bundle.encrypted_key is not None:
        try:
            out["key_scheme"] = npki.key_scheme(bundle.encrypted_key)
        except PkiError as exc:
            if exc.code not in _REPORTED:
                raise
            out["problem"] = exc.code
    if password is not None and out["problem"] is None and (bundle.p12 or bundle.encrypted_key):
        try:
            key, cert, _, random_num, _ = _decrypt(bundle, password)
        except PkiError as exc:
            if exc.code not in _REPORTED:
                raise
            out["problem"] = exc.code
            out["password_opens"] = False if exc.code.endswith("_password_incorrect") else None
        else:
            out["password_opens"] = True
            out["random_num_present"] = random_num is not None
            out["random_num"] = random_num.hex() if random_num is not None else None
            if cert is not None:
                try:
                    out["key_matches"] = key_matches(key, cert)
                except PkiError as exc:  # e.g. a KCDSA certificate: the key cannot be compared
                    out["problem"] = exc.code
                else:
                    if not out["key_matches"]:
                        out["problem"] = "key_mismatch"
            else:
                out["problem"] = "bundle_no_certificate"
    if cert is not None:
        out.update(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                   serial=serial_hex(cert.serial_number),
                   not_before=cert.not_valid_before_utc.isoformat(),
                   not_after=cert.not_valid_after_utc.isoformat())
    out["ok"] = out["password_opens"] is True and out["key_matches"] is True
    return out
