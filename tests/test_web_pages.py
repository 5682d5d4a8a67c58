"""What every page does: htmx fragments and redirects, security headers, cookies, caching,
compression, language, error pages, the demo SMS inbox."""
import gzip
import re

from app import create_app
from tests.conftest import PERSON, sms_code, text, verify_by_sms
from tests.test_web_support import (
    english,
    error_summary,
    h1,
    start_verification,
    title,
)

HX = {"HX-Request": "true"}


# -- htmx ---------------------------------------------------------------------------------

def test_an_htmx_post_that_fails_validation_gets_only_the_fragment(web, demo):
    english(web)
    web.get("/verify/")
    response = web.post("/verify/", {"name": "", "rrn": "", "account": "", "pin": ""},
                        headers=HX)
    assert response.status_code == 400
    html = response.get_data(as_text=True).strip()
    assert "<html" not in html and "<head" not in html and "<footer" not in html
    assert re.match(r"<title>Error: Confirm your identity – CertCenter</title>\s*"
                    r'<main id="main"', html), html[:200]
    assert html.endswith("</main>")
    assert [field for field, _m in error_summary(response)] == ["name", "rrn", "account", "pin"]
    assert "HX-Request" in response.headers.get("Vary", "")


def test_an_htmx_domain_error_is_a_fragment_too(web, demo):
    english(web)
    web.get("/verify/")
    response = web.post("/verify/", {**PERSON, "pin": "9999"}, headers=HX)
    assert response.status_code == 400
    assert "<html" not in response.get_data(as_text=True)
    assert title(response).startswith("Error:")
    assert "HX-Request" in response.headers.get("Vary", "")


def test_a_successful_htmx_post_sends_hx_redirect_instead_of_303(web, demo):
    web.get("/verify/")
    response = web.post("/verify/", PERSON, headers=HX, follow=False)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/verify/method"
    assert "Location" not in response.headers
    assert "HX-Request" in response.headers.get("Vary", "")
    plain = web.client.post("/verify/method", data={"csrf_token": web.token, "method": "sms"})
    assert plain.status_code == 303 and plain.headers["Location"].endswith("/verify/code")
    assert "HX-Request" in plain.headers.get("Vary", "")


def test_a_plain_get_is_the_whole_page_and_an_htmx_get_the_fragment(web):
    full = web.get("/issue/")
    assert full.get_data(as_text=True).startswith("<!doctype html>")
    assert 'id="status"' in full.get_data(as_text=True), "the aria-live region"
    part = web.get("/issue/", headers=HX)
    assert "<!doctype" not in part.get_data(as_text=True)
    assert '<main id="main"' in part.get_data(as_text=True)


def test_every_form_is_a_plain_post_form_with_a_csrf_token(web, demo):
    pages = ["/verify/"]
    for url in pages:
        html = web.get(url).get_data(as_text=True)
        for form in re.findall(r"<form\b[^>]*>.*?</form>", html, re.S):
            assert 'method="post"' in form and 'action="' in form
            assert 'name="csrf_token"' in form
            assert "hx-on" not in form


# -- security headers and cookies ---------------------------------------------------------

def test_content_security_policy_forbids_inline_code(web):
    response = web.get("/")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style(web, demo):
    """With the CSP above, inline code would be blocked: the pages must not rely on it."""
    english(web)
    start_verification(web)
    web.post("/verify/code", {"code": sms_code(demo["person"])})
    for url in ("/", "/issue/", "/verify/", "/my/", "/my/authenticator/confirm", "/support/faq",
                "/support/security", "/demo/inbox"):
        response = web.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert "<style" not in html, url
        assert not re.search(r'\sstyle="', html), url
        assert not re.search(r"\son[a-z]+=", html), url
        assert "javascript:" not in html, url


def test_the_session_cookie_is_secure_httponly_and_samesite_lax(web):
    response = web.get("/verify/")
    cookie = next(h for h in response.headers.getlist("Set-Cookie")
                  if h.startswith("cc_session="))
    attributes = {part.strip().split("=")[0].lower(): part.strip()
                  for part in cookie.split(";")[1:]}
    assert "secure" in attributes and "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=lax"


def test_static_files_are_cached_for_a_year(web):
    html = web.get("/").get_data(as_text=True)
    href = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', html).group(1)
    response = web.client.get(href)
    assert response.status_code == 200
    cache = response.headers["Cache-Control"]
    assert "no-store" not in cache
    assert int(re.search(r"max-age=(\d+)", cache).group(1)) >= 365 * 24 * 3600


def test_responses_are_gzipped_when_asked(web):
    response = web.client.get("/", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in response.headers.get("Vary", "")
    html = gzip.decompress(response.data).decode()
    assert "<!doctype html>" in html and len(html) > 256
    plain = web.client.get("/")
    assert "Content-Encoding" not in plain.headers


def test_a_tiny_response_is_not_compressed(web, demo):
    web.get("/verify/")
    response = web.client.post("/verify/", data={"csrf_token": web.token, **PERSON},
                               headers={**HX, "Accept-Encoding": "gzip"})
    assert response.status_code == 200 and len(response.data) < 256
    assert "Content-Encoding" not in response.headers


# -- language, errors ---------------------------------------------------------------------

def test_korean_by_default_english_by_cookie(web):
    assert '<html lang="ko">' in web.get("/").get_data(as_text=True)
    english(web)
    assert '<html lang="en">' in web.get("/").get_data(as_text=True)


def test_the_language_link_sets_the_cookie_and_stays_on_our_site(web):
    response = web.client.get("/lang/en?next=/issue/")
    assert response.status_code == 303 and response.headers["Location"].endswith("/issue/")
    assert "lang=en" in response.headers["Set-Cookie"]
    evil = web.client.get("/lang/en?next=https://evil.example/")
    assert evil.headers["Location"] in ("/", "http://localhost/")
    evil = web.client.get("/lang/en?next=//evil.example/")
    assert "evil" not in evil.headers["Location"]


def test_an_unknown_page_is_a_404_page(web):
    english(web)
    response = web.get("/no/such/page")
    assert response.status_code == 404 and h1(response) == "Page not found"
    assert "Content-Security-Policy" in response.headers


def test_an_unknown_download_link_is_a_404_with_a_message(web):
    english(web)
    response = web.get("/download/not-a-token")
    assert response.status_code == 404
    assert "This download link is not valid" in text(response)


# -- demo inbox ---------------------------------------------------------------------------

def test_the_demo_inbox_shows_the_sms(web, demo):
    english(web)
    start_verification(web)
    code = sms_code(demo["person"])
    inbox = web.get("/demo/inbox")
    assert inbox.status_code == 200 and h1(inbox) == "Demo text messages"
    assert code in text(inbox)
    assert "0001" in text(inbox), "the phone it went to"


def test_the_demo_inbox_is_404_when_demo_is_off(app, demo):
    # create_app reconfigures global settings: use the same instance, so that only the demo
    # switch differs; the next test's `app` fixture configures everything afresh.
    off = create_app({"CERTCENTER_INSTANCE": str(app.config["INSTANCE"]), "TESTING": True,
                      "CERTCENTER_DEMO": "0"})
    client = off.test_client()
    with off.app_context():
        response = client.get("/demo/inbox")
        home = client.get("/")
    assert response.status_code == 404
    assert "/demo/inbox" not in home.get_data(as_text=True)


def test_in_korean_the_error_title_has_the_translated_prefix(web, app, demo):
    from flask_babel import gettext
    with app.test_request_context(headers={"Accept-Language": "ko"}):
        prefix = gettext("Error:")
    web.get("/verify/")
    response = web.post("/verify/", {"name": "", "rrn": "", "account": "", "pin": ""})
    assert response.status_code == 400
    assert '<html lang="ko">' in response.get_data(as_text=True)
    assert title(response).startswith(prefix + " ")


def test_times_are_korea_time_on_the_24_hour_clock_in_korean(web, demo):
    from services import issuance
    issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                               actor="test", password="Blue!sky42x", offer_downloads=False)
    verify_by_sms(web, demo["person"])
    korean = text(web.get("/my/"))
    assert "23:59:59" in korean                     # every certificate ends 23:59:59 KST
    assert "오후" not in korean and "PM" not in korean
    english(web)
    assert "11:59:59 PM" in text(web.get("/my/"))
