"""Findings of a new user's walkthrough that need a real browser: keyboard, layout at 375 px,
and axe-core over the pages they changed, with JavaScript on and off."""
import pytest

from tests.browser import assert_accessible, new_page, tab_to

BOTH = pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])


def fits(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@BOTH
@pytest.mark.parametrize("language", ["en-US", "ko-KR"])
def test_the_fee_table_fits_a_375_px_phone(chromium, live, javascript, language):
    page = new_page(chromium, live, javascript, language)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/")
    table = page.locator("main table")
    assert table.evaluate("(t) => t.scrollWidth <= t.parentElement.clientWidth"), \
        table.evaluate("(t) => [t.scrollWidth, t.parentElement.clientWidth]")
    assert fits(page), page.evaluate("() => document.documentElement.scrollWidth")
    assert_accessible(page, f"home at 375 px, {language}")


@BOTH
def test_start_now_is_a_link_that_the_keyboard_follows(chromium, live, javascript):
    page = new_page(chromium, live, javascript, "en-US")
    page.goto("/issue/")
    start = page.get_by_role("link", name="Start now")
    assert start.count() == 1 and page.get_by_role("button", name="Start now").count() == 0
    tab_to(page, "main a.button--start")
    page.keyboard.press("Enter")
    page.wait_for_url("**/verify/")


@pytest.mark.parametrize("width", [1024, 375])
def test_summary_answers_line_up_with_and_without_a_change_link(chromium, live, demo, width):
    from tests.browser import verify_identity
    page = new_page(chromium, live, False, "en-US")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/issue/terms")
    verify_identity(page, demo["person"], javascript=False)
    page.check("#agree")
    page.locator("main form button[type=submit]").click()
    page.check("input[value='personal-general']")
    page.locator("main form button[type=submit]").click()
    page.check("input[value='generate']")
    page.locator("main form button[type=submit]").click()
    page.fill("#password", "Blue!sky42x")
    page.fill("#password_again", "Blue!sky42x")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/issue/check")
    lefts = page.evaluate("() => [...document.querySelectorAll('.summary-row dd:not(.summary-action)')]"
                          ".map(dd => Math.round(dd.getBoundingClientRect().left))")
    assert len(lefts) == 4 and len(set(lefts)) == 1, lefts
    assert fits(page)
    assert_accessible(page, f"check your answers at {width} px")


@BOTH
def test_changed_pages_pass_axe(chromium, live, demo, javascript):
    from services import issuance
    from tests.browser import verify_identity
    for _ in range(2):                        # the second is a reissue: one past certificate
        issuance.issue_certificate(demo["person"], "personal-general", idn="9001011234567",
                                   actor="test", password="Blue!sky42x",
                                   offer_downloads=False)
    for language in ("ko-KR", "en-US"):
        page = new_page(chromium, live, javascript, language)
        for path in ("/support/faq", "/issue/", "/renew/", "/revoke/", "/register/",
                     "/transfer/"):
            page.goto(path)
            assert_accessible(page, f"{path} ({language})")
        page.goto("/my/")
        verify_identity(page, demo["person"], javascript)
        page.wait_for_url("**/my/")
        assert page.locator("main h2", has_text="Past certificates").count() == 1 or \
            page.locator("main h2", has_text="지난 인증서").count() == 1
        assert_accessible(page, f"my certificates ({language})")
        page.goto("/issue/terms")
        page.check("#agree")
        page.locator("main form button[type=submit]").click()
        page.wait_for_url("**/issue/type")
        assert_accessible(page, f"type page with a reissue ({language})")
        page.set_viewport_size({"width": 375, "height": 800})
        page.goto("/my/")
        assert fits(page)
