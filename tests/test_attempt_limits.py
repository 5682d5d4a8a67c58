"""Guessing and lockouts (issue 9): every secret is limited per target from any number of
addresses, tries are counted before they are evaluated, failures give no oracle, a stranger
cannot lock a customer out, and 100 failures stop self-service until an operator unlocks."""
import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from models import AttemptCounter, AuditEvent, Customer, Notification
from services import limits, verification
from services.errors import DomainError
from services.verification import IdentityClaim
from tests.conftest import PERSON, move_clock, sms_code

GOOD = IdentityClaim("홍길동", "900101-1234567", "110-123-456789", "1234")


def claim(**changes) -> IdentityClaim:
    return IdentityClaim(**{**GOOD.__dict__, **changes})


def other_rrn(n: int) -> str:
    """A well-formed RRN that is nobody's: born 1985, the nth day counted from 1 January."""
    return f"85{1 + n // 28:02d}{1 + n % 28:02d}-1000000"


def address(n: int) -> str:
    return f"10.50.0.{n % 50}"


def answer(details: IdentityClaim, client: str):
    """(message id, HTTP status) of a step-one attempt."""
    try:
        verification.check_identity(details, client)
    except DomainError as error:
        return error.code, error.status
    return "passed", 200


def pin_evaluations(customer) -> int:
    return (AuditEvent.select().where((AuditEvent.action == "verify.failed")
                                      & (AuditEvent.target == customer.code)).count())


def alerts(customer) -> list[str]:
    return [n.body for n in Notification.select().where(
        (Notification.customer == customer) & (Notification.purpose == "lockout"))]


# -- per target, from any number of addresses ---------------------------------------------

def test_a_thousand_pin_guesses_from_50_addresses_get_five_evaluations(demo):
    person = demo["person"]
    answers = {answer(claim(pin=f"{n:04d}"), address(n)) for n in range(1000) if n != 1234}
    assert answers == {("identity_mismatch", 400)}
    assert pin_evaluations(person) == limits.TARGET_TRIES
    assert answer(GOOD, "10.99.0.1") == ("identity_mismatch", 400)   # paused for everyone
    assert len(alerts(person)) == 1                                   # one text for the pause
    move_clock(minutes=31)
    assert answer(GOOD, "10.99.0.1") == ("passed", 200)


def test_guessing_the_rrn_of_a_known_account_is_limited_per_account(app, demo):
    for n in range(40):
        details = claim(rrn=other_rrn(n))
        assert answer(details, address(n)) == ("identity_mismatch", 400)
    # The right RRN comes too late: the account's tries are used up for 30 minutes.
    assert answer(GOOD, address(41)) == ("identity_mismatch", 400)
    assert pin_evaluations(demo["person"]) == 0, "a wrong RRN is no PIN failure"
    assert alerts(demo["person"]) == []
    result = app.test_cli_runner().invoke(args=["customers", "unlock", "P0000001"])
    assert result.exit_code == 0                          # after the bank checked the caller
    assert answer(GOOD, address(41)) == ("passed", 200)


def test_a_stranger_with_only_the_rrn_cannot_lock_its_owner(demo):
    person = demo["person"]
    for n in range(30):
        stranger = claim(name="김철수", account=f"444-000-{n:06d}", pin="0000")
        assert answer(stranger, address(n)) == ("identity_mismatch", 400)
    for change in ({"name": "홍길순"}, {"business_number": "123-45-67890"}):
        assert answer(claim(**change), address(7)) == ("identity_mismatch", 400)
    assert answer(GOOD, "10.99.0.1") == ("passed", 200)
    assert pin_evaluations(person) == 0 and alerts(person) == []
    assert Customer.get_by_id(person.id).failed_tries == 0


def test_every_failure_gets_the_same_answer_locked_or_not(demo):
    unknown = claim(rrn=other_rrn(99))
    before = {answer(details, "10.0.0.1") for details in
              (claim(pin="0000"), claim(name="홍길순"), claim(account="220-987-654321"), unknown)}
    for n in range(6):
        answer(claim(pin="0000"), address(n))
    after = {answer(details, "10.0.0.2") for details in
             (claim(pin="0000"), GOOD, claim(name="홍길순"), unknown)}
    assert before == after == {("identity_mismatch", 400)}


def test_one_alert_per_pause(demo):
    person = demo["person"]
    for n in range(20):
        answer(claim(pin="0000"), address(n))
    assert len(alerts(person)) == 1
    move_clock(minutes=31)
    for n in range(20):
        answer(claim(pin="0000"), address(n))
    assert len(alerts(person)) == 2
    assert pin_evaluations(person) == 2 * limits.TARGET_TRIES


# -- the cumulative cap -------------------------------------------------------------------

def test_a_hundred_failures_stop_self_service_until_an_operator_unlocks(app, demo, web):
    person = demo["person"]
    for n in range(verification.SUSPEND_AFTER):
        if n and n % limits.TARGET_TRIES == 0:
            move_clock(minutes=31)                  # each pause ends; the count goes on
        assert answer(claim(pin=f"{n:04d}"), address(n))[0] == "identity_mismatch"
    assert pin_evaluations(person) == verification.SUSPEND_AFTER
    stopped = Customer.get_by_id(person.id)
    assert stopped.self_service_suspended_at is not None
    move_clock(hours=5)
    assert answer(GOOD, "10.99.0.1") == ("identity_mismatch", 400)   # no oracle, even now
    text_message = Notification.select().where(
        (Notification.customer == person) & (Notification.purpose == "suspended")).get().body
    assert "1588-0000" in text_message                                 # how to reach the bank
    with pytest.raises(DomainError) as told:                           # a step past step one
        verification.send_sms_code(stopped)
    assert told.value.code == "customer_suspended" and told.value.status == 403

    result = app.test_cli_runner().invoke(args=["customers", "unlock", "P0000001"])
    assert result.exit_code == 0 and "P0000001" in result.output
    assert answer(GOOD, "10.99.0.1") == ("passed", 200)
    assert AuditEvent.select().where(AuditEvent.action == "customer.unlocked").count() == 1


def test_a_success_starts_the_count_toward_suspension_again(demo):
    person = demo["person"]
    for n in range(3):
        answer(claim(pin="0000"), address(n))
    assert Customer.get_by_id(person.id).failed_tries == 3
    assert answer(GOOD, "10.99.0.1") == ("passed", 200)
    assert Customer.get_by_id(person.id).failed_tries == 0


def test_a_suspended_customers_verified_session_ends(web, demo):
    from tests.conftest import verify_by_sms
    assert verify_by_sms(web, demo["person"]).request.path == "/my/"
    Customer.update(self_service_suspended_at=Customer.created_at).where(
        Customer.id == demo["person"].id).execute()
    assert web.get("/my/", follow_redirects=True).request.path == "/verify/"


# -- check and count in one step -------------------------------------------------------------

def in_parallel(count: int, attempt) -> list:
    """Run `attempt(i)` in `count` threads released at once; their results."""
    start, results = threading.Barrier(count), [None] * count

    def run(i):
        start.wait()
        results[i] = attempt(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class _LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    """Send Secure cookies to http://127.0.0.1, as browsers do for loopback."""

    def return_ok_secure(self, cookie, request):
        return True


class Client:
    """One browser session over real HTTP (a cookie jar and the page's CSRF token)."""

    def __init__(self, base: str):
        self.base = base
        jar = http.cookiejar.CookieJar(policy=_LoopbackIsSecure())
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.token = None

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path) as response:
            html = response.read().decode()
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        return html

    def submit(self, path: str, fields: dict) -> tuple[int, str, str]:
        """Post a form (redirects followed): the status, the path it lands on, the page."""
        data = urllib.parse.urlencode({"csrf_token": self.token, **fields}, doseq=True).encode()
        try:
            with self.opener.open(self.base + path, data=data) as response:
                html = response.read().decode()
                landed, status = urllib.parse.urlsplit(response.geturl()).path, response.status
        except urllib.error.HTTPError as error:
            html, landed, status = error.read().decode(), path, error.code
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        self.token = found.group(1) if found else self.token
        return status, landed, html

    def post(self, path: str, fields: dict) -> int:
        return self.submit(path, fields)[0]


def test_forty_parallel_pin_guesses_get_at_most_five_evaluations(live, demo):
    clients = [Client(live) for _ in range(40)]
    for client in clients:
        client.get("/verify/")
    statuses = in_parallel(40, lambda i: clients[i].post("/verify/", {**PERSON, "pin": "0000"}))
    assert set(statuses) == {400}
    assert pin_evaluations(demo["person"]) == limits.TARGET_TRIES


def pending_code(live, method: str) -> "Client":
    """One session waiting for a code by `method`: its cookie and token used by 40 requests."""
    client = Client(live)
    client.get("/verify/")
    client.post("/verify/", PERSON)
    client.post("/verify/method", {"method": method})
    client.get("/verify/code")
    return client


def test_forty_parallel_totp_guesses_get_at_most_five_evaluations(live, demo):
    client = pending_code(live, "totp")
    statuses = in_parallel(40, lambda _i: client.post("/verify/code", {"code": "000000"}))
    assert statuses.count(400) == limits.TARGET_TRIES and set(statuses) == {400, 429}
    assert pin_evaluations(demo["person"]) == limits.TARGET_TRIES


def test_forty_parallel_sms_code_guesses_get_at_most_five_evaluations(live, demo):
    client = pending_code(live, "sms")
    wrong = "000000" if sms_code(demo["person"]) != "000000" else "111111"
    statuses = in_parallel(40, lambda _i: client.post("/verify/code", {"code": wrong}))
    # Where the five compared tries truly run at once (PostgreSQL), each may already see the
    # code used up when it tells how many are left: then all forty say "too many".
    assert 429 in statuses and set(statuses) <= {400, 429}
    assert pin_evaluations(demo["person"]) == verification.CODE_TRIES


# -- behind a reverse proxy ------------------------------------------------------------------

def clients_counted(app, headers: dict) -> list[str]:
    """Use up one client's identity tries with the given forwarding headers; the keys of the
    per-client counters that counted them."""
    client = app.test_client()
    for n in range(limits.CLIENT_TRIES + 1):
        page = client.get("/verify/", headers=headers).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        client.post("/verify/", headers=headers, data={
            "csrf_token": token, **PERSON, "rrn": other_rrn(n),
            "account": f"555-000-{n:06d}"})
    return [c.key for c in AttemptCounter.select() if c.key.startswith("identity:client:")]


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(tmp_path, ca_template):
    from tests.conftest import fresh_app
    (tmp_path / "direct").mkdir()
    (tmp_path / "proxied").mkdir()
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    direct = fresh_app(tmp_path / "direct", ca_template)
    assert clients_counted(direct, forwarded) == ["identity:client:127.0.0.1"]
    proxied = fresh_app(tmp_path / "proxied", ca_template, CERTCENTER_TRUSTED_PROXIES="1")
    assert clients_counted(proxied, forwarded) == ["identity:client:203.0.113.9"]
