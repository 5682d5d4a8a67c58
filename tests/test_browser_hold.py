"""Issue 9's page changes in a real browser: the reissue warning after Back from the download
page, replacing the authenticator app, and the identity page's one answer, with axe-core on
each state, JavaScript on and off."""
import pytest

from services import issuance
from tests.browser import assert_accessible, new_page, submit, verify_identity
from tests.conftest import PERSON

PASSWORD = "Blue!sky42x"


@pytest.mark.parametrize("javascript", [True, False])
def test_a_reissue_right_after_issuing_says_so(chromium, live, demo, javascript):
    issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                               actor="test", password=PASSWORD, offer_downloads=False)
    page = new_page(chromium, live, javascript=javascript, language="en-GB")
    page.goto("/issue/terms")
    verify_identity(page, demo["person"], javascript)
    page.check("#agree")
    submit(page, javascript)
    page.check("input[value='personal-banking']")
    submit(page, javascript)
    assert "/issue/key" in page.url
    notice = page.locator("main .notice").inner_text()
    assert "You got that certificate 0 minutes ago" in notice
    assert_accessible(page, "key page, recent reissue")
    page.click("main .notice a")                       # keep it
    assert page.url.endswith("/my/")


def test_the_identity_page_answers_a_locked_customer_like_any_mismatch(chromium, live, demo):
    page = new_page(chromium, live, javascript=True, language="en-GB")
    page.goto("/verify/")
    for _ in range(6):
        for field, value in {**PERSON, "pin": "9999"}.items():
            page.fill(f"#{field}", value)
        submit(page, True)
    first = page.locator(".error-summary").inner_text()
    for field, value in PERSON.items():
        page.fill(f"#{field}", value)
    submit(page, True)
    assert page.locator(".error-summary").inner_text() == first
    assert "pause for 30 minutes" in first
    assert_accessible(page, "identity, paused")


def test_replacing_the_authenticator_app_in_the_browser(chromium, live, demo):
    page = new_page(chromium, live, javascript=False, language="ko-KR")
    page.goto("/my/authenticator")
    verify_identity(page, demo["person"], javascript=False)
    assert page.url.endswith("/my/authenticator/confirm")
    assert_accessible(page, "authenticator: the current code first")
    page.click("main form[action$='/sms'] button")
    assert page.url.endswith("/my/authenticator/confirm")
    assert_accessible(page, "authenticator: by text message")
