"""The one second-factor step (views.second_factor) where it stands: signing in (/verify),
confirming a change of authenticator app, automatic renewal, and suspending a certificate.
In each, the authenticator app and a text message both work, a wrong code counts toward the
customer's one limit, and a paused customer gets the same answer."""
import json

import pytest

from models import AuditEvent, Certificate
from tests.conftest import Browserish, move_clock, sms_code
from tests.test_web_status import issue_to
from tests.test_web_support import english, error_summary, h1, title, totp_now, verify_by_totp

PLACES = ("verify", "authenticator", "auto-renew", "suspend")


@pytest.fixture
def cert(demo) -> Certificate:
    return issue_to(demo["person"])


def reach(web, place: str, serial: str) -> tuple[str, str]:
    """From a verified session (a new one for "verify"), up to the place's code page with the
    authenticator app; returns the URLs that take the code and send a text message."""
    if place == "verify":
        web.get("/verify/")
        web.post("/verify/", {"name": "홍길동", "rrn": "900101-1234567",
                              "account": "110-123-456789", "pin": "1234"})
        response = web.post("/verify/method", {"method": "totp"})
        urls = "/verify/code", "/verify/resend"
    elif place == "authenticator":
        response = web.get("/my/authenticator", follow_redirects=True)
        urls = "/my/authenticator/confirm", "/my/authenticator/confirm/sms"
    elif place == "auto-renew":
        base = f"/my/certificates/{serial}/auto-renew"
        response = web.post(base, {"lead_days": "14"})
        urls = base + "/code", base + "/sms"
    else:
        web.post("/suspend/certificate", {"serial": serial})
        response = web.post("/suspend/check", {})
        urls = "/suspend/code", "/suspend/code/sms"
    assert response.request.path == urls[0], response.request.path
    assert title(response).startswith("Enter the code")
    assert h1(response) == "Enter the code from your authenticator app"
    assert f'action="{urls[1]}"' in response.get_data(as_text=True)
    return urls


LANDS = {"verify": "/my/", "authenticator": "/my/authenticator", "auto-renew": "/my/",
         "suspend": "/suspend/done"}


def signed_in(app, demo, place: str) -> Browserish:
    """A client verified by the authenticator app, unless the place is the verification
    itself; the clock moves on so that the app shows a new code."""
    web = Browserish(app.test_client())
    english(web)
    if place != "verify":
        verify_by_totp(web, demo["totp_secret"])
        move_clock(seconds=31)
    return web


def wrong_code(secret: str) -> str:
    near = {totp_now(secret, steps) for steps in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


@pytest.mark.parametrize("method", ["totp", "sms"])
@pytest.mark.parametrize("place", PLACES)
def test_the_app_and_a_text_message_both_work_in_every_place(app, demo, cert, place, method):
    web = signed_in(app, demo, place)
    code_url, sms_url = reach(web, place, cert.serial)
    if method == "sms":
        switched = web.post(sms_url, {})
        assert switched.request.path == code_url
        assert h1(switched) == "Enter the code we sent you" and "ending 0001" in \
            switched.get_data(as_text=True)
        again = web.post(sms_url, {})
        assert again.status_code == 429
        assert "seconds before asking for another code" in error_summary(again)[0][1]
        move_clock(seconds=31)
        resent = web.post(sms_url, {})
        assert resent.request.path == code_url and "We sent a new code." in \
            resent.get_data(as_text=True)
        code = sms_code(demo["person"])
    else:
        code = totp_now(demo["totp_secret"])
    landed = web.post(code_url, {"code": code})
    assert landed.status_code == 200 and landed.request.path == LANDS[place]
    factor = AuditEvent.select().where(AuditEvent.action == "verify.passed") \
        .order_by(AuditEvent.id.desc()).first()
    assert json.loads(factor.details)["factor"] == method


@pytest.mark.parametrize("place", PLACES)
def test_wrong_codes_anywhere_count_toward_the_customers_one_limit(app, demo, cert, place):
    """Four wrong codes at the sign-in and one at `place` make five: the customer's checks
    pause (once), and then the right code is refused at `place` too."""
    secret = demo["totp_secret"]
    web = signed_in(app, demo, place)
    code_url, _sms_url = reach(web, place, cert.serial)
    other = Browserish(app.test_client())
    english(other)
    reach(other, "verify", cert.serial)
    wrong = wrong_code(secret)
    assert [other.post("/verify/code", {"code": wrong}).status_code
            for _ in range(4)] == [400] * 4
    fifth = web.post(code_url, {"code": wrong})
    assert fifth.status_code == 400
    assert error_summary(fifth) == [
        ("code", "That code is not right. Enter the code your authenticator app shows now")]
    paused = web.post(code_url, {"code": totp_now(secret)})
    assert paused.status_code == 429
    assert error_summary(paused)[0][1].startswith(
        "Too many wrong tries. Identity checks are paused until")
    assert AuditEvent.select().where(AuditEvent.action == "verify.failed").count() == 5
    assert AuditEvent.select().where(AuditEvent.action == "customer.locked").count() == 1


def test_a_paused_customer_gets_the_same_answer_in_every_place(app, demo, cert):
    """Pages for all four places are open when the checks pause: the right code, and a text
    message, get the same 429 and the same words in each."""
    clients = {place: signed_in(app, demo, place) for place in PLACES}
    urls = {place: reach(clients[place], place, cert.serial) for place in PLACES}
    wrong = wrong_code(demo["totp_secret"])
    for _ in range(5):
        clients["suspend"].post(urls["suspend"][0], {"code": wrong})
    answers = set()
    for place in PLACES:
        code_url, sms_url = urls[place]
        for url, data in ((code_url, {"code": totp_now(demo["totp_secret"])}), (sms_url, {})):
            response = clients[place].post(url, data)
            assert response.status_code == 429, (place, url)
            assert response.request.path == url
            answers.add((h1(response), tuple(error_summary(response))))
    assert len(answers) == 1
    (heading, errors), = answers
    assert heading == "Enter the code from your authenticator app"
    assert errors[0][1].startswith("Too many wrong tries. Identity checks are paused until")
    assert Certificate.get_by_id(cert.id).status == "valid"
    assert Certificate.get_by_id(cert.id).auto_renew_days is None


def test_the_sign_in_code_before_a_method_is_chosen_goes_to_the_choice(web, demo):
    """A customer with an app who skips the method page is sent back to it; no code is checked
    and no try counted."""
    english(web)
    web.post("/verify/", {"name": "홍길동", "rrn": "900101-1234567",
                          "account": "110-123-456789", "pin": "1234"})
    response = web.post("/verify/code", {"code": totp_now(demo["totp_secret"])})
    assert response.request.path == "/verify/method"
    assert h1(response) == "How do you want to get your code?"
    assert AuditEvent.select().where(AuditEvent.action.in_(
        ["verify.passed", "verify.failed"])).count() == 0
