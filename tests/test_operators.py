"""Operators of the console: accounts from the CLI, enrolment by a one-time link (a strong
password and an authenticator app), login by password then TOTP under attempt limits with one
answer for every failure, sessions that end, and roles."""
import re

import pyotp
import pytest

from models import AuditEvent, Operator
from services import clock, operators
from services.errors import DomainError
from tests.conftest import move_clock

PASSWORD = "quiet lantern orbit 42 maple"
CLIENT = "203.0.113.7"


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def added(app, name="kim.ra", role="ra-officer") -> str:
    """Add an operator with the CLI; returns the enrolment token from the printed link."""
    result = cli(app, "operators", "add", "--name", name, "--role", role, "--operator", "root")
    assert result.exit_code == 0, result.output
    return re.search(r"/ops/enrol/(\S+)", result.output).group(1)


def enrolled(app, name="kim.ra", role="ra-officer") -> tuple[Operator, pyotp.TOTP]:
    token = added(app, name, role)
    secret = pyotp.random_base32()
    operator = operators.complete_enrolment(token, PASSWORD, secret, pyotp.TOTP(secret).now())
    return operator, pyotp.TOTP(secret)


def next_code(app_totp) -> str:
    move_clock(seconds=30)          # a code is accepted once: log in with the next one
    return app_totp.at(clock.timestamp())


def test_the_cli_adds_lists_resets_and_disables_operators(app):
    token = added(app)
    assert "kim.ra                   ra-officer  enrolling" in cli(app, "operators", "list").output
    assert operators.operator_for_enrolment(token).name == "kim.ra"
    again = cli(app, "operators", "add", "--name", "kim.ra", "--role", "support")
    assert again.exit_code == 1 and "kim.ra" in again.output
    bad = cli(app, "operators", "add", "--name", "Kim Ra!", "--role", "support")
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    wrong_role = cli(app, "operators", "add", "--name", "lee", "--role", "god")
    assert wrong_role.exit_code == 2

    reset = cli(app, "operators", "reset", "kim.ra")
    assert reset.exit_code == 0 and "/ops/enrol/" in reset.output
    with pytest.raises(DomainError) as old_link:
        operators.operator_for_enrolment(token)        # the old link no longer works
    assert old_link.value.status == 404
    assert cli(app, "operators", "disable", "kim.ra").exit_code == 0
    assert "kim.ra                   ra-officer  disabled" in cli(app, "operators", "list").output
    actions = [e.action for e in AuditEvent.select().where(AuditEvent.target == "kim.ra")]
    assert actions == ["operator.add", "operator.reset", "operator.disable"]


@pytest.mark.parametrize("password, code", [
    ("short pw 1", "operator_password_short"),
    ("password1234", "operator_password_common"),
    ("qwertyuiop123", "operator_password_common"),
    ("kim.ra12345678", "operator_password_common"),         # the operator's own name
    ("certcenter2026!", "operator_password_common"),        # the bank's
    ("x" * 129, "operator_password_long"),
])
def test_enrolment_refuses_short_and_guessable_passwords(app, password, code):
    token = added(app)
    secret = pyotp.random_base32()
    with pytest.raises(DomainError) as refused:
        operators.complete_enrolment(token, password, secret, pyotp.TOTP(secret).now())
    assert refused.value.code == code
    assert operators.operator_for_enrolment(token)           # the link still works


def test_enrolment_needs_a_code_from_the_app_and_uses_the_link_up(app):
    token = added(app)
    secret = pyotp.random_base32()
    with pytest.raises(DomainError) as wrong:
        operators.complete_enrolment(token, PASSWORD, secret, "000000")
    assert wrong.value.code == "code_wrong_totp"
    operator = operators.complete_enrolment(token, PASSWORD, secret, pyotp.TOTP(secret).now())
    assert operators.state(operator) == "active"
    with pytest.raises(DomainError):
        operators.complete_enrolment(token, PASSWORD, secret, pyotp.TOTP(secret).now())


def test_an_enrolment_link_expires_after_24_hours(app):
    token = added(app)
    move_clock(hours=24, seconds=1)
    with pytest.raises(DomainError) as expired:
        operators.operator_for_enrolment(token)
    assert expired.value.code == "enrolment_invalid"


def test_no_secret_of_an_operator_is_stored_readable(app):
    token = added(app)
    secret = pyotp.random_base32()
    operators.complete_enrolment(token, PASSWORD, secret, pyotp.TOTP(secret).now())
    database = (app.config["INSTANCE"] / "certcenter.db")
    dump = b"".join(p.read_bytes() for p in database.parent.glob("certcenter.db*"))
    for plain in (PASSWORD, secret, token):
        assert plain.encode() not in dump


def test_login_takes_the_password_then_a_fresh_code(app):
    operator, app_totp = enrolled(app)
    assert operators.check_password("Kim.RA ", PASSWORD, CLIENT).id == operator.id
    code = next_code(app_totp)
    assert operators.check_code(operator, code, CLIENT).name == "kim.ra"
    with pytest.raises(DomainError) as replayed:
        operators.check_code(operator, code, CLIENT)
    assert replayed.value.code == "totp_replayed"
    assert AuditEvent.select().where(AuditEvent.action == "operator.login").count() == 1


@pytest.mark.parametrize("case", ["wrong password", "no such name", "disabled", "not enrolled"])
def test_every_failed_login_gets_the_same_answer(app, case):
    enrolled(app)
    added(app, "park.new", "support")
    name, password = "kim.ra", PASSWORD
    if case == "wrong password":
        password = "not the password at all"
    elif case == "no such name":
        name = "nobody"
    elif case == "disabled":
        operators.disable_operator("kim.ra", "test")
    else:
        name = "park.new"
    with pytest.raises(DomainError) as failed:
        operators.check_password(name, password, CLIENT)
    assert (failed.value.code, failed.value.field) == ("login_failed", "password")


def test_five_wrong_passwords_block_the_name_from_every_address(app):
    enrolled(app)
    for n in range(5):
        with pytest.raises(DomainError):
            operators.check_password("kim.ra", f"wrong guess number {n}", f"198.51.100.{n}")
    with pytest.raises(DomainError) as blocked:
        operators.check_password("kim.ra", PASSWORD, "192.0.2.1")     # even the right one
    assert (blocked.value.code, blocked.value.status) == ("login_blocked", 429)
    move_clock(minutes=31)
    assert operators.check_password("kim.ra", PASSWORD, "192.0.2.1")


def test_wrong_codes_count_toward_the_same_limit(app):
    operator, _app_totp = enrolled(app)
    for _ in range(5):
        with pytest.raises(DomainError):
            operators.check_code(operator, "000000", CLIENT)
    with pytest.raises(DomainError) as blocked:
        operators.check_password("kim.ra", PASSWORD, "192.0.2.1")
    assert blocked.value.code == "login_blocked"


def session_now(operator) -> operators.Session:
    now = clock.timestamp()
    return operators.Session(operator.id, now, now)


def test_sessions_end_when_idle_old_logged_out_reset_or_disabled(app):
    operator, _ = enrolled(app)
    move_clock(seconds=1)
    session = session_now(operator)
    assert operators.session_operator(session).id == operator.id
    move_clock(minutes=15, seconds=1)
    assert operators.session_operator(session) is None                   # idle
    busy = operators.Session(operator.id, session.started_at, clock.timestamp())
    move_clock(hours=8)
    assert operators.session_operator(
        operators.Session(operator.id, session.started_at, clock.timestamp())) is None  # 8 h
    assert busy                                                          # (kept busy, but too old)

    for end in (lambda: operators.log_out(operator),
                lambda: operators.reset_operator("kim.ra", "test"),
                lambda: operators.disable_operator("kim.ra", "test")):
        move_clock(seconds=1)
        session = session_now(operator)
        assert operators.session_operator(session) is not None
        move_clock(seconds=1)
        end()
        assert operators.session_operator(session) is None


ACTIONS = sorted(set().union(*operators.PERMISSIONS.values()))
CHANGES = {"unlock_customer", "resend_notice", "decide_request", "change_status",
           "issue_reference", "manage_operators", "settings"}


@pytest.mark.parametrize("role", operators.ROLES)
def test_each_role_may_do_exactly_its_actions(app, role):
    operator = Operator(name="x", role=role)
    for action in ACTIONS:
        if action in operators.PERMISSIONS[role]:
            operators.require(operator, action)
        else:
            with pytest.raises(DomainError) as refused:
                operators.require(operator, action)
            assert refused.value.status == 403
    if role == "auditor":
        assert not CHANGES & operators.PERMISSIONS[role]
    assert "view_dashboard" in operators.PERMISSIONS[role]


def test_the_code_must_follow_the_password_within_five_minutes(app):
    operator, _ = enrolled(app)
    checked_at = clock.timestamp()
    assert operators.password_checked(operator.id, checked_at).id == operator.id
    move_clock(minutes=5, seconds=1)
    assert operators.password_checked(operator.id, checked_at) is None
    operators.disable_operator("kim.ra", "test")
    assert operators.password_checked(operator.id, clock.timestamp()) is None
    assert operators.password_checked("1", clock.timestamp()) is None
