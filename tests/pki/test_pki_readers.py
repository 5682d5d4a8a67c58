"""Every signPri.key variant and PKCS#12 reading: our writers, OpenSSL's files and the pypinksign vector."""

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5208, rfc8018

from pki import files, kdf, npki, pkcs12
from pki.errors import PkiError

PASSWORD = "Kor3a!Bank#"
RANDOM_NUM = bytes(range(1, 21))
PBES2_SCHEMES = [s for s in npki.SCHEMES if s.startswith("pbes2-")]


def _code(call, *args) -> str:
    with pytest.raises(PkiError) as e:
        call(*args)
    return e.value.code


@pytest.fixture(scope="module")
def vector(vectors):
    return {
        "pfx": (vectors / "cert.pfx").read_bytes(),
        "password": (vectors / "password.txt").read_text().strip(),
        "cert": x509.load_der_x509_certificate((vectors / "signCert.der").read_bytes()),
    }


@pytest.mark.parametrize("scheme", list(npki.SCHEMES))
@pytest.mark.parametrize("random_num", [RANDOM_NUM, None])
def test_every_scheme_round_trips(ee_key, scheme, random_num):
    data = npki.encrypt_private_key(ee_key, PASSWORD, random_num, iterations=64, scheme=scheme)
    key, got = npki.read_private_key(data, PASSWORD)
    assert key.private_numbers() == ee_key.private_numbers()
    assert got == random_num
    assert npki.key_scheme(data) == scheme
    assert _code(npki.read_private_key, data, PASSWORD + "x") == "key_password_incorrect"


def test_pbes2_structure(ee_key):
    # What the wire format says, independently of our reader: PBKDF2, the PRF, the IV and the cipher.
    def params(scheme):
        epki, _ = decoder.decode(npki.encrypt_private_key(ee_key, PASSWORD, None, 100, b"s" * 16, scheme),
                                 asn1Spec=rfc5208.EncryptedPrivateKeyInfo())
        assert str(epki["encryptionAlgorithm"]["algorithm"]) == "1.2.840.113549.1.5.13"
        p, _ = decoder.decode(bytes(epki["encryptionAlgorithm"]["parameters"]), asn1Spec=rfc8018.PBES2_params())
        kdf, _ = decoder.decode(bytes(p["keyDerivationFunc"]["parameters"]), asn1Spec=rfc8018.PBKDF2_params())
        iv, _ = decoder.decode(bytes(p["encryptionScheme"]["parameters"]), asn1Spec=univ.OctetString())
        assert bytes(kdf["salt"]["specified"]) == b"s" * 16 and int(kdf["iterationCount"]) == 100
        assert len(bytes(iv)) == 16
        return str(p["encryptionScheme"]["algorithm"]), kdf

    cipher, kdf = params("pbes2-seed-sha1")
    assert cipher == "1.2.410.200004.1.4"
    assert b"\x2a\x86\x48\x86\xf7\x0d\x02\x07" not in encoder.encode(kdf)  # the default PRF is left out
    cipher, kdf = params("pbes2-seed-sha256")
    assert cipher == "1.2.410.200004.1.4" and str(kdf["prf"]["algorithm"]) == "1.2.840.113549.2.9"
    assert params("pbes2-aes128")[0] == "2.16.840.1.101.3.4.1.2"
    assert params("pbes2-aes192")[0] == "2.16.840.1.101.3.4.1.22"
    assert params("pbes2-aes256")[0] == "2.16.840.1.101.3.4.1.42"


def _openssl_pkcs8(tmp_path, data: bytes, *extra: str) -> bytes:
    (tmp_path / "signPri.key").write_bytes(data)
    run = subprocess.run(["openssl", "pkcs8", "-inform", "DER", "-in", "signPri.key", "-passin", f"pass:{PASSWORD}",
                          "-outform", "DER", *extra], cwd=tmp_path, capture_output=True)
    assert run.returncode == 0, run.stderr.decode()
    return run.stdout


@pytest.mark.parametrize("scheme", PBES2_SCHEMES)
def test_openssl_reads_our_pbes2_files(tmp_path, ee_key, scheme):
    data = npki.encrypt_private_key(ee_key, PASSWORD, RANDOM_NUM, scheme=scheme)
    # SEED lives in OpenSSL's legacy provider; AES needs nothing beyond the default one.
    extra = ("-provider", "legacy", "-provider", "default") if "seed" in scheme else ()
    # OpenSSL writes the decrypted key in its traditional form, dropping PKCS#8 attributes; what
    # matters is that it decrypts a file carrying the randomNum attribute.
    key = serialization.load_der_private_key(_openssl_pkcs8(tmp_path, data, *extra), None)
    assert key.private_numbers() == ee_key.private_numbers()
    assert RANDOM_NUM in npki.decrypt_private_key_info(data, PASSWORD)


@pytest.mark.parametrize("cipher,prf,scheme", [
    ("aes-256-cbc", "hmacWithSHA256", "pbes2-aes256"),
    ("aes-128-cbc", "hmacWithSHA1", "pbes2-aes128"),
    ("seed-cbc", "hmacWithSHA1", "pbes2-seed-sha1"),
    ("seed-cbc", "hmacWithSHA256", "pbes2-seed-sha256"),
])
def test_we_read_openssl_pbes2_files(tmp_path, ee_key, cipher, prf, scheme):
    (tmp_path / "plain.der").write_bytes(npki._private_key_info(ee_key, None))
    run = subprocess.run(["openssl", "pkcs8", "-topk8", "-inform", "DER", "-in", "plain.der", "-outform", "DER",
                          "-v2", cipher, "-v2prf", prf, "-iter", "1000", "-passout", f"pass:{PASSWORD}",
                          "-provider", "legacy", "-provider", "default"],
                         cwd=tmp_path, capture_output=True)
    assert run.returncode == 0, run.stderr.decode()
    assert npki.key_scheme(run.stdout) == scheme
    # OpenSSL drops the PKCS#8 attributes (randomNum) on the way through; the key is what it wrote.
    assert npki.read_private_key(run.stdout, PASSWORD)[0].private_numbers() == ee_key.private_numbers()
    assert _code(npki.read_private_key, run.stdout, "wrong") == "key_password_incorrect"


def test_cryptography_pkcs8_is_readable():
    key = ec.generate_private_key(ec.SECP256R1())
    data = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(b"pw"))
    assert npki.key_scheme(data) == "pbes2-aes256"
    assert npki.read_private_key(data, "pw")[0].private_numbers() == key.private_numbers()


@pytest.mark.parametrize("scheme", PBES2_SCHEMES)
def test_pbes2_wrong_passwords_never_load(ee_key, scheme):
    # ~1 in 256 wrong passwords leaves valid padding; the PrivateKeyInfo parse must catch those too.
    data = npki.encrypt_private_key(ee_key, PASSWORD, RANDOM_NUM, iterations=1, scheme=scheme)
    for i in range(600):
        assert _code(npki.read_private_key, data, f"wrong{i}") == "key_password_incorrect"


def _epki(oid: str, params: bytes | None, ciphertext: bytes = b"\x00" * 32) -> bytes:
    epki = rfc5208.EncryptedPrivateKeyInfo()
    epki["encryptionAlgorithm"]["algorithm"] = univ.ObjectIdentifier(oid)
    if params is not None:
        epki["encryptionAlgorithm"]["parameters"] = univ.Any(params)
    epki["encryptedData"] = ciphertext
    return encoder.encode(epki)


def _pbes2_params(ee_key, scheme="pbes2-aes256", **changes) -> bytes:
    data = npki.encrypt_private_key(ee_key, PASSWORD, None, iterations=10, scheme=scheme)
    epki, _ = decoder.decode(data, asn1Spec=rfc5208.EncryptedPrivateKeyInfo())
    p, _ = decoder.decode(bytes(epki["encryptionAlgorithm"]["parameters"]), asn1Spec=rfc8018.PBES2_params())
    kdf, _ = decoder.decode(bytes(p["keyDerivationFunc"]["parameters"]), asn1Spec=rfc8018.PBKDF2_params())
    for name, value in changes.items():
        if name == "cipher":
            p["encryptionScheme"]["algorithm"] = univ.ObjectIdentifier(value)
        elif name == "kdf":
            p["keyDerivationFunc"]["algorithm"] = univ.ObjectIdentifier(value)
        elif name == "iv":
            p["encryptionScheme"]["parameters"] = univ.Any(encoder.encode(univ.OctetString(value)))
        elif name == "prf":
            kdf["prf"]["algorithm"] = univ.ObjectIdentifier(value)
        else:
            kdf[name] = value
    p["keyDerivationFunc"]["parameters"] = univ.Any(encoder.encode(kdf))
    return _epki("1.2.840.113549.1.5.13", encoder.encode(p), bytes(epki["encryptedData"]))


@pytest.mark.parametrize("changes,code,detail", [
    (dict(cipher="1.2.840.113549.3.7"), "key_unsupported", "1.2.840.113549.3.7"),  # des-ede3-cbc
    (dict(kdf="1.3.6.1.4.1.11591.4.11"), "key_unsupported", "1.3.6.1.4.1.11591.4.11"),  # scrypt
    (dict(prf="1.2.840.113549.2.5"), "key_unsupported", "1.2.840.113549.2.5"),  # hmacWithMD5
    (dict(iterationCount=npki.MAX_ITERATIONS + 1), "kdf_over_cap", "iteration"),
    (dict(keyLength=16), "key_unreadable", "key length"),
    (dict(iv=b"short"), "key_unreadable", "IV"),
])
def test_bad_pbes2_parameters(ee_key, changes, code, detail):
    data = _pbes2_params(ee_key, **changes)
    with pytest.raises(PkiError) as e:
        npki.read_private_key(data, PASSWORD)
    assert e.value.code == code and detail in e.value.detail
    if code == "key_unsupported":
        assert _code(npki.key_scheme, data) == code


def test_unknown_scheme_is_unsupported_with_its_oid():
    data = _epki("1.2.840.113549.1.12.1.3", encoder.encode(univ.Sequence()))  # PKCS#12 3DES PBE
    for call in (lambda: npki.read_private_key(data, PASSWORD), lambda: npki.key_scheme(data)):
        with pytest.raises(PkiError) as e:
            call()
        assert e.value.code == "key_unsupported" and "1.2.840.113549.1.12.1.3" in e.value.detail


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x00", bytes(range(256))])
def test_key_scheme_of_garbage(data):
    assert _code(npki.key_scheme, data) == "key_unreadable"


def test_garbage_ciphertext_under_pbes2(ee_key):
    data = _pbes2_params(ee_key)
    epki, _ = decoder.decode(data, asn1Spec=rfc5208.EncryptedPrivateKeyInfo())
    for ciphertext, code in ((b"\x01" * 31, "key_unreadable"), (b"\x01" * 64, "key_password_incorrect")):
        epki["encryptedData"] = ciphertext
        assert _code(npki.read_private_key, encoder.encode(epki), PASSWORD) == code


def test_writer_refuses_unknown_scheme(ee_key):
    assert _code(npki.encrypt_private_key, ee_key, PASSWORD, None, 2048, None, "pbes2-des") == "key_unsupported"


def test_lone_surrogate_password(ee_key):
    data = npki.encrypt_private_key(ee_key, PASSWORD, None, iterations=4, scheme="pbes2-seed-sha1")
    assert _code(npki.read_private_key, data, "\ud800") == "key_password_incorrect"


# PKCS#12

def test_vector_pfx_opens_and_matches_signcert(vector):
    key, cert, extra = pkcs12.read_pkcs12(vector["pfx"], vector["password"])
    assert cert == vector["cert"]
    assert key.public_key().public_numbers() == vector["cert"].public_key().public_numbers()
    assert extra == []
    assert _code(pkcs12.read_pkcs12, vector["pfx"], "wrong") == "p12_password_incorrect"


@pytest.mark.parametrize("legacy", [False, True])
def test_openssl_p12_opens(openssl_p12, ee_key, ee_cert, legacy):
    data = openssl_p12(PASSWORD, legacy=legacy)
    key, cert, extra = pkcs12.read_pkcs12(data, PASSWORD)
    assert key.private_numbers() == ee_key.private_numbers()
    assert cert == ee_cert and extra == []
    for wrong in ("wrong", "", PASSWORD.upper()):
        assert _code(pkcs12.read_pkcs12, data, wrong) == "p12_password_incorrect"


def test_legacy_p12_really_is_rc2_and_3des(openssl_p12, tmp_path):
    (tmp_path / "l.p12").write_bytes(openssl_p12(PASSWORD, legacy=True))
    run = subprocess.run(["openssl", "pkcs12", "-in", "l.p12", "-passin", f"pass:{PASSWORD}", "-info", "-noout",
                          "-legacy"], cwd=tmp_path, capture_output=True, text=True)
    assert "pbeWithSHA1And40BitRC2-CBC" in run.stderr and "pbeWithSHA1And3-KeyTripleDES-CBC" in run.stderr


def test_our_p12_opens(ca_keys, ee_key, ee_cert):
    chain = [ca_keys.issuing_cert, ca_keys.root_cert]
    data = files.pkcs12(ee_key, ee_cert, chain, "한글 비밀번호1!", "x")
    key, cert, extra = pkcs12.read_pkcs12(data, "한글 비밀번호1!")
    assert cert == ee_cert and extra == chain
    assert _code(pkcs12.read_pkcs12, data, "한글 비밀번호1") == "p12_password_incorrect"


@pytest.mark.parametrize("password,salt,purpose,iterations,expected", [
    # Known answers from Dr Stephen Henson's PKCS#12 FAQ test file (also in Crypto++'s validation suite).
    ("smeg", "0a58cf64530d823f", 1, 1, "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3"),
    ("smeg", "3d83c0e4546ac140", 3, 1, "8d967d88f6caa9d714800ab3d48051d63f73a312"),
    ("queeg", "05dec959acff72f7", 1, 1000, "ed2034e36328830ff09df1e1a07dd357185dac0d4f9eb3d4"),
])
def test_pkcs12_kdf_known_answers(password, salt, purpose, iterations, expected):
    key = kdf.pkcs12_kdf("sha1", password.encode("utf-16-be") + b"\0\0", bytes.fromhex(salt), iterations,
                            purpose, len(expected) // 2)
    assert key.hex() == expected


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x00", b"\x30\x03\x02\x01\x03"])
def test_garbage_p12_is_unreadable(data):
    assert _code(pkcs12.read_pkcs12, data, PASSWORD) == "p12_unreadable"


def test_damaged_p12_content_is_unreadable_not_a_wrong_password(openssl_p12):
    # Damage the certificate bag but keep the MAC right: the password is proven, the content is not.
    import hashlib
    import hmac as hmac_mod

    from pyasn1_alt_modules import rfc7292
    data = openssl_p12(PASSWORD, iterations=16)
    pfx, _ = decoder.decode(data, asn1Spec=rfc7292.PFX())
    content, _ = decoder.decode(bytes(pfx["authSafe"]["content"]), asn1Spec=univ.OctetString())
    inner = bytearray(bytes(content))
    inner[-40] ^= 0xFF  # inside the last bag's encrypted key
    mac_data = pfx["macData"]
    hash_name = pkcs12._MAC_HASHES[str(mac_data["mac"]["digestAlgorithm"]["algorithm"])]
    mac_key = kdf.pkcs12_kdf(hash_name, PASSWORD.encode("utf-16-be") + b"\0\0", bytes(mac_data["macSalt"]),
                                int(mac_data["iterations"]), 3, hashlib.new(hash_name).digest_size)
    pfx["authSafe"]["content"] = univ.Any(encoder.encode(univ.OctetString(bytes(inner))))
    mac_data["mac"]["digest"] = hmac_mod.new(mac_key, bytes(inner), hash_name).digest()
    assert _code(pkcs12.read_pkcs12, encoder.encode(pfx), PASSWORD) == "p12_unreadable"


def test_p12_huge_mac_iterations_are_refused(openssl_p12):
    data = openssl_p12(PASSWORD, iterations=0x10000)
    # The MAC's INTEGER 65536 comes last in the file; raise it to 8388607, over the bound.
    i = data.rindex(b"\x02\x03\x01\x00\x00")
    patched = data[:i] + b"\x02\x03\x7f\xff\xff" + data[i + 5:]
    with pytest.raises(PkiError) as e:
        pkcs12.read_pkcs12(patched, PASSWORD)
    assert e.value.code == "kdf_over_cap" and "iteration" in e.value.detail


def test_writer_refuses_iterations_it_could_not_read_back(ee_key):
    for iterations in (0, npki.MAX_ITERATIONS + 1):
        assert _code(npki.encrypt_private_key, ee_key, PASSWORD, None, iterations) == "key_unsupported"


@pytest.mark.parametrize("scheme", PBES2_SCHEMES)
def test_pbes2_huge_iteration_count_is_refused_before_deriving(ee_key, scheme):
    data = npki.encrypt_private_key(ee_key, PASSWORD, None, iterations=0x10000, scheme=scheme)
    patched = data.replace(b"\x02\x03\x01\x00\x00", b"\x02\x03\x7f\xff\xff", 1)
    assert patched != data
    with pytest.raises(PkiError) as e:
        npki.read_private_key(patched, PASSWORD)
    assert e.value.code == "kdf_over_cap" and "iteration" in e.value.detail
