"""Getting a reference number and authorisation code for one's own program (CMP) in a real
browser: with JavaScript on and off, by keyboard, axe-core on both pages in Korean and English."""
import re

import pytest

from tests.browser import assert_accessible, new_page, submit, tab_to, verify_identity


def to_key_step(page, demo, javascript):
    page.goto("/issue/terms")
    verify_identity(page, demo["person"], javascript)
    page.wait_for_url("**/issue/terms")
    page.check("#agree")
    submit(page, javascript)
    page.check("input[value='personal-banking']")
    submit(page, javascript)
    page.wait_for_url("**/issue/key")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("language", ["ko-KR", "en-GB"])
def test_the_pair_is_shown_once_and_every_page_passes_axe(chromium, live, demo, javascript,
                                                           language):
    page = new_page(chromium, live, javascript=javascript, language=language)
    to_key_step(page, demo, javascript)
    page.check("input[value='program']")
    assert_accessible(page, "key, own program chosen")
    submit(page, javascript)
    page.wait_for_url("**/issue/program")
    assert_accessible(page, "own program")
    submit(page, javascript)
    shown = page.locator("main").inner_text()
    assert re.search(r"\b\d{8}\b", shown) and re.search(r"\b\w{4} \w{4} \w{4}\b", shown)
    assert "openssl cmp -cmd ir" in page.locator("pre.command").inner_text()
    assert_accessible(page, "reference number and code")


def test_the_pair_by_keyboard_alone(chromium, live, demo):
    page = new_page(chromium, live, javascript=True)
    to_key_step(page, demo, True)
    tab_to(page, "#key")                       # a radio group: Tab to it, arrows within it
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.is_checked("input[value='program']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/issue/program")
    tab_to(page, "main form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("pre.command")
    assert "-ref " in page.locator("pre.command").inner_text()

