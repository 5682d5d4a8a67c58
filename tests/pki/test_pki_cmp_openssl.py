"""`openssl cmp` (OpenSSL 3.0) against pki.cmp over real HTTP: ir with a reference number and
authorisation code (RSA-2048 and P-256, with certConf or implicit confirmation), kur and rr
signed with the current certificate, genm for the CA certificates, and refusals the client reads."""

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyasn1.codec.der import decoder, encoder
from pyasn1_alt_modules import rfc9810

from tests.pki.cmp_server import (
    CODE,
    REF,
    CmpServer,
    cmp_signer_pair,  # noqa: F401  (a fixture)
    openssl_cmp,
    pem,
    pem_key,
)


@pytest.fixture
def server(live_ca, cmp_signer_pair):
    server = CmpServer(live_ca, *cmp_signer_pair)
    yield server
    server.close()


@pytest.fixture
def folder(tmp_path, live_ca):
    (tmp_path / "root.pem").write_bytes(pem(live_ca.root_cert))
    (tmp_path / "issuing.pem").write_bytes(pem(live_ca.issuing_cert))
    return tmp_path


def _ir(server, folder, key, *extra):
    (folder / "new.key").write_bytes(pem_key(key))
    return openssl_cmp(server, folder, "-cmd", "ir", "-ref", REF, "-secret", f"pass:{CODE}",
                       "-newkey", "new.key", "-subject", "/CN=Hong Gildong", "-certout", "new.pem",
                       "-cacertsout", "capubs.pem", "-out_trusted", "root.pem", "-untrusted",
                       "issuing.pem", *extra)


def _verify(folder, cert_file="new.pem"):
    run = subprocess.run(["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem",
                          cert_file], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("key", [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1())],
                         ids=["rsa-2048", "p-256"])
def test_ir_with_reference_and_code_then_certconf(server, folder, key, live_ca):
    _ir(server, folder, key)
    assert server.seen == ["ir", "certConf"]
    [cert] = server.confirmed
    got = x509.load_pem_x509_certificate((folder / "new.pem").read_bytes())
    assert got == cert and got.public_key() == key.public_key()
    assert got.subject.rfc4514_string() == "CN=Hong Gildong"
    _verify(folder)
    # caPubs of a PBM-protected ip: the root, which the client may trust directly.
    assert x509.load_pem_x509_certificates((folder / "capubs.pem").read_bytes()) == [live_ca.root_cert]


def test_ir_with_implicit_confirmation(server, folder):
    _ir(server, folder, ec.generate_private_key(ec.SECP256R1()), "-implicit_confirm")
    assert server.seen == ["ir"] and len(server.confirmed) == 1 and not server.pending
    _verify(folder)


def test_implicit_confirmation_not_granted_means_certconf(server, folder):
    server.implicit_confirm = False
    _ir(server, folder, ec.generate_private_key(ec.SECP256R1()), "-implicit_confirm")
    assert server.seen == ["ir", "certConf"] and len(server.confirmed) == 1


def test_wrong_code_is_refused_with_a_signed_error(server, folder):
    (folder / "new.key").write_bytes(pem_key(ec.generate_private_key(ec.SECP256R1())))
    out = openssl_cmp(server, folder, "-cmd", "ir", "-ref", REF, "-secret", "pass:WRONG-CODE-000",
                      "-newkey", "new.key", "-subject", "/CN=x", "-certout", "new.pem",
                      "-trusted", "root.pem", "-untrusted", "issuing.pem", expect_ok=False)
    assert [e.code for e in server.refusals] == ["cmp_bad_mac"]
    # The client verified our signed error message and shows its failure bit and text.
    assert "badMessageCheck" in out and "cmp_bad_mac" in out
    assert not server.confirmed and not (folder / "new.pem").exists()


@pytest.fixture
def enrolled(server, folder):
    """A certificate obtained by ir, its key in cur.key and the certificate in cur.pem."""
    key = rsa.generate_private_key(65537, 2048)
    _ir(server, folder, key, "-implicit_confirm")
    (folder / "new.pem").rename(folder / "cur.pem")
    (folder / "new.key").rename(folder / "cur.key")
    server.seen.clear()
    return server.confirmed.pop()


def test_kur_signed_with_the_current_certificate(server, folder, enrolled):
    new_key = ec.generate_private_key(ec.SECP256R1())
    (folder / "new.key").write_bytes(pem_key(new_key))
    openssl_cmp(server, folder, "-cmd", "kur", "-cert", "cur.pem", "-key", "cur.key",
                "-newkey", "new.key", "-certout", "new.pem", "-trusted", "root.pem",
                "-untrusted", "issuing.pem", "-out_trusted", "root.pem")
    assert server.seen == ["kur", "certConf"]
    successor = x509.load_pem_x509_certificate((folder / "new.pem").read_bytes())
    assert server.confirmed == [successor]
    assert successor.public_key() == new_key.public_key() and successor.subject == enrolled.subject
    _verify(folder)


def test_rr_signed_with_the_certificate(server, folder, enrolled):
    openssl_cmp(server, folder, "-cmd", "rr", "-cert", "cur.pem", "-key", "cur.key", "-oldcert", "cur.pem",
                "-revreason", "4", "-trusted", "root.pem", "-untrusted", "issuing.pem")
    assert server.seen == ["rr"]
    assert server.revoked == {enrolled.serial_number: x509.ReasonFlags.superseded}


def test_genm_returns_the_ca_certificates(server, folder, live_ca):
    out = openssl_cmp(server, folder, "-cmd", "genm", "-infotype", "caCerts", "-ref", REF,
                      "-secret", f"pass:{CODE}", "-rspout", "genp.der")
    assert server.seen == ["genm"]
    assert "genp contains ITAV of type: id-it-caCerts" in out
    # OpenSSL 3.0 cannot save them (-cacertsout is for ip), so read the genp it accepted.
    genp = decoder.decode((folder / "genp.der").read_bytes(), asn1Spec=rfc9810.PKIMessage())[0]
    [info] = genp["body"]["genp"]
    certs = decoder.decode(bytes(info["infoValue"]), asn1Spec=rfc9810.CaCertsValue())[0]
    assert [x509.load_der_x509_certificate(encoder.encode(c)) for c in certs] == [
        live_ca.issuing_cert, live_ca.root_cert]
