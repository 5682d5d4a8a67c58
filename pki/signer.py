"""Who signs for the CA: a Signer holds one CA key and makes RSASSA-PKCS1-v1_5 SHA-256
signatures with it. Two backends: an encrypted PKCS#8 file (the embedded default) and a PKCS#11
token (an HSM; SoftHSM2 in tests), where the key is generated, kept and used without ever
leaving it.

`cryptography` builds certificates, CRLs and OCSP responses but signs only with keys it holds.
So every structure is built once with a throwaway key of the same algorithm, which fixes the
to-be-signed bytes; the Signer signs exactly those bytes and the signed structure is assembled
here in DER (RFC 5280 4.1 and 5.1, RFC 6960 4.2.1), then parsed back and its signature checked
against the signer's public key. The file backend may take cryptography's own path instead: its
signatures are deterministic, so the bytes are the same.
"""

import datetime as dt
import functools
import os
import threading

import pkcs11
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from .errors import PkiError

KEY_BITS = 2048

# AlgorithmIdentifier sha256WithRSAEncryption with NULL parameters (RFC 4055 5), as
# cryptography writes it into the TBS of everything signed with an RSA key and SHA-256.
_SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_ID_PKIX_OCSP_BASIC = bytes.fromhex("06092b0601050507300101")


@functools.cache
def throwaway_key() -> rsa.RSAPrivateKey:
    """The key that signs what is only built to be linted or re-signed: one per process."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


@functools.cache
def _throwaway_certificate() -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "throwaway")])
    moment = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(throwaway_key().public_key()).serial_number(1)
            .not_valid_before(moment).not_valid_after(moment + dt.timedelta(days=1))
            .sign(throwaway_key(), hashes.SHA256()))


def _key_hash(public_key) -> bytes:
    # RFC 6960 KeyHash: SHA-1 of the subjectPublicKey BIT STRING's value, which is RFC 5280's
    # key identifier method 1.
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest


def der_tlv(tag: int, content: bytes) -> bytes:
    """One DER tag-length-value with a definite length."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _signed(tbs: bytes, signature: bytes) -> bytes:
    """SEQUENCE { tbs, sha256WithRSAEncryption, BIT STRING signature }: the outer shape of a
    Certificate, a CertificateList and a BasicOCSPResponse's first three fields."""
    return tbs + _SHA256_WITH_RSA + der_tlv(0x03, b"\x00" + signature)


class Signer:
    """One CA key. Subclasses say where it lives."""

    backend = ""

    def public_key(self) -> rsa.RSAPublicKey:
        raise NotImplementedError

    def sign(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 over `data`."""
        raise NotImplementedError

    @property
    def key_id(self) -> str:
        """How an operator finds the key: a fingerprint of the public key, or the token's CKA_ID."""
        der = self.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(der)
        return "spki-sha256:" + digest.finalize()[:8].hex()

    def _checked(self, tbs: bytes, signature: bytes) -> bytes:
        try:
            self.public_key().verify(signature, tbs, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise PkiError("signer_failed", f"{self.backend} signature does not verify") from None
        return signature

    def certificate(self, tbs: bytes) -> x509.Certificate:
        """The certificate whose TBSCertificate is `tbs` (already linted), signed now."""
        return x509.load_der_x509_certificate(der_tlv(0x30, _signed(tbs, self._checked(tbs, self.sign(tbs)))))

    def crl(self, tbs: bytes) -> bytes:
        """The DER CRL whose TBSCertList is `tbs`, signed now."""
        return der_tlv(0x30, _signed(tbs, self._checked(tbs, self.sign(tbs))))

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return self.certificate(builder.sign(throwaway_key(), hashes.SHA256()).tbs_certificate_bytes)

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate) -> bytes:
        """The DER OCSPResponse (successful, basic) that `builder` describes, from `responder`
        (named by key hash, its certificate included)."""
        # cryptography will only name a responder whose key signs, so the template names the
        # throwaway key's certificate; its key hash is then swapped for the responder's (both
        # are 20-byte SHA-1 values inside ResponderID byKey) and the responder's certificate
        # goes where the throwaway one was.
        stand_in = _throwaway_certificate()
        template = (builder.responder_id(ocsp.OCSPResponderEncoding.HASH, stand_in)
                    .certificates([stand_in]).sign(throwaway_key(), hashes.SHA256()))
        stand_in_hash, responder_hash = (_key_hash(stand_in.public_key()),
                                         _key_hash(responder.public_key()))
        if template.tbs_response_bytes.count(stand_in_hash) != 1:
            raise PkiError("signer_failed", "the responder's key hash is not where expected")
        tbs = template.tbs_response_bytes.replace(stand_in_hash, responder_hash)
        basic = _signed(tbs, self._checked(tbs, self.sign(tbs)))
        basic += der_tlv(0xA0, der_tlv(0x30, responder.public_bytes(serialization.Encoding.DER)))
        response_bytes = der_tlv(0x30, _ID_PKIX_OCSP_BASIC + der_tlv(0x04, der_tlv(0x30, basic)))
        return der_tlv(0x30, b"\x0a\x01\x00" + der_tlv(0xA0, response_bytes))


class FileSigner(Signer):
    """A key held in memory, stored as encrypted PKCS#8."""

    backend = "file"

    def __init__(self, private_key: rsa.RSAPrivateKey):
        self._key = private_key

    @classmethod
    def generate(cls, bits: int = KEY_BITS) -> "FileSigner":
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def load(cls, pem: bytes, passphrase: bytes) -> "FileSigner":
        # cryptography reports a wrong passphrase and a damaged file with the same ValueError;
        # the PEM label tells which one the operator has to fix.
        if b"ENCRYPTED PRIVATE KEY" not in pem:
            raise PkiError("ca_key_unreadable", "not an encrypted PKCS#8 PEM key")
        try:
            return cls(serialization.load_pem_private_key(pem, passphrase))
        except (ValueError, TypeError) as exc:
            raise PkiError("ca_passphrase_incorrect", str(exc)) from None

    def encrypted_pem(self, passphrase: bytes) -> bytes:
        """PKCS#8 PEM encrypted with the best scheme cryptography offers."""
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(passphrase))

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    # cryptography's own path gives the same bytes without the throwaway signature (PKCS#1 v1.5
    # is deterministic); it matters for OCSP, signed once per request.
    def sign_certificate(self, builder):
        return builder.sign(self._key, hashes.SHA256())

    def sign_ocsp(self, builder, responder):
        return (builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
                .certificates([responder]).sign(self._key, hashes.SHA256())
                .public_bytes(serialization.Encoding.DER))


_initialised_in: dict[str, int] = {}     # PKCS#11 module -> the process that initialised it


def _library(module: str):
    library = pkcs11.lib(module)        # one per module and process, kept by python-pkcs11
    if _initialised_in.setdefault(module, os.getpid()) != os.getpid():
        library.reinitialize()          # a forked worker cannot use its parent's sessions
        _initialised_in[module] = os.getpid()
    return library


def as_signer(key) -> Signer:
    """A Signer for `key`: itself, or a FileSigner around an RSA private key held in memory."""
    if isinstance(key, Signer):
        return key
    if isinstance(key, rsa.RSAPrivateKey):
        return FileSigner(key)
    raise PkiError("signer_invalid", f"not a signer or an RSA private key: {type(key).__name__}")


class Pkcs11Token:
    """A PKCS#11 token found by its label and logged into with the user PIN. One session per
    process, opened on first use (again after a fork), used under a lock."""

    def __init__(self, module: str, token_label: str, pin: str):
        self.module, self.token_label, self._pin = module, token_label, pin
        self._lock = threading.Lock()
        self._session = None
        self._pid = None

    def session(self):
        if self._session is None or self._pid != os.getpid():
            try:
                token = _library(self.module).get_token(token_label=self.token_label)
                try:
                    self._session = token.open(rw=True, user_pin=self._pin)
                except pkcs11.UserAlreadyLoggedIn:
                    # PKCS#11 logs in the whole process: another session of ours already did.
                    self._session = token.open(rw=True)
            except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
                raise PkiError("signer_unavailable",
                               f"PKCS#11 token {self.token_label!r}: {exc!r}") from None
            self._pid = os.getpid()
        return self._session

    def generate(self, label: str) -> "Pkcs11Signer":
        """A new RSA key pair inside the token: sensitive, never extractable, found by CKA_ID."""
        key_id = os.urandom(16)
        with self._lock:
            self.session().generate_keypair(
                KeyType.RSA, KEY_BITS, id=key_id, label=label, store=True,
                private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                  Attribute.SIGN: True, Attribute.PRIVATE: True})
        return Pkcs11Signer(self, key_id)

    def find(self, key_id: bytes) -> "Pkcs11Signer":
        return Pkcs11Signer(self, key_id)


class Pkcs11Signer(Signer):
    """A key inside a PKCS#11 token; only its public half and its CKA_ID are known outside."""

    backend = "pkcs11"

    def __init__(self, token: Pkcs11Token, cka_id: bytes):
        self.token, self.cka_id = token, cka_id
        self._public = None
        self._private = None

    @property
    def key_id(self) -> str:
        return f"pkcs11:token={self.token.token_label};id={self.cka_id.hex()}"

    def _objects(self):
        if self._private is None or self.token._pid != os.getpid():
            session = self.token.session()
            try:
                private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=self.cka_id)
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=self.cka_id)
            except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
                raise PkiError("signer_unavailable",
                               f"no single key with CKA_ID {self.cka_id.hex()}: {exc!r}") from None
            numbers = rsa.RSAPublicNumbers(int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                                           int.from_bytes(public[Attribute.MODULUS], "big"))
            self._private, self._public = private, numbers.public_key()
        return self._private

    def public_key(self) -> rsa.RSAPublicKey:
        with self.token._lock:
            self._objects()
        return self._public

    def sign(self, data: bytes) -> bytes:
        with self.token._lock:
            try:
                return self._objects().sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
            except pkcs11.PKCS11Error as exc:
                raise PkiError("signer_failed", f"PKCS#11 signing: {exc!r}") from None
