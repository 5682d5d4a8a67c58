"""SMS reaches an HTTP gateway: a real HTTP server on 127.0.0.1 records each POST and answers
what the test tells it (200, 500, 400, a redirect, or nothing until the client times out).
Failed messages stay in the outbox, and retry_outbox() sends each exactly once, even when two
runs race. Nothing here sleeps: the backoff is 0 and the clock is moved."""
import json
import logging
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from models import Notification, db
from services import clock, settings
from services import notify as notify_module
from services.i18n import N_
from services.notify import HttpSmsSender, notify, pending_retries, retry_outbox, text_of
from tests.conftest import fresh_app, move_clock
from tests.test_notify import Inbox, free_port

TOKEN = "gw-token-5f1c9a7e-never-logged"
MESSAGE = N_("[CertCenter] Your verification code is %(code)s. It works for 3 minutes. "
             "Never tell it to anyone, including bank staff.")


class Gateway:
    """A recording SMS gateway. `answers` is consumed one per request (an HTTP status, or
    "hang"); when empty it answers `default`."""

    def __init__(self, port: int = 0):
        self.requests: list[dict] = []
        self.answers: list = []
        self.default = 200
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.port = port
        self.server = None

    def start(self):
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with gateway.lock:
                    gateway.requests.append({"path": self.path, "headers": dict(self.headers),
                                             "json": json.loads(body)})
                    answer = gateway.answers.pop(0) if gateway.answers else gateway.default
                if answer == "hang":
                    gateway.release.wait(10)      # past the client's timeout; no answer
                    return
                self.send_response(answer)
                if 300 <= answer < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/sms"

    def ids(self) -> list[int]:
        return [r["json"]["id"] for r in self.requests]


def sms_config(url: str, **extra) -> dict:
    return {"url": url, "token": TOKEN, "timeout": 2.0, "tries": 3, "backoff": 0.0, **extra}


@pytest.fixture
def gateway(demo, monkeypatch):
    server = Gateway().start()
    monkeypatch.setattr(settings.current(), "sms", sms_config(server.url))
    # Belt and braces: a test that forgot backoff 0 fails instead of sleeping.
    monkeypatch.setattr(notify_module, "sleep", lambda seconds: pytest.fail("slept"))
    yield server
    server.stop()


def send_code(customer, code="123456") -> Notification:
    notify(customer, "verification_code", MESSAGE, code=code)
    return (Notification.select().where(Notification.channel == "sms")
            .order_by(Notification.id.desc()).get())


def test_each_sms_is_posted_as_json_with_the_bearer_token(demo, gateway):
    note = send_code(demo["person"])
    [request] = gateway.requests
    assert request["path"] == "/v1/sms"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {"to": demo["person"].phone, "text": text_of(note), "id": note.id}
    assert "123456" in request["json"]["text"] and "[인증센터]" in request["json"]["text"]
    assert note.status == "sent" and note.tries == 1 and note.sent_at is not None


@pytest.mark.parametrize("first", [500, 503, 408, 429])
def test_a_server_error_is_retried_and_the_message_sent_once(demo, gateway, first):
    gateway.answers = [first, 200]
    note = send_code(demo["person"])
    assert gateway.ids() == [note.id, note.id]       # same id: the gateway can de-duplicate
    assert note.status == "sent" and note.tries == 1  # one delivery, two requests
    assert retry_outbox().tried == 0 and len(gateway.requests) == 2


@pytest.mark.parametrize("code", [400, 401, 404, 302])
def test_a_refused_request_fails_without_retrying(demo, gateway, code):
    gateway.answers = [code]
    note = send_code(demo["person"])
    assert len(gateway.requests) == 1                 # a redirect is not followed either
    assert note.status == "failed" and note.tries == 1 and note.sent_at is None


def test_a_gateway_that_never_answers_times_out_and_the_message_fails(demo, gateway,
                                                                     monkeypatch):
    monkeypatch.setattr(settings.current(), "sms", sms_config(gateway.url, timeout=0.2))
    gateway.default = "hang"
    note = send_code(demo["person"])
    assert len(gateway.requests) == 3 and note.status == "failed"


def test_backoff_doubles_between_tries_within_one_delivery(demo, gateway):
    gateway.default = 500
    waits = []
    sender = HttpSmsSender(sms_config(gateway.url, backoff=0.5, tries=3), sleep=waits.append)
    note = Notification.create(customer=demo["person"], channel="sms", recipient="01000000000",
                               purpose="t", body="x", language="ko", created_at=clock.now())
    assert sender.deliver(note) == "failed"
    assert waits == [0.5, 1.0] and len(gateway.requests) == 3


def test_a_server_that_is_down_leaves_the_sms_failed_until_a_retry_sends_it(demo, gateway):
    port = gateway.port
    gateway.stop()                                    # nothing listens on the port now
    note = send_code(demo["person"])
    assert note.status == "failed" and note.tries == 1
    assert [n.id for n in pending_retries()] == [note.id]

    back = Gateway(port).start()                      # the same URL answers again
    try:
        report = retry_outbox()
        assert (report.sent, report.failed) == (1, 0)
        assert back.ids() == [note.id]
    finally:
        back.stop()
    note = Notification.get_by_id(note.id)
    assert note.status == "sent" and note.tries == 2 and note.sent_at is not None
    assert pending_retries().count() == 0 and retry_outbox().tried == 0


def test_a_verification_code_is_not_retried_once_it_has_expired(demo, gateway):
    gateway.stop()
    code = send_code(demo["person"])
    notify(demo["person"], "expiry_reminder", MESSAGE, code="-")
    assert pending_retries().count() == 2
    move_clock(minutes=3, seconds=1)
    assert [n.purpose for n in pending_retries()] == ["expiry_reminder"]
    assert Notification.get_by_id(code.id).status == "failed"


def test_retries_stop_after_the_cap_and_the_message_stays_failed(demo, gateway):
    gateway.default = 500
    note = send_code(demo["person"])
    for expected_tries in range(2, notify_module.MAX_TRIES + 1):
        assert retry_outbox().failed == 1
        assert Notification.get_by_id(note.id).tries == expected_tries
    requests = len(gateway.requests)
    assert requests == notify_module.MAX_TRIES * 3   # 3 requests per delivery
    assert pending_retries().count() == 0
    gateway.default = 200
    assert retry_outbox().tried == 0 and len(gateway.requests) == requests
    assert Notification.get_by_id(note.id).status == "failed"


def test_two_simultaneous_retry_runs_send_each_message_exactly_once(demo, gateway):
    gateway.default = 500
    notes = [send_code(demo["person"], code=f"{i:06d}") for i in range(12)]
    assert all(n.status == "failed" for n in notes)
    gateway.requests.clear()
    gateway.default = 200
    start = threading.Barrier(2)
    reports, errors = [], []

    def run():
        try:
            with db.connection_context():
                start.wait()
                reports.append(retry_outbox())
        except Exception as error:                   # surfaced by the assert below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(gateway.ids()) == sorted(n.id for n in notes)   # each once, none twice
    assert sum(r.sent for r in reports) == 12
    assert Notification.select().where(Notification.status == "sent").count() == 12


def test_a_claim_left_by_a_crashed_process_is_taken_over_after_ten_minutes(demo, gateway):
    note = Notification.create(customer=demo["person"], channel="sms", recipient="01000000000",
                               purpose="t", body="x", language="ko", created_at=clock.now(),
                               status="sending", tries=1, sent_at=clock.now())
    assert pending_retries().count() == 0 and retry_outbox().tried == 0   # still in flight
    clock.advance(timedelta(minutes=9))
    assert retry_outbox().tried == 0 and gateway.requests == []
    clock.advance(timedelta(minutes=2))
    assert [n.id for n in pending_retries()] == [note.id]
    assert retry_outbox().sent == 1 and gateway.ids() == [note.id]
    assert Notification.get_by_id(note.id).tries == 2


def test_without_a_gateway_sms_stays_queued_and_is_not_retried(demo):
    assert not settings.current().sms.get("url")
    note = send_code(demo["person"])
    assert note.status == "queued" and note.tries == 0
    Notification.create(customer=demo["person"], channel="sms", recipient="01000000000",
                        purpose="t", body="x", language="ko", created_at=clock.now(),
                        status="failed", tries=1)
    assert pending_retries().count() == 0 and retry_outbox().tried == 0


def test_failed_email_is_retried_by_smtp_too(demo, monkeypatch):
    person = demo["person"]
    person.email = "gildong@example.com"
    person.save()
    port = free_port()
    monkeypatch.setattr(settings.current(), "smtp",
                        {"host": "127.0.0.1", "port": port, "sender": "certcenter@bank.example"})
    notify(person, "test", MESSAGE, code="123456")
    email = Notification.get(Notification.channel == "email")
    assert email.status == "failed"
    assert [n.id for n in pending_retries()] == [email.id]   # SMS: no gateway, stays queued
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert retry_outbox().sent == 1
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    assert Notification.get_by_id(email.id).status == "sent"


def test_the_token_and_the_message_never_reach_the_logs(demo, gateway, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(settings.current(), "sms", sms_config(gateway.url, timeout=0.2))
    gateway.answers = [500, 400, 429, "hang", 503, 302]
    send_code(demo["person"], "246810")
    send_code(demo["person"], "135791")
    port = gateway.port
    gateway.stop()
    send_code(demo["person"], "975310")
    back = Gateway(port).start()
    try:
        retry_outbox()
    finally:
        back.stop()
    def text(records):
        return " ".join(r.getMessage() for r in records)

    everything = text(caplog.records)
    assert "SMS" in everything                        # failures were logged...
    assert TOKEN not in everything and "Bearer" not in everything   # ...at any level
    # Peewee's own DEBUG query log prints SQL parameters, bodies included (a deployment
    # runs above DEBUG); at INFO and up, and from this module at any level, no text and no
    # recipient appears.
    shown = text(r for r in caplog.records
                 if r.levelno >= logging.INFO or r.name.startswith("services"))
    for secret in ("246810", "135791", "975310", demo["person"].phone):
        assert secret not in shown


def test_the_sms_variables_reach_the_settings(tmp_path, ca_template):
    app = fresh_app(tmp_path, ca_template, CERTCENTER_SMS_URL="https://sms.example/v1",
                    CERTCENTER_SMS_TOKEN=TOKEN, CERTCENTER_SMS_TIMEOUT="2.5",
                    CERTCENTER_SMS_TRIES="4", CERTCENTER_SMS_BACKOFF="0")
    try:
        assert settings.current().sms == {"url": "https://sms.example/v1", "token": TOKEN,
                                          "timeout": 2.5, "tries": 4, "backoff": 0.0}
        assert app.config["SMS"]["url"] == "https://sms.example/v1"
    finally:
        clock.reset()
    (tmp_path / "other").mkdir()
    defaults = fresh_app(tmp_path / "other", ca_template)
    assert defaults.config["SMS"] == {"url": "", "token": "", "timeout": 5.0, "tries": 3,
                                      "backoff": 0.5}


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://127.0.0.1:port/sms"])
def test_a_url_that_is_not_a_usable_http_url_fails_the_sms_not_the_page(demo, monkeypatch, url):
    monkeypatch.setattr(settings.current(), "sms", sms_config(url))
    note = send_code(demo["person"])
    assert note.status == "failed" and note.tries == 1


def test_a_verification_code_goes_out_in_clear_and_is_then_deleted_from_the_outbox(demo, gateway):
    from services import verification
    verification.send_sms_code(demo["person"])
    [request] = gateway.requests
    assert "인증번호" in request["json"]["text"]
    code = re.search(r"\b(\d{6})\b", request["json"]["text"]).group(1)
    note = Notification.get_by_id(request["json"]["id"])
    assert note.status == "sent" and note.sealed and note.body == ""
    verification.check_sms_code(demo["person"], code)       # the code works all the same
