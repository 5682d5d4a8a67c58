"""Certificate files customers bring: changing the password (in the format uploaded) and the
support desk's `files inspect`."""
import io
import json
import re
import time
import zipfile

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from pki import npki
from pki.errors import PkiError
from services import files, issuance, limits
from services.errors import DomainError
from tests.conftest import VECTORS

OLD, NEW = "Blue!sky42x", "Green#tree73y"


@pytest.fixture
def issued(demo):
    result = issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                        actor="test", password=OLD, offer_downloads=False)
    return {kind: content for kind, _n, _m, content in result.files}


def unzip(content):
    archive = zipfile.ZipFile(io.BytesIO(content))
    return {name.rsplit("/", 1)[1]: archive.read(name) for name in archive.namelist()}


def test_a_new_password_for_npki_files_keeps_the_key_and_the_scheme(issued):
    new = files.change_password([("NPKI.zip", issued["npki"])], OLD, NEW, NEW, "10.0.0.1")
    before, after = unzip(issued["npki"]), unzip(new.content)
    assert after["signCert.der"] == before["signCert.der"]
    old_key, old_random = npki.read_private_key(before["signPri.key"], OLD)
    new_key, new_random = npki.read_private_key(after["signPri.key"], NEW)
    assert new_key.private_numbers() == old_key.private_numbers() and new_random == old_random
    assert npki.key_scheme(after["signPri.key"]) == "seed-cbc-sha1"
    with pytest.raises(PkiError):
        npki.read_private_key(after["signPri.key"], OLD)


def test_a_p12_comes_back_as_a_p12(issued):
    new = files.change_password([("x.p12", issued["p12"])], OLD, NEW, NEW, "10.0.0.1")
    assert new.filename.endswith(".p12")
    key, cert, chain = pkcs12.load_key_and_certificates(new.content, NEW.encode())
    assert key is not None and len(chain) == 2


def test_a_wrong_old_password_is_refused_and_limited_per_key(issued):
    for n in range(limits.TARGET_TRIES):
        with pytest.raises(DomainError) as wrong:
            files.change_password([("NPKI.zip", issued["npki"])], "Wrong!pass1x", NEW, NEW, f"10.9.9.{n}")
        assert wrong.value.code == "password_wrong_for_files" and wrong.value.field == "old_password"
    with pytest.raises(DomainError) as blocked:      # even the right one, from anywhere
        files.change_password([("NPKI.zip", issued["npki"])], OLD, NEW, NEW, "10.0.0.1")
    assert blocked.value.code == "certificate_blocked" and blocked.value.status == 429


def test_wrong_old_passwords_are_limited_per_client_address(issued):
    key, _cert, _chain = pkcs12.load_key_and_certificates(issued["p12"], OLD.encode())
    for n in range(limits.CLIENT_TRIES):             # a new key file each time: other targets
        other = npki.encrypt_private_key(key, f"Other!pass{n:02d}x", None)
        with pytest.raises(DomainError) as wrong:
            files.change_password([("signPri.key", other), ("signCert.der", issued["cert"])],
                                  "Wrong!pass1x", NEW, NEW, "10.9.9.9")
        assert wrong.value.code == "password_wrong_for_files"
    with pytest.raises(DomainError) as blocked:
        files.change_password([("NPKI.zip", issued["npki"])], OLD, NEW, NEW, "10.9.9.9")
    assert blocked.value.code == "client_blocked"
    assert files.change_password([("NPKI.zip", issued["npki"])], OLD, NEW, NEW, "10.0.0.1")


@pytest.mark.parametrize("new, again, code", [("short1!", "short1!", "password_length"),
                                              (NEW, NEW + "x", "password_mismatch")])
def test_a_new_password_breaking_the_rules_is_refused(issued, new, again, code):
    with pytest.raises(DomainError) as refused:
        files.change_password([("NPKI.zip", issued["npki"])], OLD, new, again, "10.0.0.1")
    assert refused.value.code == code


def test_the_password_page_returns_the_file_and_explains_errors(web, issued):
    web.get("/files/password")
    response = web.post("/files/password", {"files": [(io.BytesIO(issued["npki"]), "NPKI.zip")],
                                            "old_password": "Wrong!pass1x", "password": NEW,
                                            "password_again": NEW},
                        content_type="multipart/form-data")
    assert response.status_code == 400 and 'id="old_password-error"' in response.get_data(as_text=True)
    response = web.post("/files/password", {"files": [(io.BytesIO(issued["npki"]), "NPKI.zip")],
                                            "old_password": OLD, "password": NEW,
                                            "password_again": NEW},
                        content_type="multipart/form-data")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert npki.read_private_key(unzip(response.data)["signPri.key"], NEW)


def test_files_inspect_says_what_the_files_are(app, issued, tmp_path):
    names = unzip(issued["npki"])
    for name, content in names.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "pw").write_text(OLD + "\n")
    runner = app.test_cli_runner()
    paths = [str(tmp_path / "signCert.der"), str(tmp_path / "signPri.key")]
    result = runner.invoke(args=["files", "inspect", *paths, "--password-file",
                                 str(tmp_path / "pw"), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["ours"] is True and found["status"] == "valid"
    assert found["password_opens"] is True and found["key_matches"] is True
    assert re.fullmatch(r"[0-9a-f]{40}", found["random_num"])
    (tmp_path / "pw").write_text("Wrong!pass1x\n")
    wrong = runner.invoke(args=["files", "inspect", *paths, "--password-file", str(tmp_path / "pw")])
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output


def test_files_inspect_on_the_pypinksign_vector_says_it_is_not_ours(app):
    runner = app.test_cli_runner()
    password = VECTORS / "pypinksign" / "password.txt"
    result = runner.invoke(args=["files", "inspect", str(VECTORS / "pypinksign" / "signCert.der"),
                                 str(VECTORS / "pypinksign" / "signPri.key"),
                                 "--password-file", str(password), "--json"])
    found = json.loads(result.output)
    assert result.exit_code == 0 and found["ours"] is False
    assert found["random_num"] == "7858b4328390805129f01c97fe6ca4a520cbd479"


def test_files_inspect_on_garbage_gives_a_message_not_a_traceback(app, tmp_path):
    (tmp_path / "junk").write_bytes(b"\x00\x01garbage")
    result = app.test_cli_runner().invoke(args=["files", "inspect", str(tmp_path / "junk")])
    assert result.exit_code != 0 and "Traceback" not in result.output and result.output.strip()


def test_the_password_page_and_its_errors_pass_axe(chromium, live, issued, tmp_path):
    from tests.browser import assert_accessible, new_page
    page = new_page(chromium, live, javascript=True)
    page.goto("/files/password")
    assert_accessible(page, "password change")
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector(".error-summary")
    assert_accessible(page, "password change, nothing filled in")
    (tmp_path / "NPKI.zip").write_bytes(issued["npki"])
    page.set_input_files("#files", str(tmp_path / "NPKI.zip"))
    page.fill("#old_password", OLD)
    page.fill("#password", "abc123!xyzw")
    page.fill("#password_again", "abc123!xyzw")
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("#password-error")
    assert_accessible(page, "password change, rule broken")
    page.set_input_files("#files", str(tmp_path / "NPKI.zip"))
    page.fill("#old_password", OLD)
    page.fill("#password", NEW)
    page.fill("#password_again", NEW)
    with page.expect_download() as info:
        page.locator("main form button[type=submit]").click()
    assert info.value.suggested_filename == "NPKI.zip"


def test_a_p12_asking_for_endless_work_is_refused_quickly_with_a_message(web, issued):
    # The outside test's file: an MD5 MAC (unknown to the old reader) with 2^31-1 iterations,
    # which cost OpenSSL about 240 s of CPU per upload.
    from pyasn1.codec.der import decoder, encoder
    from pyasn1.type import univ
    from pyasn1_alt_modules import rfc7292
    pfx, _ = decoder.decode(issued["p12"], asn1Spec=rfc7292.PFX())
    pfx["macData"]["mac"]["digestAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.840.113549.2.5")
    pfx["macData"]["iterations"] = 2**31 - 1
    web.get("/files/password")
    start = time.process_time()
    response = web.post("/files/password", {"files": [(io.BytesIO(encoder.encode(pfx)), "cert.p12")],
                                            "old_password": OLD, "password": NEW, "password_again": NEW},
                        content_type="multipart/form-data")
    assert time.process_time() - start < 2.0
    assert 400 <= response.status_code < 500
    assert "여는 데 훨씬 많은 계산을 요구하므로 열지 않았습니다" in response.get_data(as_text=True)
