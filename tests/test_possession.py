"""Certificate login (proof of possession): with the files and the password, or with a
signature made by openssl from the command the page shows."""
import html
import io
import re
import subprocess

import pytest

from models import AuditEvent
from services import issuance, possession, status
from services.errors import DomainError
from tests.conftest import VECTORS, move_clock, verify_by_sms
from tests.test_web_support import english, error_summary, h1

PASSWORD = "Blue!sky42x"


@pytest.fixture
def issued(demo):
    result = issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                        actor="test", password=PASSWORD, offer_downloads=False)
    return result.certificate, {kind: content for kind, _n, _m, content in result.files}


def test_the_files_and_password_prove_possession(demo, issued):
    record, files = issued
    proved = possession.prove_with_files(demo["person"], [("NPKI.zip", files["npki"])],
                                         PASSWORD, "10.0.0.1")
    assert proved.id == record.id
    assert AuditEvent.select().where(AuditEvent.action == "possession.proved").count() == 1
    assert possession.prove_with_files(demo["person"], [("c.p12", files["p12"])], PASSWORD,
                                       "10.0.0.1").id == record.id


@pytest.mark.parametrize("change, code", [
    (lambda record: status.revoke_certificate(record, "superseded", actor="t"), "possession_revoked"),
    (lambda record: status.suspend_certificate(record, actor="t"), "possession_suspended"),
    (lambda record: move_clock(days=400), "possession_expired"),
])
def test_a_certificate_not_in_force_is_refused_with_its_reason(demo, issued, change, code):
    record, files = issued
    change(record)
    with pytest.raises(DomainError) as refused:
        possession.prove_with_files(demo["person"], [("NPKI.zip", files["npki"])], PASSWORD,
                                    "10.0.0.1")
    assert refused.value.code == code


def test_a_wrong_password_someone_elses_and_another_cas_certificate_are_refused(demo, issued):
    _record, files = issued
    with pytest.raises(DomainError) as wrong:
        possession.prove_with_files(demo["person"], [("NPKI.zip", files["npki"])],
                                    "Wrong!pass1x", "10.0.0.1")
    assert wrong.value.code == "password_wrong_for_files"
    with pytest.raises(DomainError) as foreign:
        possession.prove_with_files(demo["business"], [("NPKI.zip", files["npki"])], PASSWORD,
                                    "10.0.0.1")
    assert foreign.value.code == "possession_not_yours"
    vector = VECTORS / "pypinksign"
    with pytest.raises(DomainError) as not_ours:
        possession.prove_with_files(
            demo["person"], [("signCert.der", (vector / "signCert.der").read_bytes()),
                             ("signPri.key", (vector / "signPri.key").read_bytes())],
            (vector / "password.txt").read_text().splitlines()[0], "10.0.0.1")
    assert not_ours.value.code == "possession_not_ours"


@pytest.fixture
def signed_in(web, demo, issued):
    english(web)
    verify_by_sms(web, demo["person"])
    return web


def test_the_files_page_proves_possession(signed_in, issued):
    _record, files = issued
    signed_in.get("/my/check/files")
    response = signed_in.post("/my/check/files", {"files": [(io.BytesIO(files["p12"]), "a.p12")],
                                                  "password": "Wrong!pass1x"},
                              content_type="multipart/form-data")
    assert response.status_code == 400
    assert error_summary(response) == [("password", "The password is not right for these certificate files")]
    response = signed_in.post("/my/check/files", {"files": [(io.BytesIO(files["p12"]), "a.p12")],
                                                  "password": PASSWORD},
                              content_type="multipart/form-data")
    assert h1(response) == "Your certificate file is valid"


def test_the_openssl_command_on_the_page_makes_a_signature_that_proves_possession(
        signed_in, issued, tmp_path):
    record, files = issued
    page = signed_in.get("/my/check/signature").get_data(as_text=True)
    command = html.unescape(re.search(r'<pre class="command" id="command">(.*?)</pre>', page,
                                      re.S).group(1))
    (tmp_path / "certificate.p12").write_bytes(files["p12"])
    # As a person would run it, with the password given on the command line, not typed.
    command = command.replace("-nocerts -nodes", f"-nocerts -nodes -passin pass:{PASSWORD}")
    signature = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True,
                               text=True, check=True).stdout.strip()
    response = signed_in.post("/my/check/signature", {"signature": signature})
    assert h1(response) == "Your certificate file is valid", error_summary(response)
    assert record.serial in response.get_data(as_text=True)


def test_a_signature_works_once_and_a_wrong_one_is_refused(signed_in, issued, tmp_path):
    record, files = issued
    signed_in.get("/my/check/signature")
    response = signed_in.post("/my/check/signature", {"signature": "bm90IGEgc2lnbmF0dXJl" * 8})
    assert response.status_code == 400
    assert error_summary(response)[0][0] == "signature"
    response = signed_in.post("/my/check/signature", {"signature": "***"})
    assert error_summary(response) == [("signature", "Paste the signature as base64 text, as the command prints it")]


def test_a_challenge_older_than_5_minutes_is_refused(signed_in):
    signed_in.get("/my/check/signature")
    move_clock(minutes=5, seconds=1)
    response = signed_in.post("/my/check/signature", {"signature": "AAAA" * 40})
    assert response.status_code == 400
    assert error_summary(response) == [("signature", "The text to sign has expired. Sign the new text shown below")]


def test_the_certificate_login_pages_pass_axe(chromium, live, demo, issued):
    from tests.browser import assert_accessible, new_page, submit, verify_identity
    page = new_page(chromium, live, javascript=True)
    page.goto("/my/check/")
    verify_identity(page, demo["person"])
    assert "/my/check/" in page.url
    assert_accessible(page, "check: choose")
    submit(page, True)
    assert_accessible(page, "check: nothing chosen")
    page.check("input[value='signature']")
    submit(page, True)
    assert_accessible(page, "check: signature")
    page.fill("#signature", "***")
    submit(page, True)
    assert page.locator("#signature-error").is_visible()
    assert_accessible(page, "check: bad signature")
    page.goto("/my/check/files")
    assert_accessible(page, "check: files")
