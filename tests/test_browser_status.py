"""Revoke, suspend and resume in a real browser, with JavaScript on and off, and axe-core on
every page and error state."""
from datetime import timedelta

import pyotp
import pytest

from models import Certificate
from services import clock, issuance, renewal
from tests.browser import assert_accessible, new_page, submit, verify_identity
from tests.conftest import sms_code
from tests.test_renewal import expiry, set_kst


@pytest.fixture
def certificate(demo):
    return issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                      actor="test", password="Blue!sky42x",
                                      offer_downloads=False).certificate


def choose_certificate(page, certificate, javascript, check, what):
    check(page, f"{what}: which certificate")
    submit(page, javascript)
    assert page.locator("#serial-error").is_visible()
    check(page, f"{what}: no certificate chosen")
    page.check(f"input[value='{certificate.serial}']")
    submit(page, javascript)


def confirm_with_code(page, demo, javascript, check, what, by_sms=False):
    assert "/check" in page.url
    check(page, f"{what}: check your answers")
    submit(page, javascript)
    assert "/code" in page.url
    check(page, f"{what}: code")
    if by_sms:
        clock.advance(timedelta(seconds=31))          # a new SMS only 30 s after the last
        # A text message instead: its answer must be in before the code is typed, or the
        # late swap replaces the page the wrong code's error is on.
        submit(page, javascript, "main form button.button--secondary")
        page.wait_for_url("**/code")
        page.fill("#code", "000000" if sms_code(demo["person"]) != "000000" else "111111")
        submit(page, javascript)
        assert page.locator("#code-error").is_visible()
        check(page, f"{what}: wrong code")
        page.fill("#code", sms_code(demo["person"]))
    else:
        page.fill("#code", pyotp.TOTP(demo["totp_secret"]).at(int(clock.timestamp())))
    submit(page, javascript)
    assert "/done" in page.url
    check(page, f"{what}: done")


def revoke(page, demo, certificate, javascript, check=lambda page, what: None):
    page.goto("/")
    page.click("main a[href='/revoke/']")
    check(page, "revoke: start")
    page.click("main a.button")
    verify_identity(page, demo["person"], javascript)
    assert "/revoke/certificate" in page.url
    choose_certificate(page, certificate, javascript, check, "revoke")
    assert "/revoke/reason" in page.url
    check(page, "revoke: reason")
    submit(page, javascript)
    assert page.locator("#reason-error").is_visible()
    check(page, "revoke: no reason")
    page.check("input[value='key-compromise']")
    submit(page, javascript)
    assert "되돌릴 수 없" in page.locator("main").inner_text() or \
        "cannot be undone" in page.locator("main").inner_text()
    confirm_with_code(page, demo, javascript, check, "revoke", by_sms=True)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_customer_revokes_a_certificate_without_its_file(chromium, live, demo, certificate,
                                                           javascript):
    page = new_page(chromium, live, javascript)
    revoke(page, demo, certificate, javascript)
    record = Certificate.get_by_id(certificate.id)
    assert record.status == "revoked" and record.revocation_reason == "key-compromise"
    assert certificate.serial in page.locator("main").inner_text()
    assert page.locator("main a[href='/issue/']").count() == 1        # next step: a new one


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_customer_suspends_then_resumes(chromium, live, demo, certificate, javascript):
    page = new_page(chromium, live, javascript)
    page.goto("/suspend/")
    page.click("main a.button")
    verify_identity(page, demo["person"], javascript)
    choose_certificate(page, certificate, javascript, lambda p, w: None, "suspend")
    confirm_with_code(page, demo, javascript, lambda p, w: None, "suspend")
    assert Certificate.get_by_id(certificate.id).status == "suspended"
    page.goto("/my/")
    assert page.locator(".status--suspended").count() == 1
    page.click("main a[href='/resume/certificate']")
    choose_certificate(page, certificate, javascript, lambda p, w: None, "resume")
    clock.advance(timedelta(seconds=31))                              # a fresh TOTP step
    confirm_with_code(page, demo, javascript, lambda p, w: None, "resume")
    assert Certificate.get_by_id(certificate.id).status == "valid"


def test_every_page_and_error_state_of_the_status_flows_passes_axe(chromium, live, demo,
                                                                   certificate):
    page = new_page(chromium, live, javascript=True)
    revoke(page, demo, certificate, True, check=assert_accessible)
    for path in ("/suspend/", "/resume/", "/suspend/certificate", "/resume/certificate", "/my/"):
        page.goto(path)
        assert_accessible(page, path)


def test_suspending_a_renewed_pair_says_both_stop_and_passes_axe(chromium, live, demo,
                                                                certificate):
    set_kst(expiry(certificate) - timedelta(days=10), 10)
    new = renewal.renew_certificate(certificate, "test").certificate
    page = new_page(chromium, live, javascript=True)
    page.goto("/suspend/certificate")
    verify_identity(page, demo["person"], True)
    choose_certificate(page, new, True, assert_accessible, "suspend, renewed pair")
    assert "/suspend/check" in page.url
    assert certificate.serial in page.locator("main").inner_text()      # the one it renewed
    confirm_with_code(page, demo, True, assert_accessible, "suspend, renewed pair")
    assert [Certificate.get_by_id(c.id).status for c in (certificate, new)] == ["suspended"] * 2
