"""Notifications: every message is written to the outbox, in the customer's language, then
handed to the channel's backend. SMS stays in the outbox (a gateway, or the demo inbox, reads
it there); email goes out by SMTP when SMTP is configured."""
import smtplib
from email.message import EmailMessage

from models import Notification, db
from services import clock, settings
from services.i18n import translate


class OutboxSender:
    """Leaves the message queued in the outbox table for whatever reads it."""

    def deliver(self, notification: Notification) -> str:
        return "queued"


class SmtpSender:
    def __init__(self, config: dict):
        self.config = config

    def deliver(self, notification: Notification) -> str:
        message = EmailMessage()
        message["From"] = self.config["sender"]
        message["To"] = notification.recipient
        message["Subject"] = notification.subject or ""
        message.set_content(notification.body)
        try:
            with smtplib.SMTP(self.config["host"], int(self.config.get("port", 25)),
                              timeout=10) as smtp:
                if self.config.get("starttls"):
                    smtp.starttls()
                if self.config.get("user"):
                    smtp.login(self.config["user"], self.config["password"])
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException):
            return "failed"
        return "sent"


def _sender(channel: str):
    smtp = settings.current().smtp
    if channel == "email" and smtp.get("host"):
        return SmtpSender(smtp)
    return OutboxSender()


def notify(customer, purpose: str, message: str, subject: str | None = None, **params) -> None:
    """Send `message` (an N_-marked msgid with %(name)s params) by SMS, and by email too when
    the customer has an address."""
    channels = [("sms", customer.phone)]
    if customer.email:
        channels.append(("email", customer.email))
    for channel, recipient in channels:
        with db.atomic():
            note = Notification.create(
                customer=customer, channel=channel, recipient=recipient, purpose=purpose,
                subject=translate(customer.language, subject) if subject else None,
                body=translate(customer.language, message, **params),
                language=customer.language, created_at=clock.now())
        status = _sender(channel).deliver(note)
        if status != "queued":
            note.status, note.tries = status, note.tries + 1
            note.sent_at = clock.now() if status == "sent" else None
            note.save()


def sms_inbox(limit: int = 50):
    """The newest SMS messages: the demo inbox."""
    return (Notification.select().where(Notification.channel == "sms")
            .order_by(Notification.id.desc()).limit(limit))
