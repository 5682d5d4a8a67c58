"""Renewal in a real browser: the flow with JavaScript on and off, with the same key and a new
one, by keyboard alone, the files the done page gives, and axe-core on every page and error
state of renewal and automatic renewal, in Korean and in English.

The live server runs in this process, so moving the one clock here (set_kst) moves it for
the pages too; each move of days ends the verified session, so identity is verified after."""
import datetime as dt
import io
import zipfile
from types import SimpleNamespace

import pyotp
import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from flask_babel import force_locale, gettext
from playwright.sync_api import expect

from models import Certificate
from pki import npki
from services import clock, issuance, status
from tests.browser import assert_accessible, new_page, submit, tab_to, verify_identity, verify_identity_by_keyboard
from tests.test_browser_issue import download
from tests.test_renewal import NEW_PASSWORD, PASSWORD, RRN, expiry, set_kst
from tests.test_transfer import open_file_chooser_by_keyboard

DAYS = dt.timedelta(days=1)


def issue(demo, folder, type_id="personal-banking"):
    """A certificate of the demo person with its files, the NPKI.zip saved in `folder`."""
    result = issuance.issue_certificate(demo["person"], type_id, idn=RRN, actor="test",
                                        password=PASSWORD, offer_downloads=False)
    folder.mkdir()
    files = {kind: content for kind, _n, _m, content in result.files}
    (folder / "NPKI.zip").write_bytes(files["npki"])
    return SimpleNamespace(cert=result.certificate, files=files, npki=str(folder / "NPKI.zip"))


@pytest.fixture
def issued(demo, tmp_path):
    return issue(demo, tmp_path / "issued")


def go_on(page, url_glob: str):
    """Press the form's main button and wait for the next page."""
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(url_glob)


def fails(page, field: str, what: str, check):
    """Press the main button with JavaScript on; the error shows, the summary has focus."""
    submit(page, True)
    expect(page.locator(f"#{field}-error")).to_be_visible()
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.locator(f".error-summary a[href='#{field}']")).to_have_count(1)
    assert page.title().split()[0] in ("오류:", "Error:"), page.title()
    check(page, what)


def open_files(page, npki_path: str, password: str = PASSWORD):
    """The files step of the certificate login: the NPKI.zip and its password."""
    page.set_input_files("#files", npki_path)
    page.fill("#password", password)


def log_in(page, demo, javascript, npki_path, next_glob):
    """From the way choice (signing in first, if the session has ended) to `next_glob`."""
    page.goto("/renew/certificate")
    if "/verify/" in page.url:
        verify_identity(page, demo["person"])
        page.wait_for_url("**/renew/certificate")
    page.check("#way")                                        # open my files here
    go_on(page, "**/renew/certificate/files")
    open_files(page, npki_path)
    if next_glob:
        go_on(page, next_glob)
    else:                                                     # a refusal: the same address
        submit(page, javascript)


def translated(app, language: str, text: str) -> str:
    with app.test_request_context(), force_locale(language[:2]):
        return gettext(text)


def the_new_one(old) -> Certificate:
    return Certificate.get(Certificate.id == Certificate.get_by_id(old.id).replaced_by_id)


# -- the flow ---------------------------------------------------------------------------------

@pytest.mark.parametrize("javascript, key", [(True, "same"), (False, "same"), (True, "new"),
                                             (False, "new")],
                         ids=["js-same-key", "no-js-same-key", "js-new-key", "no-js-new-key"])
def test_a_customer_renews_with_the_certificate_files(chromium, live, demo, issued,
                                                      javascript, key):
    set_kst(expiry(issued.cert) - 20 * DAYS, 10)
    page = new_page(chromium, live, javascript)
    page.goto("/renew/")
    page.click("main a.button--start")
    verify_identity(page, demo["person"])
    page.wait_for_url("**/renew/certificate")
    log_in(page, demo, javascript, issued.npki, "**/renew/key")
    assert issued.cert.serial in page.locator("main").inner_text()
    page.check(f"input[name=key][value={key}]")
    if key == "new":
        go_on(page, "**/renew/password")
        page.fill("#password", NEW_PASSWORD)
        page.fill("#password_again", NEW_PASSWORD)
    go_on(page, "**/renew/check")
    go_on(page, "**/renew/done")

    new = the_new_one(issued.cert)
    assert new.serial in page.locator("main").inner_text()
    archive = zipfile.ZipFile(io.BytesIO(download(page, "main a[download='NPKI.zip']")))
    p12 = download(page, f"main a[download='{new.serial}.p12']")
    with zipfile.ZipFile(io.BytesIO(issued.files["npki"])) as old_archive:
        assert archive.namelist() == old_archive.namelist()      # the same folder name
        signpri = next(n for n in archive.namelist() if n.endswith("signPri.key"))
        assert archive.read(signpri.replace("signPri.key", "signCert.der")) == bytes(new.der)
        if key == "same":
            assert archive.read(signpri) == old_archive.read(signpri)   # their own key file
        else:
            assert archive.read(signpri) != old_archive.read(signpri)
            npki.read_private_key(archive.read(signpri), NEW_PASSWORD)
    password = PASSWORD if key == "same" else NEW_PASSWORD
    p12_key, p12_cert, chain = pkcs12.load_key_and_certificates(p12, password.encode())
    assert p12_key is not None and len(chain) == 2
    assert p12_cert.serial_number == int(new.serial, 16)
    old = Certificate.get_by_id(issued.cert.id)
    assert old.status == "valid" and old.replaced_by_id == new.id

    page.goto("/my/")
    expect(page.locator(f"#cert-{issued.cert.serial} .status--renewed")).to_have_count(1)
    expect(page.locator(f"#cert-{issued.cert.serial} a[href='#cert-{new.serial}']")) \
        .to_have_count(1)


def test_renewal_by_keyboard_alone(chromium, live, demo, issued):
    set_kst(expiry(issued.cert) - 3 * DAYS, 10)
    page = new_page(chromium, live, javascript=True)
    page.goto("/renew/")
    tab_to(page, "main a.button--start")
    page.keyboard.press("Enter")
    verify_identity_by_keyboard(page, demo["person"])
    page.wait_for_url("**/renew/certificate")
    tab_to(page, "#way")                                      # open my files here
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url("**/renew/certificate/files")
    tab_to(page, "#files")
    open_file_chooser_by_keyboard(page).set_files(issued.npki)
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/renew/key")
    tab_to(page, "#key")                                      # the first radio: a new key
    page.keyboard.press("ArrowDown")                          # the second: keep my key
    expect(page.locator("input[name=key][value=same]")).to_be_checked()
    page.keyboard.press("Enter")
    page.wait_for_url("**/renew/check")
    tab_to(page, "main form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/renew/done")
    tab_to(page, "main a[download='NPKI.zip']")
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    new = the_new_one(issued.cert)
    with zipfile.ZipFile(info.value.path()) as archive:
        cert_name = next(n for n in archive.namelist() if n.endswith("signCert.der"))
        assert archive.read(cert_name) == bytes(new.der)


# -- every page and error state through axe-core ----------------------------------------------

@pytest.mark.parametrize("language", ["ko-KR", "en-GB"], ids=["ko", "en"])
def test_every_renewal_page_and_error_state_passes_axe(chromium, live, app, demo, tmp_path,
                                                       language):
    check = assert_accessible
    banking = issue(demo, tmp_path / "banking")                     # renewed in the end
    general = issue(demo, tmp_path / "general", "personal-general")  # suspended, then revoked
    page = new_page(chromium, live, javascript=True, language=language)

    def heading_is(text):
        expect(page.locator("main h1").first).to_have_text(translated(app, language, text))

    # 31 days before expiry: the way, the files and their errors, the signature page, too early
    set_kst(expiry(banking.cert) - 31 * DAYS, 23)
    page.goto("/renew/")
    assert page.locator("html").get_attribute("lang") == language[:2]
    check(page, "start")
    page.click("main a.button--start")
    verify_identity(page, demo["person"])
    page.wait_for_url("**/renew/certificate")
    check(page, "way")
    fails(page, "way", "way, none chosen", check)
    page.check("#way")
    go_on(page, "**/renew/certificate/files")
    check(page, "files")
    fails(page, "files", "files, none chosen", check)
    open_files(page, banking.npki, "Wrong!pass1x")
    fails(page, "password", "files, wrong password", check)
    page.goto("/renew/certificate/signature")
    check(page, "signature")
    fails(page, "signature", "signature, none pasted", check)
    page.goto("/renew/certificate/files")
    open_files(page, banking.npki)
    submit(page, True)
    heading_is("It is too early to renew this certificate")
    check(page, "refused: too early")

    # automatic renewal, from the too-early page: when, then a code
    page.click(f"main a[href='/my/certificates/{banking.cert.serial}/auto-renew']")
    page.wait_for_url("**/auto-renew")
    check(page, "automatic renewal settings")
    fails(page, "lead_days", "automatic renewal settings, none chosen", check)
    page.check("input[name=lead_days][value='14']")
    go_on(page, "**/auto-renew/code")
    check(page, "automatic renewal code")
    right = pyotp.TOTP(demo["totp_secret"]).at(int(clock.timestamp()))
    page.fill("#code", "000000" if right != "000000" else "111111")
    fails(page, "code", "automatic renewal code, wrong", check)
    clock.advance(dt.timedelta(seconds=31))
    page.fill("#code", pyotp.TOTP(demo["totp_secret"]).at(int(clock.timestamp())))
    go_on(page, "**/my/")
    expect(page.locator("main .notice")).to_be_visible()
    assert Certificate.get_by_id(banking.cert.id).auto_renew_days == 14
    check(page, "my certificates, automatic renewal on")

    # 20 days before: renew now instead, a new key, its password, check, done
    set_kst(expiry(banking.cert) - 20 * DAYS, 10)
    log_in(page, demo, True, banking.npki, "**/renew/automatic")
    check(page, "automatic renewal is on")
    fails(page, "choice", "automatic renewal is on, none chosen", check)
    page.check("input[name=choice][value=now]")
    go_on(page, "**/renew/key")
    check(page, "key")
    fails(page, "key", "key, none chosen", check)
    page.check("input[name=key][value=new]")
    go_on(page, "**/renew/password")
    check(page, "password")
    page.fill("#password", "abc123!xyzw")                     # 'abc' and 'xyz' in sequence
    page.fill("#password_again", "abc123!xyzw")
    fails(page, "password", "password, rule broken", check)
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_again", NEW_PASSWORD)
    go_on(page, "**/renew/check")
    check(page, "check your answers")
    go_on(page, "**/renew/done")
    heading_is("Your certificate is renewed")
    check(page, "done")
    page.goto("/my/")
    expect(page.locator(f"#cert-{banking.cert.serial} .status--renewed")).to_have_count(1)
    check(page, "my certificates, a renewed certificate")
    page.goto(f"/my/certificates/{banking.cert.serial}/auto-renew")
    page.check("input[name=lead_days][value='14']")
    fails(page, "lead_days", "automatic renewal settings, not possible", check)

    # the refusals: already renewed, suspended, revoked
    log_in(page, demo, True, banking.npki, None)
    heading_is("This certificate is already renewed")
    assert the_new_one(banking.cert).serial in page.locator("main").inner_text()
    check(page, "refused: already renewed")
    status.suspend_certificate(general.cert, actor="test")
    log_in(page, demo, True, general.npki, None)
    heading_is("This certificate is suspended")
    expect(page.locator("main a[href='/resume/']")).to_have_count(1)
    check(page, "refused: suspended")
    status.resume_certificate(Certificate.get_by_id(general.cert.id), actor="test")
    reissued = issue(demo, tmp_path / "reissued", "personal-general")  # supersedes `general`
    log_in(page, demo, True, general.npki, None)
    heading_is("This certificate was replaced")
    assert reissued.cert.serial in page.locator("main").inner_text()
    check(page, "refused: replaced by a reissue")
    status.revoke_certificate(reissued.cert, "key-compromise", actor="test")
    log_in(page, demo, True, reissued.npki, None)
    heading_is("This certificate is revoked")
    expect(page.locator("main a[href^='/issue/type']")).to_have_count(1)
    check(page, "refused: revoked")

    # the day after expiry: expired
    last = issue(demo, tmp_path / "last", "personal-general")
    set_kst(expiry(last.cert) + DAYS, 10)
    log_in(page, demo, True, last.npki, None)
    heading_is("This certificate has expired")
    check(page, "refused: expired")
