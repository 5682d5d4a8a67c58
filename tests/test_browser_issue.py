"""The personal issuance flow in a real browser: with JavaScript on (htmx) and off, by
keyboard alone, and axe-core on every page and error state."""
import io
import re
import zipfile

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from models import Certificate
from tests.browser import assert_accessible, new_page, submit, tab_to, verify_identity_by_keyboard
from tests.conftest import PERSON, sms_code

PASSWORD = "Blue!sky42x"


def heading(page) -> str:
    return page.locator("main h1").first.inner_text().strip()


def fill_identity(page, details=PERSON):
    for field, value in details.items():
        page.fill(f"#{field}", value)


def go_through_issuance(page, demo, javascript: bool, check=lambda page, what: None):
    """Start to done, checking each page (and a few error states) with `check`."""
    person = demo["person"]
    page.goto("/")
    check(page, "home")
    page.click("main a[href='/issue/']")
    check(page, "issue start")
    page.click("main a.button")
    assert page.url.endswith("/verify/")
    check(page, "identity")

    submit(page, javascript)                                  # nothing filled in
    assert page.title().startswith("오류:") or page.title().startswith("Error:")
    assert page.locator(".error-summary a[href='#name']").count() == 1
    check(page, "identity, empty")

    fill_identity(page, {**PERSON, "pin": "9999"})
    submit(page, javascript)
    assert page.locator(".error-summary").is_visible()
    check(page, "identity, wrong PIN")

    fill_identity(page)
    submit(page, javascript)
    assert "/verify/method" in page.url
    check(page, "method")
    page.check("#method")                                     # by text message
    submit(page, javascript)
    assert "/verify/code" in page.url
    check(page, "code")
    page.fill("#code", "000000" if sms_code(person) != "000000" else "111111")
    submit(page, javascript)
    assert page.locator("#code-error").is_visible()
    check(page, "code, wrong")
    page.fill("#code", sms_code(person))
    submit(page, javascript)

    assert "/issue/terms" in page.url
    check(page, "terms")
    submit(page, javascript)
    assert page.locator("#agree-error").is_visible()
    check(page, "terms, not agreed")
    page.check("#agree")
    submit(page, javascript)

    assert "/issue/type" in page.url
    check(page, "type")
    submit(page, javascript)
    assert page.locator("#cert_type-error").is_visible()
    check(page, "type, none chosen")
    page.check("input[value='personal-banking']")
    submit(page, javascript)

    assert "/issue/key" in page.url
    check(page, "key")
    page.check("input[value='generate']")
    submit(page, javascript)

    assert "/issue/password" in page.url
    check(page, "password")
    page.fill("#password", "abc123!xyzw")                     # 'abc' and 'xyz' in sequence
    page.fill("#password_again", "abc123!xyzw")
    submit(page, javascript)
    assert page.locator("#password-error").is_visible()
    check(page, "password, rule broken")
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    submit(page, javascript)

    assert "/issue/check" in page.url
    check(page, "check your answers")
    submit(page, javascript)
    assert "/issue/done" in page.url
    check(page, "done")


def download(page, kind_selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(kind_selector)
    return open(info.value.path(), "rb").read()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_personal_issuance_completes_and_the_files_open(chromium, live, demo, javascript):
    page = new_page(chromium, live, javascript)
    go_through_issuance(page, demo, javascript)
    certificate = Certificate.get()
    assert certificate.serial in page.locator("main").inner_text()

    archive = zipfile.ZipFile(io.BytesIO(download(page, "a[href^='/download/'] >> nth=0")))
    names = archive.namelist()
    assert any(re.fullmatch(r"NPKI/CertCenter/USER/cn=홍길동\(\)\d+,.*/signPri\.key", n) for n in names)
    p12 = download(page, "a[href^='/download/'] >> nth=1")
    key, cert, chain = pkcs12.load_key_and_certificates(p12, PASSWORD.encode())
    assert key is not None and len(chain) == 2
    assert cert.serial_number == int(certificate.serial, 16)

    page.goto("/my/")
    assert certificate.serial in page.locator("main").inner_text()


def test_the_whole_flow_on_a_first_visit_transfers_under_100_kb(chromium, live, demo):
    page = new_page(chromium, live, javascript=True)
    responses = []
    page.on("requestfinished", lambda request: responses.append(request))
    go_through_issuance(page, demo, True)
    page.wait_for_load_state("networkidle")
    transferred = sum(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"]
                      for r in responses)
    assert any("htmx" in r.url for r in responses)            # scripts and styles counted
    assert transferred <= 100 * 1024, f"{transferred} bytes in {len(responses)} responses"


def test_every_page_and_error_state_passes_axe(chromium, live, demo):
    page = new_page(chromium, live, javascript=True)
    go_through_issuance(page, demo, True, check=assert_accessible)
    page.goto("/my/")
    assert_accessible(page, "my certificates")
    for path in ("/support/faq", "/support/security", "/demo/inbox", "/my/authenticator",
                 "/download/not-a-token"):
        page.goto(path)
        assert_accessible(page, path)


def test_every_page_passes_axe_in_english(chromium, live, demo):
    page = new_page(chromium, live, javascript=True, language="en-GB")
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert_accessible(page, "home in English")
    page.goto("/verify/")
    submit(page, True)
    assert_accessible(page, "identity errors in English")


def test_issuance_by_keyboard_alone(chromium, live, demo):
    page = new_page(chromium, live, javascript=True)
    person = demo["person"]
    page.goto("/issue/")
    tab_to(page, "main a.button")
    page.keyboard.press("Enter")
    verify_identity_by_keyboard(page, person)
    page.wait_for_url("**/issue/terms")
    tab_to(page, "#agree")
    page.keyboard.press("Space")
    tab_to(page, "main form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/issue/type")
    tab_to(page, "#cert_type")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url("**/issue/key")
    tab_to(page, "#key")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url("**/issue/password")
    for field in ("#password", "#password_again"):
        tab_to(page, field)
        page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/issue/check")
    tab_to(page, "main form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/issue/done")
    tab_to(page, "a[href^='/download/']")
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    assert info.value.suggested_filename == "NPKI.zip"


def test_with_javascript_errors_swap_into_main_and_focus_the_summary(chromium, live, demo):
    page = new_page(chromium, live, javascript=True)
    requests = []
    page.on("request", lambda r: requests.append(r.headers.get("hx-request")))
    page.goto("/verify/")
    page.evaluate("window.notReloaded = true")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_selector(".error-summary")
    assert requests[-1] == "true"                                   # htmx made the request
    assert page.evaluate("window.notReloaded") is True              # only <main> was swapped
    assert page.title().split()[0] in ("오류:", "Error:")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert page.locator("#status[aria-live=polite]").count() == 1


def test_the_accessibility_check_itself_catches_a_missing_label(chromium, live, demo):
    page = new_page(chromium, live)
    page.goto("/verify/")
    page.evaluate("document.querySelector('label[for=name]').remove()")
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page, "a page with a label removed")
