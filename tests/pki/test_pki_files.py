"""PKCS#12, PEM and DER output, checked with both OpenSSL and cryptography."""

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12 as crypto_pkcs12

from pki import ca, files, profile
from pki.errors import PkiError

PASSWORD = "Kor3a!Bank#"


def _ee_cert(ca_keys, make_request):
    return ca.sign_certificate(profile.end_entity_builder(make_request(), ca_keys.issuing_cert), ca_keys.issuing_key)


def test_pkcs12_opens_in_openssl_and_cryptography(ca_keys, ee_key, make_request, tmp_path):
    cert = _ee_cert(ca_keys, make_request)
    chain = [ca_keys.issuing_cert, ca_keys.root_cert]
    p12 = files.pkcs12(ee_key, cert, chain, PASSWORD, "홍길동 certificate")

    (tmp_path / "f.p12").write_bytes(p12)
    run = subprocess.run(["openssl", "pkcs12", "-in", "f.p12", "-passin", f"pass:{PASSWORD}", "-info", "-noout"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # cryptography fixes the MAC's own iteration count (2048); only the hash is ours to choose.
    assert "MAC: sha256," in run.stderr
    assert "PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256" in run.stderr

    loaded = crypto_pkcs12.load_pkcs12(p12, PASSWORD.encode())
    assert loaded.key.private_numbers() == ee_key.private_numbers()
    assert loaded.cert.certificate == cert
    assert loaded.cert.friendly_name == "홍길동 certificate".encode()
    assert [c.certificate for c in loaded.additional_certs] == chain

    with pytest.raises(ValueError):
        crypto_pkcs12.load_pkcs12(p12, b"wrong")


def test_pkcs12_needs_a_password(ca_keys, ee_key, make_request):
    with pytest.raises(PkiError) as e:
        files.pkcs12(ee_key, _ee_cert(ca_keys, make_request), [], "", "x")
    assert e.value.code == "password_required"


def test_pem_der_and_chain(ca_keys):
    root, issuing = ca_keys.root_cert, ca_keys.issuing_cert
    assert x509.load_der_x509_certificate(files.cert_der(root)) == root
    assert x509.load_pem_x509_certificate(files.cert_pem(root)) == root
    assert x509.load_pem_x509_certificates(files.chain_pem([issuing, root])) == [issuing, root]
