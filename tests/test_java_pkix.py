"""The JDK's default PKIX validation, revocation checking on, run on our chains: by OCSP only
and by CRL distribution points only. Every certificate in the path needs its status, the
issuing CA's included: the root's pre-signed OCSP answer or its CRL gives it."""
import shutil
import subprocess

import pytest

from services import status
from tests.conftest import REPO
from tests.test_relying_party import record, rp  # noqa: F401  (fixtures: a served CA)

PROGRAM = REPO / "tests" / "java" / "PkixCheck.java"


def java_validates(rp, mode: str) -> str:
    java = shutil.which("java")
    if java is None:
        pytest.fail("no JDK: install default-jdk-headless (.ci/run does)")
    run = subprocess.run([java, str(PROGRAM), mode, "root.pem", "issuing.pem", "ee.pem"],
                         cwd=rp.folder, capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1), run.stderr
    return run.stdout.strip()


@pytest.mark.parametrize("mode, asked", [("ocsp", "/ocsp"), ("crldp", "/pki/root.crl")])
def test_the_jdk_accepts_a_good_certificate_and_rejects_a_revoked_one(rp, record, mode,
                                                                       asked):
    assert java_validates(rp, mode) == "VALID"
    assert rp.paths(asked), rp.hits            # the issuing CA's status was asked for too
    if mode == "ocsp":
        assert not rp.paths("/pki/crl/") and not rp.paths("/pki/root.crl"), rp.hits
    else:       # the certificate names its partition's CRL, which Java takes (its IDP matches)
        assert rp.paths("/pki/crl/") and not rp.paths("/ocsp"), rp.hits

    status.revoke_certificate(record, "key-compromise", actor="test")
    verdict = java_validates(rp, mode)
    assert verdict.startswith("INVALID REVOKED at 0"), verdict
