"""NPKI files (signCert.der + signPri.key in the NPKI folder layout), the KISA VID and npkiIdentifyData.

signPri.key comes in three families (DESIGN.md, Files): seedCBCWithSHA1 (PBKDF1 + SEED), PBES2 with
PBKDF2 + seedCBC, and PBES2 with PBKDF2 + AES-CBC. All are read; all can be written (SCHEMES).
"""

import hashlib
import io
import os
import zipfile

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import SEED
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import char, namedtype, tag, univ
from pyasn1_alt_modules import rfc5208, rfc5280, rfc8018

from .errors import PkiError
from .kdf import MAX_ITERATIONS, Budget
from .pbes2 import CIPHERS, PBES2, PBKDF2, PRFS, SEED_CBC, Pbes2, cbc_decrypt, cbc_encrypt
from .pbes2 import decode as _decode
from .profile import IDENTIFY_DATA_OID, KST

RANDOM_NUM_OID = "1.2.410.200004.10.1.1.3"
SEED_CBC_WITH_SHA1 = "1.2.410.200004.1.15"
_VID_USER_INFO_OID = "1.2.410.200004.10.1.1.1"
_SHA256_OID = "2.16.840.1.101.3.4.2.1"
_HASHES = {_SHA256_OID: hashlib.sha256}


class _SeedParams(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("salt", univ.OctetString()),
        namedtype.NamedType("iterations", univ.Integer()),
    )


class _VidInput(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("idn", char.PrintableString()),
        namedtype.NamedType("randomNum", univ.BitString()),
    )


class _Vid(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("hashAlg", rfc5280.AlgorithmIdentifier()),
        namedtype.NamedType("virtualID", univ.OctetString().subtype(
            explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 0))),
    )


class _UserInfo(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("idType", univ.ObjectIdentifier()),
        namedtype.NamedType("idValue", _Vid()),
    )


class _UserInfos(univ.SequenceOf):
    componentType = _UserInfo()


class _IdentifyData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("realName", char.UTF8String()),
        namedtype.NamedType("userInfos", _UserInfos()),
    )


def _pbkdf1_sha1(password: bytes, salt: bytes, iterations: int) -> bytes:
    """PBKDF1 (RFC 8018 5.1) with SHA-1: T1 = SHA1(P || S), Ti = SHA1(T(i-1)); DK is all 20 bytes."""
    dk = hashlib.sha1(password + salt).digest()
    for _ in range(iterations - 1):
        dk = hashlib.sha1(dk).digest()
    return dk


def _password_bytes(password: str) -> bytes:
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a broken form decoder: no file has it as password
        raise PkiError("key_password_incorrect", "password not encodable") from None


def _seed_key_iv(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    dk = _pbkdf1_sha1(_password_bytes(password), salt, iterations)
    return dk[:16], hashlib.sha1(dk[16:20]).digest()[:16]


def _seed_cbc_with_sha1_decrypt(params, password: str, ciphertext: bytes) -> bytes:
    if params is None or not params.isValue:
        raise PkiError("key_unreadable", "seedCBCWithSHA1 without parameters")
    p = _decode(bytes(params), _SeedParams(), "key_unreadable")
    iterations, salt = int(p["iterations"]), bytes(p["salt"])
    Budget("key_unreadable").charge(iterations, len(salt), hashlib.sha1().digest_size)
    key, iv = _seed_key_iv(password, salt, iterations)
    return cbc_decrypt(SEED(key), iv, ciphertext, "key")


_PRF_OIDS = {name: oid for oid, name in PRFS.items()}

# PBES2 encryption schemes NPKI keys use, by OID: writer scheme name prefix.
_PBES2_PREFIXES = {
    SEED_CBC: "pbes2-seed",
    "2.16.840.1.101.3.4.1.2": "pbes2-aes128",
    "2.16.840.1.101.3.4.1.22": "pbes2-aes192",
    "2.16.840.1.101.3.4.1.42": "pbes2-aes256",
}

_PBES2_CIPHERS = {oid: CIPHERS[oid] for oid in _PBES2_PREFIXES}

# Writer schemes: name -> (encryption scheme OID, PRF hash or None for SEED's own PBKDF1 scheme).
SCHEMES = {
    "seed-cbc-sha1": (SEED_CBC_WITH_SHA1, None),
    "pbes2-seed-sha1": (SEED_CBC, "sha1"),
    "pbes2-seed-sha256": (SEED_CBC, "sha256"),
    "pbes2-aes128": ("2.16.840.1.101.3.4.1.2", "sha256"),
    "pbes2-aes192": ("2.16.840.1.101.3.4.1.22", "sha256"),
    "pbes2-aes256": ("2.16.840.1.101.3.4.1.42", "sha256"),
}


def _pbes2(params) -> Pbes2:
    """The PBES2 parameters of a signPri.key, priced before anything is derived."""
    return Pbes2(params, "key", Budget("key_unreadable"), _PBES2_CIPHERS)


def _pbes2_decrypt(params, password: str, ciphertext: bytes) -> bytes:
    return _pbes2(params).decrypt(_password_bytes(password), ciphertext)


def _seed_cbc_with_sha1_scheme(params) -> str:
    return "seed-cbc-sha1"


def _pbes2_scheme(params) -> str:
    parsed = _pbes2(params)
    prefix = _PBES2_PREFIXES[parsed.cipher_oid]
    # SEED names its PRF because Korean toolkits write both; the AES names are OpenSSL's and our
    # writer uses HMAC-SHA256 for them, which is what re-encrypting "in the format uploaded" needs.
    if prefix == "pbes2-seed":
        return "pbes2-seed-sha1" if parsed.kdf.prf == "sha1" else "pbes2-seed-sha256"
    return prefix


# Encryption schemes readers accept, by algorithm OID: f(parameters, password, ciphertext) -> plaintext.
_DECRYPTERS = {
    SEED_CBC_WITH_SHA1: _seed_cbc_with_sha1_decrypt,
    PBES2: _pbes2_decrypt,
}

# The same schemes for key_scheme(): f(parameters) -> writer scheme name.
_SCHEME_NAMES = {
    SEED_CBC_WITH_SHA1: _seed_cbc_with_sha1_scheme,
    PBES2: _pbes2_scheme,
}


def _encryption_algorithm(data: bytes, table: dict):
    """(table entry for the file's encryption scheme, its parameters, the encrypted bytes)."""
    epki = _decode(data, rfc5208.EncryptedPrivateKeyInfo(), "key_unreadable")
    algorithm = epki["encryptionAlgorithm"]
    oid = str(algorithm["algorithm"])
    if oid not in table:
        raise PkiError("key_unsupported", f"encryption scheme {oid}")
    return table[oid], algorithm["parameters"], bytes(epki["encryptedData"])


def _decrypt(data: bytes, password: str) -> bytes:
    decrypt, params, ciphertext = _encryption_algorithm(data, _DECRYPTERS)
    return decrypt(params, password, ciphertext)


def key_scheme(data: bytes) -> str:
    """Which writer scheme (a key of SCHEMES) re-encrypts a signPri.key in the format it came in."""
    name, params, _ = _encryption_algorithm(data, _SCHEME_NAMES)
    return name(params)


def _random_num(pki) -> bytes | None:
    if not pki["attributes"].isValue:
        return None
    for attribute in pki["attributes"]:
        if str(attribute["type"]) == RANDOM_NUM_OID and len(attribute["values"]):
            bits = _decode(bytes(attribute["values"][0]), univ.BitString(), "key_unreadable")
            if len(bits) % 8:
                raise PkiError("key_unreadable", "randomNum is not whole octets")
            return bits.asOctets()
    return None


def _parse_plain(plain: bytes):
    """(key, randomNum) from a decrypted PrivateKeyInfo."""
    try:
        key = serialization.load_der_private_key(plain, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Valid padding happens by chance for about 1 wrong password in 256; the content then is noise.
        raise PkiError("key_password_incorrect") from None
    return key, _random_num(_decode(plain, rfc5208.PrivateKeyInfo(), "key_unreadable"))


def decrypt_private_key_info(data: bytes, password: str) -> bytes:
    """The plain PKCS#8 PrivateKeyInfo DER inside an NPKI signPri.key."""
    plain = _decrypt(data, password)
    _parse_plain(plain)  # a wrong password that left valid padding is only caught here
    return plain


def read_private_key(data: bytes, password: str):
    """Open an NPKI signPri.key; returns (private key, randomNum or None)."""
    return _parse_plain(_decrypt(data, password))


def _private_key_info(key, random_num: bytes | None) -> bytes:
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    if random_num is None:
        return plain
    pki, _ = decoder.decode(plain, asn1Spec=rfc5208.PrivateKeyInfo())
    attribute = rfc5280.Attribute()
    attribute["type"] = univ.ObjectIdentifier(RANDOM_NUM_OID)
    attribute["values"].append(univ.Any(encoder.encode(univ.BitString.fromOctetString(random_num))))
    pki["attributes"].append(attribute)
    return encoder.encode(pki)


def _pbes2_params(cipher_oid: str, prf: str, salt: bytes, iterations: int, iv: bytes) -> bytes:
    kdf = rfc8018.PBKDF2_params()
    kdf["salt"]["specified"] = salt
    kdf["iterationCount"] = iterations
    if prf != "sha1":  # HMAC-SHA1 is the DEFAULT, which DER leaves out
        kdf["prf"]["algorithm"] = univ.ObjectIdentifier(_PRF_OIDS[prf])
        kdf["prf"]["parameters"] = univ.Any(encoder.encode(univ.Null("")))
    params = rfc8018.PBES2_params()
    params["keyDerivationFunc"]["algorithm"] = univ.ObjectIdentifier(PBKDF2)
    params["keyDerivationFunc"]["parameters"] = univ.Any(encoder.encode(kdf))
    params["encryptionScheme"]["algorithm"] = univ.ObjectIdentifier(cipher_oid)
    params["encryptionScheme"]["parameters"] = univ.Any(encoder.encode(univ.OctetString(iv)))
    return encoder.encode(params)


def encrypt_private_key(key, password: str, random_num: bytes | None, iterations: int = 2048,
                        salt: bytes | None = None, scheme: str = "seed-cbc-sha1") -> bytes:
    """An NPKI signPri.key: EncryptedPrivateKeyInfo in one of SCHEMES.

    The default, seedCBCWithSHA1, is what Korean toolkits write; the PBES2 ones are the other variants
    found in the wild, written so that a key can be re-encrypted in the format it was uploaded in.
    """
    if scheme not in SCHEMES:
        raise PkiError("key_unsupported", f"scheme {scheme!r}")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise PkiError("key_unsupported", f"iteration count {iterations} out of range")
    cipher_oid, prf = SCHEMES[scheme]
    plain = _private_key_info(key, random_num)
    epki = rfc5208.EncryptedPrivateKeyInfo()
    if prf is None:
        salt = os.urandom(8) if salt is None else salt
        seed_key, iv = _seed_key_iv(password, salt, iterations)
        params = _SeedParams()
        params["salt"] = salt
        params["iterations"] = iterations
        epki["encryptionAlgorithm"]["algorithm"] = univ.ObjectIdentifier(SEED_CBC_WITH_SHA1)
        epki["encryptionAlgorithm"]["parameters"] = univ.Any(encoder.encode(params))
        epki["encryptedData"] = cbc_encrypt(SEED(seed_key), iv, plain)
    else:
        salt = os.urandom(16) if salt is None else salt
        iv = os.urandom(16)
        cipher, key_bytes = CIPHERS[cipher_oid]
        derived = hashlib.pbkdf2_hmac(prf, _password_bytes(password), salt, iterations, key_bytes)
        epki["encryptionAlgorithm"]["algorithm"] = univ.ObjectIdentifier(PBES2)
        epki["encryptionAlgorithm"]["parameters"] = univ.Any(
            _pbes2_params(cipher_oid, prf, salt, iterations, iv))
        epki["encryptedData"] = cbc_encrypt(cipher(derived), iv, plain)
    return encoder.encode(epki)


def compute_vid(idn: str, random_num: bytes) -> bytes:
    """KISA VID = SHA256(SHA256(DER(SEQUENCE { idn PrintableString, randomNum BIT STRING })))."""
    if not (idn.isascii() and idn.isdigit()):
        raise PkiError("idn_invalid")
    value = _VidInput()
    value["idn"] = idn
    value["randomNum"] = univ.BitString.fromOctetString(random_num)
    return hashlib.sha256(hashlib.sha256(encoder.encode(value)).digest()).digest()


def identify_data(real_name: str, vid: bytes) -> bytes:
    """DER of the npkiIdentifyData value (real name + SHA-256 VID) for the subjectAltName otherName."""
    vid_value = _Vid()
    vid_value["hashAlg"]["algorithm"] = univ.ObjectIdentifier(_SHA256_OID)
    vid_value["virtualID"] = vid
    user_info = _UserInfo()
    user_info["idType"] = univ.ObjectIdentifier(_VID_USER_INFO_OID)
    user_info["idValue"] = vid_value
    value = _IdentifyData()
    value["realName"] = real_name
    value["userInfos"].append(user_info)
    return encoder.encode(value)


def read_identify_data(cert: x509.Certificate) -> tuple[str, bytes] | None:
    """(real name, VID) from the certificate's npkiIdentifyData, or None when it has none."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # cryptography parses extensions lazily and may fail here
        raise PkiError("identify_data_unreadable", str(exc)) from None
    values = [o.value for o in san.get_values_for_type(x509.OtherName) if o.type_id == IDENTIFY_DATA_OID]
    if not values:
        return None
    data = _decode(values[0], _IdentifyData(), "identify_data_unreadable")
    if not len(data["userInfos"]):
        raise PkiError("identify_data_unreadable", "no userInfos")
    return str(data["realName"]), bytes(data["userInfos"][0]["idValue"]["virtualID"])


def _path_safe(text: str) -> str:
    """One zip path component: no separators, no "..", no control characters."""
    cleaned = "".join("_" if c in "/\\" or ord(c) < 0x20 else c for c in text)
    return cleaned.replace("..", "__")


def subject_folder_name(cert: x509.Certificate) -> str:
    """The USER/<subject DN> folder name as Korean toolkits write it: CN first, lower-case names, values as-is."""
    rdns = ("+".join(f"{a.rfc4514_attribute_name.lower()}={a.value}" for a in rdn)
            for rdn in reversed(cert.subject.rdns))
    return _path_safe(",".join(rdns))


def npki_zip(cert: x509.Certificate, encrypted_key: bytes, ca_org: str) -> bytes:
    """A zip holding NPKI/<CA org>/USER/<subject DN>/{signCert.der, signPri.key}."""
    folder = f"NPKI/{_path_safe(ca_org)}/USER/{subject_folder_name(cert)}"
    # The certificate's start (KST) as the file time, so the same certificate always zips the same.
    stamp = cert.not_valid_before_utc.astimezone(KST).timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in (("signCert.der", cert.public_bytes(serialization.Encoding.DER)),
                              ("signPri.key", encrypted_key)):
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.flag_bits |= 0x800  # names are UTF-8 (Korean names in the subject)
            zf.writestr(info, content)
    return out.getvalue()
