"""Identity verification through the pages: TOTP, and every kind of wrong answer on every
step of verification and issuance, CSRF, sessions (idle end, rotation)."""
import re

import pytest

from models import AuditEvent, Certificate, Customer, OneTimeCode
from tests.conftest import BUSINESS, PERSON, last_sms, move_clock, sms_code, text
from tests.test_web_support import (
    PASSWORD,
    agree_and_choose,
    english,
    error_summary,
    field_error,
    h1,
    key_and_password,
    start_verification,
    title,
    totp_now,
    verify_by_totp,
    verify_person_by_sms,
)

MISMATCH = ("These details do not match our records. Check them and try again. After 5 wrong "
            "tries, checks with these details pause for 30 minutes")


# -- TOTP ---------------------------------------------------------------------------------

def test_verification_with_the_authenticator_app(web, demo):
    english(web)
    code_page = start_verification(web, method="totp")
    assert h1(code_page) == "Enter the code from your authenticator app"
    assert "ending" not in text(code_page), "no SMS was sent"
    assert last_sms(demo["person"]) == ""
    landed = web.post("/verify/code", {"code": totp_now(demo["totp_secret"])})
    assert landed.status_code == 200 and landed.request.path == "/my/"
    assert h1(landed) == "My certificates" and "P0000001" in text(landed)


def test_a_wrong_or_replayed_totp_code_is_refused_with_a_message(web, demo):
    english(web)
    secret = demo["totp_secret"]
    verify_by_totp(web, secret)
    used = totp_now(secret)

    web.post("/verify/signout", {})
    start_verification(web, method="totp")
    replay = web.post("/verify/code", {"code": used})
    assert replay.status_code == 400 and replay.request.path == "/verify/code"
    assert "already used" in field_error(replay, "code")

    wrong = "000000" if used != "000000" else "111111"
    wrong_page = web.post("/verify/code", {"code": wrong})
    assert wrong_page.status_code == 400
    assert "Enter the code your authenticator app shows now" in field_error(wrong_page, "code")

    move_clock(seconds=30)
    ok = web.post("/verify/code", {"code": totp_now(secret)})
    assert ok.request.path == "/my/"


# -- step one: who you are ----------------------------------------------------------------

def test_a_wrong_pin_gets_one_message_and_a_4xx(web, demo):
    english(web)
    web.get("/verify/")
    response = web.post("/verify/", {**PERSON, "pin": "9999"})
    assert response.status_code == 400 and response.request.path == "/verify/"
    assert title(response).startswith("Error:")
    assert h1(response) == "Confirm your identity"
    assert [m for _f, m in error_summary(response)] == [MISMATCH]
    assert "9999" not in response.get_data(as_text=True), "the PIN is never echoed"
    assert Customer.get(Customer.code == "P0000001").failed_tries == 1
    assert OneTimeCode.select().count() == 0


def test_five_wrong_pins_pause_checks_with_the_same_answer_as_a_mismatch(web, demo):
    english(web)
    web.get("/verify/")
    for _ in range(5):
        web.post("/verify/", {**PERSON, "pin": "9999"})
    locked = web.post("/verify/", PERSON)
    assert locked.status_code == 400 and [m for _f, m in error_summary(locked)] == [MISMATCH]
    assert "30분" in last_sms(demo["person"])            # the customer reads Korean


def test_empty_identity_fields_get_an_error_summary_linking_to_each_field(web, demo):
    english(web)
    web.get("/verify/")
    response = web.post("/verify/", {"name": "", "rrn": "", "account": "", "pin": ""})
    assert response.status_code == 400
    assert title(response).startswith("Error: Confirm your identity")
    assert error_summary(response) == [
        ("name", "Enter your name"),
        ("rrn", "Enter your resident registration number"),
        ("account", "Enter your withdrawal account number"),
        ("pin", "Enter the 4-digit account PIN"),
    ]
    html = response.get_data(as_text=True)
    for field in ("name", "rrn", "account", "pin"):
        assert f'id="{field}"' in html and f'id="{field}-error"' in html
    assert 'aria-invalid="true"' in html


def test_a_mistyped_rrn_says_how_to_type_it(web, demo):
    english(web)
    web.get("/verify/")
    response = web.post("/verify/", {**PERSON, "rrn": "12345"})
    assert response.status_code == 400
    assert error_summary(response)[0][0] == "rrn"
    assert "13 digits" in field_error(response, "rrn")


def test_no_method_chosen_is_an_error_on_the_radios(web, demo):
    english(web)
    web.get("/verify/")
    web.post("/verify/", PERSON)
    response = web.post("/verify/method", {})
    assert response.status_code == 400 and title(response).startswith("Error:")
    assert error_summary(response) == [("method", "Select how to get your code")]


# -- step two: the SMS code ---------------------------------------------------------------

def test_a_wrong_sms_code_says_how_many_tries_are_left(web, demo):
    english(web)
    start_verification(web)
    right = sms_code(demo["person"])
    wrong = "000000" if right != "000000" else "111111"
    response = web.post("/verify/code", {"code": wrong})
    assert response.status_code == 400 and response.request.path == "/verify/code"
    assert error_summary(response) == [("code", "That code is not right. You have 4 tries left")]
    assert web.get("/my/").status_code == 303, "still not verified"


def test_an_empty_or_malformed_code(web, demo):
    english(web)
    start_verification(web)
    empty = web.post("/verify/code", {"code": ""})
    assert empty.status_code == 400
    assert error_summary(empty) == [("code", "Enter the 6-digit code")]
    letters = web.post("/verify/code", {"code": "12ab56"})
    assert letters.status_code == 400
    assert field_error(letters, "code") == "Enter the 6-digit code"


def test_an_expired_sms_code_asks_for_a_new_one(web, demo):
    english(web)
    start_verification(web)
    code = sms_code(demo["person"])
    move_clock(minutes=3)
    response = web.post("/verify/code", {"code": code})
    assert response.status_code == 400
    assert field_error(response, "code") == "That code has expired. Ask for a new code"
    # A new code (after the 30 s wait) works.
    resent = web.post("/verify/resend", {})
    assert resent.status_code == 200 and "We sent a new code." in text(resent)
    ok = web.post("/verify/code", {"code": sms_code(demo["person"])})
    assert ok.request.path == "/my/"


def test_resending_too_soon_is_a_429_with_the_wait(web, demo):
    english(web)
    start_verification(web)
    response = web.post("/verify/resend", {})
    assert response.status_code == 429
    assert "seconds before asking for another code" in field_error(response, "code")
    assert OneTimeCode.select().count() == 1


def test_the_code_page_without_step_one_goes_back_to_step_one(web, demo):
    response = web.get("/verify/code")
    assert response.status_code == 303 and response.headers["Location"].endswith("/verify/")


# -- bad answers on the issuance steps ----------------------------------------------------

@pytest.fixture
def verified(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    return web


def test_terms_not_agreed(verified):
    verified.get("/issue/terms")
    response = verified.post("/issue/terms", {})
    assert response.status_code == 400 and title(response).startswith("Error: Terms of use")
    assert error_summary(response) == [("agree", "Agree to the terms to continue")]


def test_no_type_chosen_and_a_type_not_for_a_person(verified):
    verified.get("/issue/terms")
    verified.post("/issue/terms", {"agree": "y"})
    empty = verified.post("/issue/type", {})
    assert empty.status_code == 400
    assert error_summary(empty) == [("cert_type", "Select a certificate type")]
    business = verified.post("/issue/type", {"cert_type": "business-banking"})
    assert business.status_code == 400
    assert error_summary(business) == [
        ("cert_type", "Select a certificate type for your kind of customer")]
    unknown = verified.post("/issue/type", {"cert_type": "no-such-type"})
    assert unknown.status_code == 400
    assert error_summary(unknown) == [("cert_type", "Select a certificate type")]


def test_no_key_choice(verified):
    agree_and_choose(verified)
    response = verified.post("/issue/key", {})
    assert response.status_code == 400
    assert error_summary(response) == [("key", "Select how to create the key")]


def test_empty_passwords(verified):
    agree_and_choose(verified)
    verified.post("/issue/key", {"key": "generate"})
    response = verified.post("/issue/password", {"password": "", "password_again": ""})
    assert response.status_code == 400
    assert title(response).startswith("Error: Choose a certificate password")
    assert error_summary(response) == [("password", "Enter a certificate password"),
                                       ("password_again", "Enter the password again")]


@pytest.mark.parametrize("password, again, field, message", [
    ("Ab1!x", "Ab1!x", "password", "The password must be 10 to 64 characters long"),
    ("A" + "b1!x9" * 13, "A" + "b1!x9" * 13, "password",
     "The password is 66 characters long. Use at most 64: we never shorten a password"),
    ("1357!9135#", "1357!9135#", "password", "The password must contain a letter"),
    ("Blue!skyXz", "Blue!skyXz", "password", "The password must contain a digit"),
    ("Bluesky42x", "Bluesky42x", "password",
     "The password must contain a special character, like ! or #"),
    ("Blue!sky42|", "Blue!sky42|", "password", "The password must not contain ' \" \\ or |"),
    ("Blue'sky42x", "Blue'sky42x", "password", "The password must not contain ' \" \\ or |"),
    ("Blue!sky123", "Blue!sky123", "password",
     "The password must not contain 3 characters in sequence, like abc or 321"),
    ("Blue!skyyy4", "Blue!skyyy4", "password",
     "The password must not contain the same character 3 times in a row, like aaa"),
    (PASSWORD, PASSWORD + "!", "password_again",
     "The passwords do not match. Enter the same password twice"),
], ids=["short", "long", "letter", "digit", "special", "forbidden-pipe", "forbidden-quote",
        "sequence", "repeat", "mismatch"])
def test_each_password_rule(verified, password, again, field, message):
    agree_and_choose(verified)
    verified.post("/issue/key", {"key": "generate"})
    response = verified.post("/issue/password", {"password": password, "password_again": again})
    assert response.status_code == 400 and response.request.path == "/issue/password"
    assert title(response).startswith("Error:")
    assert error_summary(response) == [(field, message)]
    assert field_error(response, field) == message
    html = response.get_data(as_text=True)
    assert password not in html and 'type="password"' in html, "never echoed back"
    assert verified.get("/issue/check").status_code == 303, "no password was kept"


def test_later_steps_without_agreeing_go_back_to_the_terms(verified):
    response = verified.get("/issue/password")
    assert response.status_code == 303 and response.headers["Location"].endswith("/issue/terms")


# -- CSRF ---------------------------------------------------------------------------------

def test_a_missing_csrf_token_gets_a_clear_400_page_and_changes_nothing(web, demo):
    english(web)
    before = AuditEvent.select().count()
    response = web.client.post("/verify/", data=PERSON)
    assert response.status_code == 400
    assert h1(response) == "Form expired"
    assert "This form has expired. Go back and try again" in text(response)
    assert OneTimeCode.select().count() == 0 and last_sms(demo["person"]) == ""
    assert AuditEvent.select().count() == before


def test_a_forged_csrf_token_on_confirm_issues_nothing(verified):
    agree_and_choose(verified)
    key_and_password(verified)
    response = verified.client.post("/issue/check", data={"csrf_token": "forged." + "x" * 40})
    assert response.status_code == 400 and h1(response) == "Form expired"
    assert Certificate.select().count() == 0
    # The flow is still there: the real button still works afterwards.
    assert verified.get("/issue/check").status_code == 200


def test_a_token_from_another_session_is_refused(web, demo, app):
    other = app.test_client()
    page = other.get("/verify/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    web.get("/verify/")
    response = web.client.post("/verify/", data={**PERSON, "csrf_token": token})
    assert response.status_code == 400
    assert OneTimeCode.select().count() == 0


# -- sessions -----------------------------------------------------------------------------

def test_the_verified_session_ends_after_10_minutes_idle(verified):
    assert verified.get("/my/").status_code == 200
    move_clock(minutes=9)
    assert verified.get("/my/").status_code == 200, "activity keeps it alive"
    move_clock(minutes=11)
    response = verified.get("/my/")
    assert response.status_code == 303 and response.headers["Location"].endswith("/verify/")


def test_the_session_cookie_changes_at_verification(web, demo):
    start_verification(web)
    before = web.client.get_cookie("cc_session").value
    response = web.post("/verify/code", {"code": sms_code(demo["person"])}, follow=False)
    assert response.status_code == 303
    after = web.client.get_cookie("cc_session").value
    assert after != before
    # The pre-verification cookie does not carry the verified identity.
    web.client.set_cookie("cc_session", before)
    assert web.get("/my/").status_code == 303


def test_signing_out_ends_the_session(verified):
    response = verified.post("/verify/signout", {})
    assert response.status_code == 200 and h1(response) == "You have signed out"
    assert verified.get("/my/").status_code == 303


def test_signing_out_ends_a_copy_of_the_session_cookie_too(verified):
    copied = verified.client.get_cookie("cc_session").value
    verified.post("/verify/signout", {})
    verified.client.set_cookie("cc_session", copied)
    assert verified.get("/my/").status_code == 303


def test_check_your_answers_needs_a_verification_younger_than_10_minutes(verified):
    agree_and_choose(verified)
    key_and_password(verified)
    for _ in range(2):                     # keep the session active, let verification age
        move_clock(minutes=6)
        assert verified.get("/issue/check").status_code == 200
    response = verified.post("/issue/check", {}, follow=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("/verify/")
    assert Certificate.select().count() == 0


def test_five_wrong_sms_codes_pause_the_customers_checks_as_five_wrong_pins_do(web, demo):
    """Each SMS code try is one of the customer's tries: a new code gives no fresh ones."""
    english(web)
    start_verification(web)
    right = sms_code(demo["person"])
    wrong = "000000" if right != "000000" else "111111"
    statuses = [web.post("/verify/code", {"code": wrong}).status_code for _ in range(5)]
    assert statuses == [400, 400, 400, 400, 429]
    paused = web.post("/verify/code", {"code": right})
    assert paused.status_code == 429
    assert "Too many wrong tries. Identity checks are paused until" in text(paused)
    assert web.get("/my/").status_code == 303
    assert web.post("/verify/resend", {}).status_code == 429        # no new code for new tries


def test_an_old_verification_at_confirm_asks_again_and_comes_back_with_the_answers(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web)
    key_and_password(web)
    for _ in range(2):
        move_clock(minutes=6)
        web.get("/issue/check")
    identity = web.post("/issue/check", {})
    assert identity.request.path == "/verify/" and h1(identity) == "Confirm your identity"
    back = verify_person_by_sms(web, demo["person"])
    assert back.request.path == "/issue/check", "back to the step they were on"
    assert h1(back) == "Check your answers" and "Made here" in text(back)
    done = web.post("/issue/check", {})
    assert done.request.path == "/issue/done"
    assert Certificate.select().count() == 1


def test_an_htmx_post_with_an_expired_form_gets_the_error_fragment(web, demo):
    english(web)
    response = web.client.post("/verify/", data=PERSON, headers={"HX-Request": "true"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "<html" not in html and '<main id="main"' in html
    assert h1(response) == "Form expired"


def test_setting_up_an_authenticator_app(web, demo):
    english(web)
    business = demo["business"]
    web.get("/verify/")
    web.post("/verify/", BUSINESS)
    web.post("/verify/code", {"code": sms_code(business)})
    mine = web.get("/my/")
    assert "Set up an authenticator app for your codes" in text(mine)
    page = web.get("/my/authenticator")
    assert page.status_code == 200 and h1(page) == "Set up an authenticator app"
    html = page.get_data(as_text=True)
    assert "<svg" in html, "the QR code, inline"
    secret = re.search(r'<strong class="key"[^>]*>([A-Z2-7 ]+)</strong>', html).group(1)
    secret = secret.replace(" ", "")
    wrong = web.post("/my/authenticator", {"code": "000000" if totp_now(secret) != "000000"
                                           else "111111"})
    assert wrong.status_code == 400 and error_summary(wrong)[0][0] == "code"
    assert Customer.get_by_id(business.id).totp_secret is None
    assert re.search(r'<strong class="key"[^>]*>([A-Z2-7 ]+)</strong>',
                     wrong.get_data(as_text=True)).group(1).replace(" ", "") == secret
    done = web.post("/my/authenticator", {"code": totp_now(secret)})
    assert done.request.path == "/my/"
    assert "Your authenticator app is set up" in text(done)
    assert Customer.get_by_id(business.id).totp_secret
    assert secret not in Customer.get_by_id(business.id).totp_secret, "encrypted at rest"
    # Next time, the business is offered the app.
    web.post("/verify/signout", {})
    move_clock(seconds=31)
    web.get("/verify/")
    method = web.post("/verify/", BUSINESS)
    assert method.request.path == "/verify/method"


def test_the_session_cookie_holds_no_plain_rrn_pin_or_password(web, demo, app):
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web)
    key_and_password(web)
    cookie = web.client.get_cookie("cc_session").value
    data = app.session_interface.get_signing_serializer(app).loads(cookie)
    flat = repr(data)
    assert data["customer"] == demo["person"].id and data["issue"]["password"]
    for secret in ("900101", "1234567", "9001011234567", PASSWORD, "110123456789"):
        assert secret not in flat, secret


def test_replacing_the_authenticator_app_asks_for_the_current_one_and_tells_the_customer(web, demo):
    english(web)
    person, old_secret = demo["person"], demo["totp_secret"]
    verify_by_totp(web, old_secret)
    asked = web.get("/my/authenticator", follow_redirects=True)
    assert asked.request.path == "/my/authenticator/confirm"
    assert h1(asked) == "Enter the code from your authenticator app"
    # The new app's page cannot be reached, nor posted to, before the current code.
    sneak = web.post("/my/authenticator", {"code": "123456"})
    assert sneak.request.path == "/my/authenticator/confirm"
    move_clock(seconds=30)
    wrong = web.post("/my/authenticator/confirm", {"code": "000000" if totp_now(old_secret) != "000000"
                                                   else "111111"})
    assert wrong.status_code == 400 and wrong.request.path == "/my/authenticator/confirm"
    page = web.post("/my/authenticator/confirm", {"code": totp_now(old_secret)})
    assert page.request.path == "/my/authenticator" and h1(page) == "Set up an authenticator app"
    new_secret = re.search(r'<strong class="key"[^>]*>([A-Z2-7 ]+)</strong>',
                           page.get_data(as_text=True)).group(1).replace(" ", "")
    move_clock(seconds=30)
    done = web.post("/my/authenticator", {"code": totp_now(new_secret)})
    assert done.request.path == "/my/"
    assert last_sms(person).startswith("[CertCenter] A new authenticator app now gives the codes")
    assert AuditEvent.select().where(AuditEvent.action == "totp.enrolled").count() == 1


def test_replacing_the_authenticator_app_by_text_message(web, demo):
    english(web)
    verify_by_totp(web, demo["totp_secret"])
    web.get("/my/authenticator", follow_redirects=True)
    sent = web.post("/my/authenticator/confirm/sms", {})
    assert sent.request.path == "/my/authenticator/confirm" and "ending" in text(sent)
    page = web.post("/my/authenticator/confirm", {"code": sms_code(demo["person"])})
    assert h1(page) == "Set up an authenticator app"
