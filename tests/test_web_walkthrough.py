"""Findings of a new user's walkthrough (B1-B10 and wording), each pinned by a test."""
import gzip
import re
from datetime import datetime
from pathlib import Path

import pytest

from models import Certificate
from services import issuance
from services.errors import DomainError
from services.passwords import check_new_password
from tests.conftest import text
from tests.test_web_support import (
    agree_and_choose,
    english,
    field_error,
    h1,
    issue_personal,
    key_and_password,
    title,
    verify_person_by_sms,
)

START_PAGES = ["/issue/", "/renew/", "/revoke/", "/suspend/", "/resume/", "/register/",
               "/transfer/"]


@pytest.mark.parametrize("url", START_PAGES)
def test_start_links_are_real_links_that_look_like_buttons(web, url):
    html = web.get(url).get_data(as_text=True)
    links = re.findall(r'<a [^>]*class="button[^"]*"[^>]*>', html)
    assert links, "a start link styled as a button"
    for link in links:
        assert "role=" not in link, link          # a link: Enter follows it, as people expect


LONG = "Blue!sky42x" + "q7#" * 20            # 71 characters; its first 64 keep every rule


def test_a_password_over_64_characters_is_refused_not_cut(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web)
    page = web.post("/issue/key", {"key": "generate"})
    assert page.request.path == "/issue/password"
    assert not re.search(r'<input[^>]*type="password"[^>]*maxlength', page.get_data(as_text=True))
    page = web.post("/issue/password", {"password": LONG, "password_again": LONG})
    assert page.request.path == "/issue/password" and page.status_code == 400
    assert "71 characters long" in field_error(page, "password")
    assert "at most 64" in field_error(page, "password")
    assert Certificate.select().count() == 0


def test_the_service_refuses_a_long_password_whole(demo):
    with pytest.raises(DomainError) as refused:
        check_new_password(LONG, LONG)
    assert refused.value.code == "password_too_long" and refused.value.params["length"] == 71
    check_new_password(LONG[:64], LONG[:64])        # 64 is still fine


def test_no_secret_input_has_a_maxlength(web):
    for name in Path("templates").rglob("*.html"):
        source = name.read_text(encoding="utf-8")
        for call in re.findall(r"c\.field\([^\n]*", source):
            if 'type="password"' in call or "one-time-code" in call:
                assert "maxlength" not in call, f"{name}: {call}"
    html = web.get("/verify/").get_data(as_text=True)
    assert not re.search(r'<input[^>]*id="pin"[^>]*maxlength', html)


def test_the_fee_rule_is_one_function(demo):
    assert issuance.fee_won("personal-general") == 4400
    assert issuance.fee_won("personal-general", "reissue") == 0
    assert issuance.fee_won("personal-banking") == 0


def test_faq_type_page_and_check_page_agree_on_the_reissue_fee(web, demo):
    english(web)
    faq = text(web.get("/support/faq"))
    assert "Reissuing is free" in faq and "4,400 won a year" in faq
    verify_person_by_sms(web, demo["person"])
    issue_personal(web, "personal-general")                  # the first one costs the fee
    kind = agree_and_choose(web, "personal-general")          # then the same type again
    assert kind.request.path == "/issue/key"
    check = key_and_password(web)
    row = re.search(r"<dt>Fee</dt>\s*<dd>(.*?)</dd>", check.get_data(as_text=True), re.S)
    assert row and row.group(1).startswith("Free"), row
    assert "4,400" not in text(check)
    type_page = text(web.get("/issue/type"))
    assert "Free to reissue" in type_page


def test_check_page_shows_the_fee_of_a_first_issue(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web, "personal-general")
    check = key_and_password(web)
    assert re.search(r"<dt>Fee</dt>\s*<dd>4,400 won</dd>", check.get_data(as_text=True))


def test_the_reissue_done_page_title_says_reissued_like_its_heading(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    first = issue_personal(web)
    assert title(first).startswith("Your certificate is ready")
    again = issue_personal(web)
    assert h1(again) == "Your certificate was reissued"
    assert title(again).startswith("Your certificate was reissued")


def test_static_files_are_gzipped_for_a_gzip_only_client(web):
    raw = web.client.get("/static/vendor/htmx.min.js")
    assert "Content-Encoding" not in raw.headers
    packed = web.client.get("/static/vendor/htmx.min.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers.get("Content-Encoding") == "gzip"
    body = packed.get_data()
    assert len(body) < len(raw.get_data()) / 2
    assert gzip.decompress(body) == raw.get_data()


def test_favicon_is_an_icon_not_a_404_page(web):
    icon = web.client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data(as_text=True).startswith("<svg")
    assert '<link rel="icon" href="/static/favicon.svg' in web.get("/").get_data(as_text=True)


def test_sign_out_is_not_inside_the_language_navigation(web, demo):
    verify_person_by_sms(web, demo["person"])
    html = web.get("/my/").get_data(as_text=True)
    nav = re.search(r'<nav aria-label="[^"]*">(.*?)</nav>', html, re.S).group(1)
    assert "signout" not in nav
    assert 'action="/verify/signout"' in html


def test_summary_rows_without_a_change_link_have_no_empty_action_cell(web, demo):
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web)
    html = key_and_password(web).get_data(as_text=True)
    assert '<dd class="summary-action"></dd>' not in html
    assert html.count('class="summary-action"') == 3        # type, key, password; not the fee


@pytest.mark.parametrize("language, shown", [("ko", "2027. 1. 2. 09:30"),
                                             ("en", "Jan 2, 2027, 9:30 AM")])
def test_lockout_times_have_a_four_digit_year(app, language, shown):
    from views.messages import message_for
    until = datetime(2027, 1, 2, 0, 30)                  # stored UTC: 09:30 in Korea
    with app.test_request_context(headers={"Cookie": f"lang={language}"}):
        message = message_for(DomainError("customer_locked", until=until))
    assert shown in message, message


def test_wording_in_korean(web):
    from babel.messages.pofile import read_po
    with open("translations/ko/LC_MESSAGES/messages.po", "rb") as po:
        korean = " ".join(m.string for m in read_po(po, locale="ko") if isinstance(m.string, str))
    assert "운영자" not in korean and "은행 담당자" in korean
    assert "다른 기관에서 등록한 인증서" not in korean and "다른 기관에서 발급받은 인증서" in korean
    assert "서명할 openssl." not in korean
    english(web)
    home = text(web.get("/"))
    assert "Individuals" in home and "Persons" not in home and "operator" not in home


def test_my_certificates_lists_the_valid_one_first_and_past_ones_apart(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    issue_personal(web)
    issue_personal(web)                     # a reissue: the first one is revoked (superseded)
    html = web.get("/my/").get_data(as_text=True)
    past_at = html.index("<h2>Past certificates</h2>")
    valid, revoked = Certificate.select().order_by(Certificate.id.desc())[:2]
    assert html.index(f'id="cert-{valid.serial}"') < past_at < html.index(f'id="cert-{revoked.serial}"')
    headings = re.findall(r"<h[23] id=\"cert-[0-9a-f]+-name\">(.*?)</h[23]>", html)
    assert len(headings) == 2 and len(set(headings)) == 2, headings
    assert all(h.startswith("Personal: banking") for h in headings)
    assert re.search(r'<h3 id="cert-' + revoked.serial + '-name">', html)
