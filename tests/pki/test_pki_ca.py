"""The CA hierarchy: root, issuing CA, OCSP signer, chain verification by OpenSSL, CA key storage."""

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from pki import ca, files, lint, profile
from pki.errors import PkiError
from pki.signer import FileSigner


def test_root(ca_keys):
    root = ca_keys.root_cert
    assert ca_keys.root_key.public_key().key_size == 3072
    assert root.subject == root.issuer
    assert root.subject.rfc4514_string() == "CN=CertCenter Root CA,O=CertCenter,C=KR"
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert root.not_valid_after_utc.year - root.not_valid_before_utc.year == 20


def test_issuing(ca_keys):
    issuing = ca_keys.issuing_cert
    assert ca_keys.issuing_key.public_key().key_size == 2048
    assert issuing.issuer == ca_keys.root_cert.subject
    assert issuing.subject.rfc4514_string() == "CN=CertCenter Issuing CA 1,O=CertCenter,C=KR"
    bc = issuing.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    policies = {p.policy_identifier for p in issuing.extensions.get_extension_for_class(x509.CertificatePolicies).value}
    assert policies == {profile.policy_oid(profile.DEFAULT_POLICY_ARC, t) for t in profile.CERT_TYPES.values()}
    assert issuing.not_valid_after_utc <= ca_keys.root_cert.not_valid_after_utc
    issuing.verify_directly_issued_by(ca_keys.root_cert)


def test_issuing_never_outlives_root(ca_keys):
    late = ca_keys.root_cert.not_valid_after_utc - dt.timedelta(days=100)
    cert, _ = ca.create_issuing("CertCenter", ca_keys.root_cert, ca_keys.root_key, profile.DEFAULT_POLICY_ARC, late)
    assert cert.not_valid_after_utc == ca_keys.root_cert.not_valid_after_utc


def test_ocsp_signer(ca_keys):
    ocsp = ca_keys.ocsp_cert
    ocsp.verify_directly_issued_by(ca_keys.issuing_cert)
    assert ocsp.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])
    assert ocsp.extensions.get_extension_for_class(x509.OCSPNoCheck)
    ku = ocsp.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert ocsp.not_valid_after_utc - ocsp.not_valid_before_utc == dt.timedelta(days=30)


def test_ca_certificates_lint_clean(ca_keys):
    for cert in (ca_keys.root_cert, ca_keys.issuing_cert, ca_keys.ocsp_cert):
        assert lint.lint_certificate(cert) == []


def test_openssl_verifies_the_chain(ca_keys, make_request, tmp_path):
    now = dt.datetime.now(dt.UTC)
    # OpenSSL checks validity against the real clock, so this chain starts now.
    root, root_key = ca_keys.root_cert, ca_keys.root_key
    issuing, issuing_key = ca.create_issuing("CertCenter", root, root_key, profile.DEFAULT_POLICY_ARC, now)
    ee = ca.sign_certificate(profile.end_entity_builder(
        make_request(not_before=now, not_after=profile.validity_end(now)), issuing), issuing_key)
    (tmp_path / "root.pem").write_bytes(files.cert_pem(root))
    (tmp_path / "issuing.pem").write_bytes(files.cert_pem(issuing))
    (tmp_path / "ee.pem").write_bytes(files.cert_pem(ee))
    run = subprocess.run(
        ["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem",
         "-policy_check", "-policy", profile.DEFAULT_POLICY_ARC + ".1.1.4", "-explicit_policy", "ee.pem"],
        cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ee.pem: OK"


def test_key_pem_round_trip(ca_keys):
    pem = ca_keys.issuing_key.encrypted_pem(b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = FileSigner.load(pem, b"correct horse")
    assert key.public_key() == ca_keys.issuing_key.public_key()
    assert key.sign(b"x") == ca_keys.issuing_key.sign(b"x")
    with pytest.raises(PkiError) as e:
        FileSigner.load(pem, b"wrong")
    assert e.value.code == "ca_passphrase_incorrect"
    with pytest.raises(PkiError) as e:
        FileSigner.load(b"garbage", b"correct horse")
    assert e.value.code == "ca_key_unreadable"


def test_fingerprint(ca_keys):
    fp = ca.fingerprint(ca_keys.root_cert)
    assert len(fp) == 95 and fp == fp.upper() and fp.count(":") == 31
