"""Shared fixtures for the pki tests: one CA hierarchy per session, an end-entity key, the NPKI vectors."""

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# pytest puts this folder, not the repository, on sys.path; the package under test lives at the root.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from pki import ca, profile, serials  # noqa: E402
from tests import npki_vector  # noqa: E402

# The NPKI vector ships in the pypinksign package (tests/npki_vector.py).
VECTORS = npki_vector.folder() / "pypinksign"
ORG = "CertCenter"
NOW = dt.datetime(2025, 3, 2, 5, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def vectors() -> Path:
    return VECTORS


@dataclass
class Hierarchy:
    """A whole CA, the root's key included (the tests play every part of a ceremony)."""
    root_cert: x509.Certificate
    root_key: object
    issuing_cert: x509.Certificate
    issuing_key: object
    ocsp_cert: x509.Certificate
    ocsp_key: object


def hierarchy(root_cert, root_key, now: dt.datetime) -> Hierarchy:
    issuing_cert, issuing_key = ca.create_issuing(ORG, root_cert, root_key, profile.DEFAULT_POLICY_ARC, now)
    ocsp_cert, ocsp_key = ca.create_signer("ocsp", ORG, issuing_cert, issuing_key, now)
    return Hierarchy(root_cert, root_key, issuing_cert, issuing_key, ocsp_cert, ocsp_key)


@pytest.fixture(scope="session")
def ca_keys() -> Hierarchy:
    # RSA-3072 key generation is the slow part of the suite; certificates are immutable, so share them.
    return hierarchy(*ca.create_root(ORG, NOW), NOW)


@pytest.fixture(scope="session")
def ee_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def make_request(ee_key):
    """EndEntityRequest for the standard test customer; keyword arguments override fields."""
    def make(**overrides) -> profile.EndEntityRequest:
        fields = dict(
            cert_type=profile.CERT_TYPES["personal-banking"],
            holder_name="홍길동",
            unique_digits="0012345678901234",
            bank_code="CCBANK",
            ca_org=ORG,
            public_key=ee_key.public_key(),
            not_before=NOW,
            not_after=profile.validity_end(NOW),
            serial=serials.random_serial(),
            policy_arc=profile.DEFAULT_POLICY_ARC,
            urls=profile.urls_for("https://cc.example.kr/"),
            identify_data=None,
        )
        fields.update(overrides)
        return profile.EndEntityRequest(**fields)
    return make


@pytest.fixture(scope="session")
def live_ca(ca_keys) -> Hierarchy:
    """An issuing CA and OCSP signer valid on the real clock, under the session root.

    OpenSSL checks validity against the real clock, and the session OCSP signer (30 days from
    NOW) has long expired there; the root (20 years from NOW) has not.
    """
    return hierarchy(ca_keys.root_cert, ca_keys.root_key, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))


@pytest.fixture
def issue_ee(make_request):
    """issue_ee(keys, now) -> an end-entity certificate issued by keys.issuing_cert from `now`."""
    def issue(keys: Hierarchy, now: dt.datetime, **overrides):
        req = make_request(not_before=now, not_after=profile.validity_end(now), **overrides)
        return ca.sign_certificate(profile.end_entity_builder(req, keys.issuing_cert), keys.issuing_key)
    return issue


@pytest.fixture(scope="session")
def ee_cert(ca_keys, ee_key):
    """The standard test customer's certificate for ee_key, issued by the session CA."""
    req = profile.EndEntityRequest(
        cert_type=profile.CERT_TYPES["personal-banking"], holder_name="홍길동", unique_digits="0012345678901234",
        bank_code="CCBANK", ca_org=ORG, public_key=ee_key.public_key(), not_before=NOW,
        not_after=profile.validity_end(NOW), serial=serials.random_serial(), policy_arc=profile.DEFAULT_POLICY_ARC,
        urls=profile.urls_for("https://cc.example.kr/"), identify_data=None)
    return ca.sign_certificate(profile.end_entity_builder(req, ca_keys.issuing_cert), ca_keys.issuing_key)


@pytest.fixture(scope="session")
def openssl_p12(tmp_path_factory, ee_key, ee_cert):
    """openssl_p12(password, legacy=False, iterations=2048) -> a .p12 of ee_key/ee_cert written by
    `openssl pkcs12 -export`, with `-legacy` giving RC2-40 certificates and a 3DES key bag."""
    import subprocess

    from cryptography.hazmat.primitives import serialization

    folder = tmp_path_factory.mktemp("openssl-p12")
    (folder / "key.pem").write_bytes(ee_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / "cert.pem").write_bytes(ee_cert.public_bytes(serialization.Encoding.PEM))

    def make(password: str, legacy: bool = False, iterations: int = 2048) -> bytes:
        out = folder / f"{int(legacy)}-{iterations}.p12"
        run = subprocess.run(["openssl", "pkcs12", "-export", "-in", "cert.pem", "-inkey", "key.pem",
                              "-out", out.name, "-passout", f"pass:{password}", "-iter", str(iterations)]
                             + (["-legacy"] if legacy else []), cwd=folder, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return out.read_bytes()
    return make
