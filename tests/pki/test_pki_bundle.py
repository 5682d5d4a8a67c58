"""Recognising certificate files by content (read_bundle), opening them (open_bundle), describe(), and
a property test that no input, however broken, raises anything but PkiError."""

import io
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5208

from pki import bundle, files, npki, pkcs12
from pki.errors import PkiError

PASSWORD = "Kor3a!Bank#"
RANDOM_NUM = bytes(range(1, 21))


def _code(call, *args) -> str:
    with pytest.raises(PkiError) as e:
        call(*args)
    return e.value.code


@pytest.fixture(scope="module")
def key_file(ee_key):
    # Few iterations: the property test below decrypts thousands of variants of it.
    return npki.encrypt_private_key(ee_key, PASSWORD, RANDOM_NUM, iterations=8)


@pytest.fixture(scope="module")
def cert_der(ee_cert):
    return files.cert_der(ee_cert)


@pytest.fixture(scope="module")
def p12(ee_key, ee_cert, ca_keys):
    return files.pkcs12(ee_key, ee_cert, [ca_keys.issuing_cert], PASSWORD, "x")


@pytest.fixture(scope="module")
def legacy_p12(openssl_p12):
    return openssl_p12(PASSWORD, legacy=True, iterations=4)


@pytest.fixture(scope="module")
def npki_zip(ee_cert, key_file):
    return npki.npki_zip(ee_cert, key_file, "CertCenter")


def _zip(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, content in entries:
            zf.writestr(name, content)
    return out.getvalue()


def test_npki_zip(npki_zip, ee_cert, key_file, ee_key):
    b = bundle.read_bundle([("내 인증서.zip", npki_zip)])
    assert b == bundle.Bundle(ee_cert, key_file, None, ["NPKI zip"])
    opened = bundle.open_bundle(b, PASSWORD)
    assert opened.private_key.private_numbers() == ee_key.private_numbers()
    assert (opened.certificate, opened.random_num, opened.scheme, opened.extra_certs) == \
        (ee_cert, RANDOM_NUM, "seed-cbc-sha1", [])


def test_zip_ignores_the_key_management_pair(ee_cert, cert_der, key_file, ca_keys):
    # Real NPKI folders also hold kmCert.der/kmPri.key; only the signing pair is meant.
    data = _zip([("NPKI/yessign/USER/cn=x/signCert.der", cert_der), ("NPKI/yessign/USER/cn=x/signPri.key", key_file),
                 ("NPKI/yessign/USER/cn=x/kmCert.der", files.cert_der(ca_keys.root_cert)),
                 ("NPKI/yessign/USER/cn=x/kmPri.key", b"other"), ("NPKI/yessign/", b"")])
    b = bundle.read_bundle([("npki.zip", data)])
    assert (b.certificate, b.encrypted_key) == (ee_cert, key_file)


def test_ca_certificates_in_a_zip_or_beside_the_files_are_the_chain(ee_cert, cert_der, key_file, ca_keys):
    issuing, root = ca_keys.issuing_cert, ca_keys.root_cert
    data = _zip([("NPKI/yessign/USER/cn=x/signCert.der", cert_der), ("NPKI/yessign/USER/cn=x/signPri.key", key_file),
                 ("NPKI/yessign/CA/issuing.cer", files.cert_der(issuing)),
                 ("NPKI/yessign/CA/root.pem", files.cert_pem(root)), ("NPKI/yessign/CA/notes.pem", b"junk")])
    b = bundle.read_bundle([("npki.zip", data)])
    assert (b.certificate, b.encrypted_key, b.ca_certs) == (ee_cert, key_file, [issuing, root])
    assert bundle.open_bundle(b, PASSWORD).extra_certs == [issuing, root]
    # Loose: a CA certificate file, and a PEM file holding the certificate and its chain.
    loose = bundle.read_bundle([("ca.der", files.cert_der(issuing)), ("c", cert_der), ("k", key_file)])
    assert (loose.certificate, loose.ca_certs, loose.names) == \
        (ee_cert, [issuing], ["CA certificate", "signCert.der", "signPri.key"])
    chain_pem = files.cert_pem(ee_cert) + files.cert_pem(issuing)
    assert bundle.read_bundle([("chain.pem", chain_pem), ("k", key_file)]).ca_certs == [issuing]


def test_zip_with_backslash_separators(ee_cert, cert_der, key_file):
    data = _zip([("NPKI\\yessign\\USER\\cn=x\\SIGNCERT.DER", cert_der),
                 ("NPKI\\yessign\\USER\\cn=x\\signPri.key", key_file)])
    assert bundle.read_bundle([("npki.zip", data)]).certificate == ee_cert


@pytest.mark.parametrize("scheme", list(npki.SCHEMES))
def test_loose_files_with_misleading_names(ee_key, ee_cert, cert_der, scheme):
    key_file = npki.encrypt_private_key(ee_key, PASSWORD, RANDOM_NUM, iterations=8, scheme=scheme)
    # Names swapped on purpose: recognition is by content.
    b = bundle.read_bundle([("signPri.key", cert_der), ("signCert.der", key_file)])
    assert (b.certificate, b.encrypted_key, b.names) == (ee_cert, key_file, ["signCert.der", "signPri.key"])
    opened = bundle.open_bundle(bundle.read_bundle([("a.bin", key_file), ("b.bin", cert_der)]), PASSWORD)
    assert (opened.scheme, opened.random_num) == (scheme, RANDOM_NUM)


def test_pem_certificate_and_pem_key(ee_key, ee_cert, key_file):
    pem_key = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + __import__("base64").encodebytes(key_file) + \
        b"-----END ENCRYPTED PRIVATE KEY-----\n"
    b = bundle.read_bundle([("cert.txt", files.cert_pem(ee_cert)), ("key.pem", pem_key)])
    assert (b.certificate, b.encrypted_key) == (ee_cert, key_file)
    assert bundle.open_bundle(b, PASSWORD).random_num == RANDOM_NUM
    # And a PEM certificate with the DER key.
    assert bundle.open_bundle(bundle.read_bundle([("c", files.cert_pem(ee_cert)), ("k", key_file)]), PASSWORD)


def test_p12_modern_and_legacy(p12, legacy_p12, ee_key, ee_cert, ca_keys):
    for data, extra in ((p12, [ca_keys.issuing_cert]), (legacy_p12, [])):
        b = bundle.read_bundle([("whatever.dat", data)])
        assert (b.p12, b.certificate, b.encrypted_key, b.names) == (data, None, None, ["cert.p12"])
        opened = bundle.open_bundle(b, PASSWORD)
        assert opened.private_key.private_numbers() == ee_key.private_numbers()
        assert (opened.certificate, opened.random_num, opened.scheme, opened.extra_certs) == \
            (ee_cert, None, "pkcs12", extra)
        assert _code(bundle.open_bundle, b, "wrong") == "p12_password_incorrect"


def test_vector_files(vectors):
    b = bundle.read_bundle([(p.name, p.read_bytes()) for p in sorted(vectors.glob("sign*"))])
    opened = bundle.open_bundle(b, (vectors / "password.txt").read_text().strip())
    assert opened.random_num.hex() == "7858b4328390805129f01c97fe6ca4a520cbd479"


def test_wrong_password_and_mismatch(ee_cert, cert_der, key_file, ca_keys):
    b = bundle.read_bundle([("a", cert_der), ("b", key_file)])
    assert _code(bundle.open_bundle, b, "wrong") == "key_password_incorrect"
    other = bundle.read_bundle([("a", files.cert_der(ca_keys.root_cert)), ("b", key_file)])
    assert _code(bundle.open_bundle, other, PASSWORD) == "key_mismatch"


def test_missing_halves(cert_der, key_file):
    assert _code(bundle.open_bundle, bundle.read_bundle([("a", cert_der)]), PASSWORD) == "bundle_no_key"
    assert _code(bundle.open_bundle, bundle.read_bundle([("b", key_file)]), PASSWORD) == "bundle_no_certificate"


@pytest.mark.parametrize("make", [
    lambda c, k, p, z: [("a", c), ("b", c)],
    lambda c, k, p, z: [("a", k), ("b", k)],
    lambda c, k, p, z: [("a", p), ("b", c)],
    lambda c, k, p, z: [("a", p), ("b", k)],
    lambda c, k, p, z: [("a", z), ("b", k)],
    lambda c, k, p, z: [("a", p), ("b", p)],
])
def test_ambiguous(cert_der, key_file, p12, npki_zip, make):
    assert _code(bundle.read_bundle, make(cert_der, key_file, p12, npki_zip)) == "bundle_ambiguous"


def test_two_certificates_in_one_zip(cert_der, key_file):
    data = _zip([("A/signCert.der", cert_der), ("B/signCert.der", cert_der), ("A/signPri.key", key_file)])
    assert _code(bundle.read_bundle, [("z.zip", data)]) == "bundle_ambiguous"


def test_empty_and_unknown(cert_der):
    assert _code(bundle.read_bundle, []) == "bundle_empty"
    for junk in (b"", b"hello", b"\x30\x00", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"):
        with pytest.raises(PkiError) as e:
            bundle.read_bundle([("signCert.der", cert_der), ("notes.txt", junk)])
        assert (e.value.code, e.value.detail) == ("bundle_unknown_file", "notes.txt")
    # A zip without the NPKI pair, and one whose signCert.der is not a certificate.
    with pytest.raises(PkiError) as e:
        bundle.read_bundle([("photos.zip", _zip([("a.jpg", b"jpeg")]))])
    assert (e.value.code, e.value.detail) == ("bundle_unknown_file", "photos.zip")
    with pytest.raises(PkiError) as e:
        bundle.read_bundle([("n.zip", _zip([("NPKI/signCert.der", b"not a certificate")]))])
    assert (e.value.code, e.value.detail) == ("bundle_unknown_file", "n.zip:NPKI/signCert.der")


def test_zip_bomb_is_refused_before_inflating(cert_der):
    bomb = _zip([("NPKI/x/USER/y/signCert.der", cert_der), ("NPKI/x/USER/y/signPri.key", b"\0" * (8 * 1024 * 1024))])
    assert len(bomb) < 64 * 1024  # well under every input bound: only the uncompressed size gives it away
    assert _code(bundle.read_bundle, [("npki.zip", bomb)]) == "bundle_zip_refused"


def test_zip_lying_about_its_size_is_unreadable(cert_der):
    data = bytearray(_zip([("signCert.der", cert_der * 4)], zipfile.ZIP_STORED))
    # Shrink the declared size in both headers; the extra bytes then fail the CRC.
    size = (len(cert_der) * 4).to_bytes(4, "little")
    data = bytes(data).replace(size, (len(cert_der)).to_bytes(4, "little"))
    assert _code(bundle.read_bundle, [("z.zip", data)]) in ("bundle_zip_unreadable", "bundle_unknown_file")


def test_too_many_zip_entries(cert_der):
    data = _zip([(f"f{i}", b"x") for i in range(bundle.MAX_ZIP_ENTRIES)] + [("signCert.der", cert_der)])
    assert _code(bundle.read_bundle, [("z.zip", data)]) == "bundle_zip_refused"


@pytest.mark.parametrize("name", ["../signCert.der", "NPKI/../../etc/signCert.der", "/etc/signCert.der",
                                  "C:/NPKI/signCert.der", "NPKI\\..\\signCert.der", "\\\\host\\signCert.der"])
def test_path_tricks_are_refused(cert_der, name):
    assert _code(bundle.read_bundle, [("z.zip", _zip([(name, cert_der)]))]) == "bundle_zip_refused"


def test_encrypted_zip_entry_is_refused(cert_der):
    data = bytearray(_zip([("signCert.der", cert_der)], zipfile.ZIP_STORED))
    data[6] |= 1  # general purpose flag, local header
    data[data.rindex(b"PK\x01\x02") + 8] |= 1  # and central directory
    assert _code(bundle.read_bundle, [("z.zip", bytes(data))]) == "bundle_zip_refused"


def test_total_input_bound(cert_der):
    assert _code(bundle.read_bundle, [("a", cert_der), ("pad", b"\0" * bundle.MAX_BUNDLE_BYTES)]) == "bundle_too_large"


def test_describe_right_password(ee_cert, npki_zip):
    info = bundle.describe(bundle.read_bundle([("z", npki_zip)]), PASSWORD)
    assert info == {
        "recognised": ["NPKI zip"],
        "subject": ee_cert.subject.rfc4514_string(), "issuer": ee_cert.issuer.rfc4514_string(),
        "serial": f"{ee_cert.serial_number:040x}",
        "not_before": "2025-03-02T05:00:00+00:00", "not_after": ee_cert.not_valid_after_utc.isoformat(),
        "key_scheme": "seed-cbc-sha1", "password_opens": True, "key_matches": True,
        "random_num_present": True, "random_num": RANDOM_NUM.hex(), "problem": None, "ok": True,
    }
    assert info["subject"].startswith("CN=홍길동")  # RFC 4514 order: most specific first


def test_describe_wrong_and_no_password(npki_zip):
    b = bundle.read_bundle([("z", npki_zip)])
    wrong = bundle.describe(b, "wrong")
    assert (wrong["password_opens"], wrong["key_matches"], wrong["random_num_present"], wrong["problem"],
            wrong["ok"]) == (False, None, None, "key_password_incorrect", False)
    assert wrong["subject"] is not None and wrong["key_scheme"] == "seed-cbc-sha1"
    none = bundle.describe(b, None)
    assert (none["password_opens"], none["key_matches"], none["problem"], none["ok"]) == (None, None, None, False)


def test_describe_mismatch_and_p12(ca_keys, key_file, p12, ee_cert):
    info = bundle.describe(bundle.read_bundle([("a", files.cert_der(ca_keys.root_cert)), ("b", key_file)]), PASSWORD)
    assert (info["password_opens"], info["key_matches"], info["problem"], info["ok"]) == \
        (True, False, "key_mismatch", False)
    b = bundle.read_bundle([("p", p12)])
    locked = bundle.describe(b, "wrong")
    assert (locked["key_scheme"], locked["password_opens"], locked["subject"]) == ("pkcs12", False, None)
    opened = bundle.describe(b, PASSWORD)
    assert (opened["subject"], opened["random_num_present"], opened["random_num"], opened["ok"]) == \
        (ee_cert.subject.rfc4514_string(), False, None, True)


def test_describe_unsupported_scheme_is_a_finding(cert_der):
    # A PKCS#12 3DES PBE inside a PKCS#8 file: a well-formed key file, in a scheme we do not take.
    epki = rfc5208.EncryptedPrivateKeyInfo()
    epki["encryptionAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.840.113549.1.12.1.3")
    epki["encryptedData"] = b"\0" * 32
    b = bundle.read_bundle([("a", cert_der), ("b", encoder.encode(epki))])
    info = bundle.describe(b, "pw")
    assert (info["key_scheme"], info["password_opens"], info["problem"]) == (None, None, "key_unsupported")
    assert info["subject"] is not None
    assert _code(bundle.open_bundle, b, "pw") == "key_unsupported"


def test_describe_raises_for_unreadable_files(cert_der):
    with pytest.raises(PkiError):
        bundle.describe(bundle.read_bundle([("zip", b"PK\x03\x04broken")]), PASSWORD)


# Property test: whatever the bytes, only PkiError.

def _mutations(seed: bytes):
    truncated = st.integers(0, max(len(seed) - 1, 0)).map(lambda n: seed[:n])
    flipped = st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 7)), min_size=1, max_size=4).map(
        lambda flips: _flip(seed, flips))
    spliced = st.tuples(st.integers(0, len(seed)), st.binary(max_size=16)).map(
        lambda t: seed[:t[0]] + t[1] + seed[t[0] + len(t[1]):])
    return st.one_of(truncated, flipped, spliced, st.binary(max_size=400))


def _flip(seed: bytes, flips) -> bytes:
    data = bytearray(seed)
    for index, bit in flips:
        data[index] ^= 1 << bit
    return bytes(data)


def _only_pki_error(call, *args):
    try:
        call(*args)
    except PkiError:
        pass


_FAST = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


@pytest.fixture(scope="module")
def seeds(cert_der, key_file, legacy_p12, npki_zip):
    # Not files.pkcs12's own output: its 600,000 iterations make each mutated example cost a second.
    # An EC key for the extra schemes: loading it is far cheaper than checking an RSA key each time.
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = [npki.encrypt_private_key(ec_key, PASSWORD, RANDOM_NUM, iterations=8, scheme=scheme)
            for scheme in ("seed-cbc-sha1", "pbes2-seed-sha256", "pbes2-aes256")]
    return {"key": keys, "p12": [legacy_p12], "zip": [npki_zip], "cert": [cert_der]}


@pytest.mark.parametrize("kind", ["key", "p12"])
def test_readers_raise_only_pki_error(seeds, kind):
    reader = npki.read_private_key if kind == "key" else pkcs12.read_pkcs12

    @_FAST
    @given(st.sampled_from(seeds[kind]).flatmap(_mutations))
    def run(data):
        _only_pki_error(reader, data, PASSWORD)
    run()


def test_bundle_raises_only_pki_error(seeds):
    whole = seeds["zip"] + seeds["key"] + seeds["p12"] + seeds["cert"]

    @_FAST
    @given(st.lists(st.tuples(st.text(max_size=8), st.sampled_from(whole).flatmap(_mutations)), max_size=3),
           st.sampled_from([PASSWORD, "wrong", ""]))
    def run(uploads, password):
        try:
            b = bundle.read_bundle(uploads)
        except PkiError:
            return
        _only_pki_error(bundle.open_bundle, b, password)
        _only_pki_error(bundle.describe, b, password)
    run()


def test_open_bundle_on_damaged_halves(seeds, cert_der):
    # read_bundle accepts any well-formed EncryptedPrivateKeyInfo; opening must still only raise PkiError.
    @_FAST
    @given(st.sampled_from(seeds["key"]).flatmap(_mutations))
    def run(key):
        _only_pki_error(bundle.open_bundle, bundle.Bundle(x509.load_der_x509_certificate(cert_der), key, None, []),
                        PASSWORD)
        _only_pki_error(bundle.describe, bundle.Bundle(None, key, None, []), PASSWORD)
    run()
