"""Every key derivation a file asks for is priced before any runs: over a cap is kdf_over_cap,
an algorithm we do not know is *_unsupported, and neither derives anything."""

import hashlib
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5280, rfc5652, rfc7292, rfc8018, rfc9579

from pki import kdf, npki, pkcs12
from pki.errors import PkiError

PASSWORD = "WTuA8Ev0lWXVFSiI!"
MAC_DIGESTS = sorted(pkcs12._MAC_HASHES) + ["1.2.840.113549.2.5", "1.2.840.113549.2.2"]  # + MD5, MD2
PKCS12_PBES = sorted(pkcs12._PKCS12_PBES)
PRFS = sorted(npki.PRFS) + ["1.2.840.113549.2.5"]  # + hmacWithMD5
PBES2_CIPHERS = sorted(npki.CIPHERS)
NPKI_CIPHERS = sorted(npki._PBES2_CIPHERS)

# (iterations, salt bytes, key bytes) each over one cap, the others fine.
over_cap = st.one_of(
    st.tuples(st.integers(kdf.MAX_ITERATIONS + 1, 2**63), st.just(8), st.none()),
    st.tuples(st.integers(1, 2048), st.integers(kdf.MAX_SALT_BYTES + 1, 4096), st.none()),
    st.tuples(st.integers(1, 2048), st.just(8), st.integers(kdf.MAX_KEY_BYTES + 1, 2**31)),
)


@pytest.fixture(autouse=True)
def no_derivation(monkeypatch):
    """Any derivation at all fails the test: the point is that none runs."""
    def refuse(*args, **kwargs):
        raise AssertionError("a key derivation ran")
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", refuse)
    monkeypatch.setattr(pkcs12, "pkcs12_kdf", refuse)
    monkeypatch.setattr(npki, "_pbkdf1_sha1", refuse)


def _any(value) -> univ.Any:
    return univ.Any(encoder.encode(value))


def _algorithm(oid: str, params=None) -> rfc5280.AlgorithmIdentifier:
    algorithm = rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = univ.ObjectIdentifier(oid)
    if params is not None:
        algorithm["parameters"] = _any(params)
    return algorithm


def _pbkdf2(iterations, salt_bytes, key_bytes, prf="1.2.840.113549.2.9"):
    params = rfc8018.PBKDF2_params()
    params["salt"]["specified"] = b"s" * salt_bytes
    params["iterationCount"] = iterations
    if key_bytes is not None:
        params["keyLength"] = key_bytes
    params["prf"]["algorithm"] = univ.ObjectIdentifier(prf)
    params["prf"]["parameters"] = _any(univ.Null(""))
    return _algorithm(npki.PBKDF2, params)


def _pbes2(cipher, iterations, salt_bytes, key_bytes, prf="1.2.840.113549.2.9"):
    params = rfc8018.PBES2_params()
    params["keyDerivationFunc"] = _pbkdf2(iterations, salt_bytes, key_bytes, prf)
    params["encryptionScheme"] = _algorithm(cipher, univ.OctetString(b"i" * 16))
    return _algorithm(npki.PBES2, params)


def _pkcs12_pbe(oid, iterations, salt_bytes):
    params = rfc7292.Pkcs_12PbeParams()
    params["salt"] = b"s" * salt_bytes
    params["iterations"] = iterations
    return _algorithm(oid, params)


def _encrypted_data(algorithm) -> rfc5652.ContentInfo:
    encrypted = rfc5652.EncryptedData()
    encrypted["version"] = 0
    inner = encrypted["encryptedContentInfo"]
    inner["contentType"] = univ.ObjectIdentifier("1.2.840.113549.1.7.1")
    inner["contentEncryptionAlgorithm"] = algorithm
    inner["encryptedContent"] = b"c" * 32
    info = rfc5652.ContentInfo()
    info["contentType"] = univ.ObjectIdentifier("1.2.840.113549.1.7.6")
    info["content"] = _any(encrypted)
    return info


def _shrouded_key_bag(algorithm) -> rfc5652.ContentInfo:
    epki = rfc7292.EncryptedPrivateKeyInfo()
    epki["encryptionAlgorithm"] = algorithm
    epki["encryptedData"] = b"c" * 32
    bag = rfc7292.SafeBag()
    bag["bagId"] = univ.ObjectIdentifier("1.2.840.113549.1.12.10.1.2")
    bag["bagValue"] = _any(epki)
    safe = rfc7292.SafeContents()
    safe.append(bag)
    info = rfc5652.ContentInfo()
    info["contentType"] = univ.ObjectIdentifier("1.2.840.113549.1.7.1")
    info["content"] = _any(univ.OctetString(encoder.encode(safe)))
    return info


def _pfx(contents=(), mac_algorithm=None, mac_iterations=1, mac_salt_bytes=8) -> bytes:
    auth_safe = rfc7292.AuthenticatedSafe()
    for info in contents:
        auth_safe.append(info)
    pfx = rfc7292.PFX()
    pfx["version"] = 3
    pfx["authSafe"]["contentType"] = univ.ObjectIdentifier("1.2.840.113549.1.7.1")
    pfx["authSafe"]["content"] = _any(univ.OctetString(encoder.encode(auth_safe)))
    if mac_algorithm is not None:
        mac = pfx["macData"]
        mac["mac"]["digestAlgorithm"] = mac_algorithm
        mac["mac"]["digest"] = b"d" * 20
        mac["macSalt"] = b"s" * mac_salt_bytes
        mac["iterations"] = mac_iterations
    return encoder.encode(pfx)


def _pbmac1(iterations, salt_bytes, key_bytes, hmac="1.2.840.113549.2.9"):
    params = rfc9579.PBMAC1_params()
    params["keyDerivationFunc"] = _pbkdf2(iterations, salt_bytes, 32 if key_bytes is None else key_bytes)
    params["messageAuthScheme"] = _algorithm(hmac, univ.Null(""))
    return _algorithm(pkcs12._PBMAC1, params)


def _refused(read, data, *codes) -> str:
    """The error code of reading `data`, checked to come in well under a second of CPU."""
    start = time.process_time()
    with pytest.raises(PkiError) as e:
        read(data, PASSWORD)
    assert time.process_time() - start < 1.0
    assert e.value.code in codes, e.value
    return e.value.code


def _hostile_p12_kinds():
    """(name, f(iterations, salt bytes, key bytes) -> .p12) for every derivation a .p12 can ask for."""
    sha1 = _algorithm("1.3.14.3.2.26")
    kinds = [(f"mac {oid}", lambda i, s, k, oid=oid: _pfx(mac_algorithm=_algorithm(oid), mac_iterations=i,
                                                          mac_salt_bytes=s)) for oid in MAC_DIGESTS]
    kinds += [(f"pbmac1 {prf}", lambda i, s, k, prf=prf: _pfx(mac_algorithm=_pbmac1(i, s, k, prf)))
              for prf in PRFS]
    for oid in PKCS12_PBES:
        kinds.append((f"contents {oid}", lambda i, s, k, oid=oid: _pfx(
            [_encrypted_data(_pkcs12_pbe(oid, i, s))], sha1)))
        kinds.append((f"key bag {oid}", lambda i, s, k, oid=oid: _pfx(
            [_shrouded_key_bag(_pkcs12_pbe(oid, i, s))], sha1)))
    for cipher in PBES2_CIPHERS:
        for prf in PRFS:
            kinds.append((f"pbes2 {cipher} {prf}", lambda i, s, k, cipher=cipher, prf=prf: _pfx(
                [_shrouded_key_bag(_pbes2(cipher, i, s, k, prf)), _encrypted_data(_pbes2(cipher, i, s, k, prf))])))
    return kinds


P12_KINDS = _hostile_p12_kinds()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(P12_KINDS), cap=over_cap)
def test_over_cap_p12_is_refused_before_any_derivation(kind, cap):
    name, build = kind
    iterations, salt_bytes, key_bytes = cap
    if key_bytes is not None and name.startswith(("mac ", "contents ", "key bag ")):
        key_bytes = None  # their key length is the algorithm's, not the file's
        iterations = kdf.MAX_ITERATIONS + 1
    code = _refused(pkcs12.read_pkcs12, build(iterations, salt_bytes, key_bytes), "kdf_over_cap")
    assert code == "kdf_over_cap", name


def _npki_kinds():
    def seed(i, s, k):
        params = npki._SeedParams()
        params["salt"] = b"s" * s
        params["iterations"] = i
        return _epki(_algorithm(npki.SEED_CBC_WITH_SHA1, params))
    kinds = [("seedCBCWithSHA1", seed)]
    kinds += [(f"pbes2 {cipher} {prf}", lambda i, s, k, cipher=cipher, prf=prf: _epki(_pbes2(cipher, i, s, k, prf)))
              for cipher in NPKI_CIPHERS for prf in PRFS]
    return kinds


def _epki(algorithm) -> bytes:
    epki = rfc7292.EncryptedPrivateKeyInfo()
    epki["encryptionAlgorithm"] = algorithm
    epki["encryptedData"] = b"c" * 32
    return encoder.encode(epki)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(_npki_kinds()), cap=over_cap)
def test_over_cap_npki_key_is_refused_before_any_derivation(kind, cap):
    name, build = kind
    iterations, salt_bytes, key_bytes = cap
    if key_bytes is not None and name == "seedCBCWithSHA1":
        iterations = kdf.MAX_ITERATIONS + 1  # PBKDF1's key length is fixed
    assert _refused(npki.read_private_key, build(iterations, salt_bytes, key_bytes), "kdf_over_cap"), name


@pytest.mark.parametrize("mac", ["1.2.840.113549.2.5", "1.2.840.113549.2.2", "1.2.3.4"])
def test_unknown_mac_digest_is_unsupported_before_any_derivation(mac):
    _refused(pkcs12.read_pkcs12, _pfx(mac_algorithm=_algorithm(mac), mac_iterations=2048), "p12_unsupported")


@pytest.mark.parametrize("build", [
    lambda: _pfx([_encrypted_data(_pkcs12_pbe("1.2.840.113549.1.12.1.99", 2048, 8))]),
    lambda: _pfx([_shrouded_key_bag(_pbes2("1.2.3.4", 2048, 8, None))]),
    lambda: _pfx([_shrouded_key_bag(_pbes2(sorted(npki.CIPHERS)[0], 2048, 8, None, prf="1.2.3.4"))]),
    lambda: _pfx(mac_algorithm=_pbmac1(2048, 8, 32, hmac="1.2.3.4")),
])
def test_unknown_bag_algorithms_are_unsupported_before_any_derivation(build):
    _refused(pkcs12.read_pkcs12, build(), "p12_unsupported")


def test_many_contents_each_at_the_cap_are_refused_as_a_whole():
    at_cap = _pkcs12_pbe("1.2.840.113549.1.12.1.3", kdf.MAX_ITERATIONS, 8)
    data = _pfx([_encrypted_data(at_cap)] * 600, _algorithm("1.3.14.3.2.26"))
    start = time.process_time()
    with pytest.raises(PkiError) as e:
        pkcs12.read_pkcs12(data, PASSWORD)
    assert e.value.code == "kdf_over_cap" and "in all" in e.value.detail
    assert time.process_time() - start < 1.0


def test_one_content_at_the_cap_is_priced_within_budget():
    budget = kdf.Budget("p12_unreadable")
    budget.charge(kdf.MAX_ITERATIONS, 8, 24, times=2)  # a 3DES key bag at the cap: key and IV
    with pytest.raises(PkiError, match="kdf_over_cap"):
        budget.charge(kdf.MAX_ITERATIONS, 8, 24)
