"""Notifications reach people: SMS stays in the outbox for the gateway (and the demo
inbox); email goes out by SMTP to a real SMTP server the test starts on 127.0.0.1."""
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from models import Notification
from services import settings
from services.i18n import N_
from services.notify import notify


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(app):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    saved = settings.current().smtp
    settings.current().smtp = {"host": "127.0.0.1", "port": controller.port,
                               "sender": "certcenter@bank.example"}
    yield inbox
    settings.current().smtp = saved
    controller.stop()


def test_email_goes_out_by_smtp_in_the_customers_language(demo, smtp_server):
    person = demo["person"]
    person.email = "gildong@example.com"
    person.save()
    notify(person, "test", N_("[CertCenter] Your verification code is %(code)s. It works for "
                              "3 minutes. Never tell it to anyone, including bank staff."),
           code="123456")
    [message] = smtp_server.messages
    assert message["To"] == "gildong@example.com"
    assert "123456" in message.get_payload(decode=True).decode()
    assert "[인증센터]" in message.get_payload(decode=True).decode()
    email = Notification.get(Notification.channel == "email")
    assert email.status == "sent" and email.sent_at is not None
    assert Notification.get(Notification.channel == "sms").status == "queued"


def test_an_unreachable_smtp_server_leaves_the_email_queued_as_failed_not_a_crash(demo):
    settings.current().smtp = {"host": "127.0.0.1", "port": free_port(), "sender": "x@y.z"}
    try:
        person = demo["person"]
        person.email = "gildong@example.com"
        person.save()
        notify(person, "test", N_("[CertCenter] Your verification code is %(code)s. It works "
                                  "for 3 minutes. Never tell it to anyone, including bank "
                                  "staff."), code="123456")
    finally:
        settings.current().smtp = {}
    email = Notification.get(Notification.channel == "email")
    assert email.status != "sent" and email.tries == 1
