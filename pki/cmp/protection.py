"""How a PKIMessage is protected (RFC 4210 5.1.3, RFC 9481): the password-based MAC (PBM) of
5.1.3.1 with its parameters capped before any work, and signatures.

A stranger chooses the PBM parameters of a request, so every one is checked against a cap before
the key is derived: the iteration count is the cost a request can impose on us.
"""

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .errors import CmpError

ID_PASSWORD_BASED_MAC = "1.2.840.113533.7.66.13"

# RFC 4211 4.4: at least 100. The cap: OpenSSL 3.0 sends 500 (and has no option to change it),
# BouncyCastle 1000; 10,000 is twenty times the former and costs about 10 ms of hashing, which is
# all a request with a made-up reference number can make us spend. OpenSSL's own ceiling
# (OSSL_CRMF_PBM_MAX_ITERATION_COUNT, 100,000) would be ten times that per request.
PBM_MIN_ITERATIONS = 100
PBM_MAX_ITERATIONS = 10_000
# RFC 4211 4.4: the salt SHOULD be at least 8 octets; OpenSSL sends 16. 64 is plenty for any salt.
PBM_SALT_LENGTHS = range(8, 65)
# What our own PBM-protected replies use: OpenSSL's salt length, RFC 4211's suggested count.
REPLY_PBM_SALT_BYTES = 16
REPLY_PBM_ITERATIONS = 1000

# The hashes we accept by OID (RFC 9481 2): as the PBM one-way function, and as a certConf hashAlg.
HASHES = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
# HMACs (RFC 9481 6.2.1). hmac-sha1 (1.3.6.1.5.5.8.1.2) is what OpenSSL 3.0 sends unless told
# otherwise (-mac); HMAC-SHA1 is still sound as a MAC.
_MACS = {
    "1.3.6.1.5.5.8.1.2": hashes.SHA1,
    "1.2.840.113549.2.7": hashes.SHA1,
    "1.2.840.113549.2.9": hashes.SHA256,
    "1.2.840.113549.2.10": hashes.SHA384,
    "1.2.840.113549.2.11": hashes.SHA512,
}
HMAC_SHA256 = "1.2.840.113549.2.9"
SHA256 = "2.16.840.1.101.3.4.2.1"


@dataclass(frozen=True)
class PbmParameters:
    """PBMParameter (RFC 4211 4.4), with the algorithms resolved."""
    salt: bytes
    owf: hashes.HashAlgorithm
    iterations: int
    mac: hashes.HashAlgorithm       # the hash of the HMAC


@dataclass(frozen=True)
class SignatureAlgorithm:
    """A signature AlgorithmIdentifier we verify: RSASSA-PKCS1-v1_5 or ECDSA, with a SHA-2 hash."""
    oid: str
    key_type: type                  # rsa.RSAPublicKey or ec.EllipticCurvePublicKey
    hash: hashes.HashAlgorithm


SIGNATURE_ALGORITHMS = {
    "1.2.840.113549.1.1.11": SignatureAlgorithm("1.2.840.113549.1.1.11", rsa.RSAPublicKey, hashes.SHA256()),
    "1.2.840.113549.1.1.12": SignatureAlgorithm("1.2.840.113549.1.1.12", rsa.RSAPublicKey, hashes.SHA384()),
    "1.2.840.113549.1.1.13": SignatureAlgorithm("1.2.840.113549.1.1.13", rsa.RSAPublicKey, hashes.SHA512()),
    "1.2.840.10045.4.3.2": SignatureAlgorithm("1.2.840.10045.4.3.2", ec.EllipticCurvePublicKey, hashes.SHA256()),
    "1.2.840.10045.4.3.3": SignatureAlgorithm("1.2.840.10045.4.3.3", ec.EllipticCurvePublicKey, hashes.SHA384()),
    "1.2.840.10045.4.3.4": SignatureAlgorithm("1.2.840.10045.4.3.4", ec.EllipticCurvePublicKey, hashes.SHA512()),
}
SHA256_WITH_RSA = "1.2.840.113549.1.1.11"


def pbm_parameters(salt: bytes, owf_oid: str, iterations: int, mac_oid: str) -> PbmParameters:
    """PbmParameters from a PBMParameter's fields, refused (badAlg) outside what we accept."""
    if owf_oid not in HASHES:
        raise CmpError("cmp_unsupported_algorithm", "badAlg", f"PBM one-way function {owf_oid}")
    if mac_oid not in _MACS:
        raise CmpError("cmp_unsupported_algorithm", "badAlg", f"PBM MAC {mac_oid}")
    params = PbmParameters(salt=salt, owf=HASHES[owf_oid](), iterations=iterations, mac=_MACS[mac_oid]())
    check_pbm_caps(params)
    return params


def check_pbm_caps(params: PbmParameters) -> None:
    """Refuse (badAlg) parameters outside the caps; cheap, and done before any derivation."""
    if not PBM_MIN_ITERATIONS <= params.iterations <= PBM_MAX_ITERATIONS:
        raise CmpError("cmp_pbm_parameters", "badAlg",
                       f"iteration count {params.iterations} outside {PBM_MIN_ITERATIONS}..{PBM_MAX_ITERATIONS}")
    if len(params.salt) not in PBM_SALT_LENGTHS:
        raise CmpError("cmp_pbm_parameters", "badAlg", f"salt of {len(params.salt)} octets")


def pbm_mac(params: PbmParameters, secret: bytes, data: bytes) -> bytes:
    """RFC 4210 5.1.3.1: BASEKEY = OWF applied `iterations` times to secret || salt, then
    HMAC(BASEKEY, data). The caps are checked again here, whoever built `params`."""
    check_pbm_caps(params)
    owf = params.owf.name
    key = hashlib.new(owf, bytes(secret) + params.salt).digest()
    for _ in range(params.iterations - 1):
        key = hashlib.new(owf, key).digest()
    return hmac.new(key, data, params.mac.name).digest()


def pbm_matches(params: PbmParameters, secret: bytes, data: bytes, mac: bytes) -> bool:
    """Whether `mac` is the PBM of `data` under `secret`, compared in constant time. A MAC of the
    wrong length is refused before the key is derived."""
    if len(mac) != params.mac.digest_size:
        return False
    return hmac.compare_digest(pbm_mac(params, secret, data), mac)


def signature_algorithm(oid: str) -> SignatureAlgorithm:
    """The signature algorithm named by `oid`, or CmpError badAlg."""
    if oid not in SIGNATURE_ALGORITHMS:
        raise CmpError("cmp_unsupported_algorithm", "badAlg", f"signature algorithm {oid}")
    return SIGNATURE_ALGORITHMS[oid]


def signature_valid(public_key, algorithm: SignatureAlgorithm, signature: bytes, data: bytes) -> bool:
    """Whether `signature` over `data` verifies with `public_key` under `algorithm`; False also
    when the key is not of the algorithm's type."""
    if not isinstance(public_key, algorithm.key_type):
        return False
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm.hash)
        else:
            public_key.verify(signature, data, ec.ECDSA(algorithm.hash))
    except (InvalidSignature, ValueError):
        return False
    return True
