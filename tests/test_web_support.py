"""Helpers shared by the HTTP flow tests (tests/test_web_*.py). No tests live here.

They drive the pages the way a person with a browser (and no JavaScript) does: read the page,
fill in the form, press the button, land on the next page.
"""
import re
from html import unescape

import pyotp

from models import Certificate
from services import clock
from tests.conftest import PERSON, sms_code

PASSWORD = "Blue!sky42x"          # keeps every KISA rule


def english(web) -> None:
    """Read the pages in English (the Korean catalogue is still being written)."""
    web.client.set_cookie("lang", "en")


def _plain(fragment: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def h1(response) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", response.get_data(as_text=True), re.S)
    return _plain(found.group(1)) if found else ""


def title(response) -> str:
    found = re.search(r"<title>(.*?)</title>", response.get_data(as_text=True), re.S)
    return _plain(found.group(1)) if found else ""


def error_summary(response) -> list[tuple[str | None, str]]:
    """(link target, message) of each entry in the error summary at the top of the page."""
    html = response.get_data(as_text=True)
    found = re.search(r'<div class="error-summary".*?<ul>(.*?)</ul>', html, re.S)
    if not found:
        return []
    entries = []
    for item in re.findall(r"<li>(.*?)</li>", found.group(1), re.S):
        link = re.search(r'href="#([^"]+)"', item)
        entries.append((link.group(1) if link else None, _plain(item)))
    return entries


def field_error(response, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(field)}-error">(.*?)</p>',
                      response.get_data(as_text=True), re.S)
    return _plain(found.group(1)).removeprefix("Error:").strip() if found else ""


def download_links(response) -> list[str]:
    return re.findall(r'href="(/download/[^"]+)"', response.get_data(as_text=True))


def totp_now(secret: str, steps_ahead: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.at(int(clock.timestamp()) + steps_ahead * totp.interval)


def verify_by_totp(web, secret: str, details=PERSON, start="/verify/"):
    """Pass identity verification with the authenticator app's code."""
    web.get(start)
    response = web.post("/verify/", details)
    assert response.request.path == "/verify/method", response.request.path
    response = web.post("/verify/method", {"method": "totp"})
    assert response.request.path == "/verify/code"
    return web.post("/verify/code", {"code": totp_now(secret)})


def start_verification(web, details=PERSON, method="sms"):
    """Step one (and the method choice, for a customer with an app); lands on the code page."""
    web.get("/verify/")
    response = web.post("/verify/", details)
    if response.request.path == "/verify/method":
        response = web.post("/verify/method", {"method": method})
    assert response.request.path == "/verify/code", response.request.path
    return response


def agree_and_choose(web, cert_type="personal-banking"):
    """From a verified session: terms -> type. Returns the page after the type."""
    response = web.get("/issue/terms")
    assert response.status_code == 200, response.status_code
    response = web.post("/issue/terms", {"agree": "y"})
    assert response.request.path == "/issue/type", response.request.path
    return web.post("/issue/type", {"cert_type": cert_type})


def key_and_password(web, password=PASSWORD):
    """key -> password; returns the check-your-answers page."""
    response = web.post("/issue/key", {"key": "generate"})
    assert response.request.path == "/issue/password", response.request.path
    response = web.post("/issue/password", {"password": password, "password_again": password})
    assert response.request.path == "/issue/check", (response.request.path, h1(response))
    return response


def issue_personal(web, cert_type="personal-banking", password=PASSWORD):
    """From a verified session, through every step to the done page."""
    response = agree_and_choose(web, cert_type)
    assert response.request.path == "/issue/key", response.request.path
    key_and_password(web, password)
    response = web.post("/issue/check", {})
    assert response.request.path == "/issue/done", (response.request.path, h1(response))
    return response


def verify_person_by_sms(web, person, details=PERSON):
    start_verification(web, details)
    return web.post("/verify/code", {"code": sms_code(person)})


def certificate_count() -> int:
    return Certificate.select().count()


def generic_message(app) -> str:
    """The fallback sentence for an error id that has no message of its own, in the language
    the CLI speaks (it renders messages in a test request context, like the pages)."""
    from services.errors import DomainError
    from views.messages import message_for
    with app.test_request_context():
        return message_for(DomainError("no-such-message-id"))


def cli_refused(app, result) -> str:
    """A CLI command refused the input the way an operator should see it: exit code != 0, a
    message (not the generic one), no traceback. Returns the output."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.output.strip(), "a message"
    assert generic_message(app) not in result.output, (
        "a clear message, not the generic one: " + result.output)
    return result.output

