"""Notifications: every message is written to the outbox, in the customer's language, then
handed to the channel's backend. SMS goes to an HTTP gateway when CERTCENTER_SMS_URL is set,
and otherwise stays queued in the outbox (the demo inbox reads it there); email goes out by
SMTP when SMTP is configured. Failed messages are retried by `retry_outbox()` (cron: jobs run).

Outbox states: queued (no backend: left for whatever reads the table), sending (a process has
claimed the row and is delivering it; `sent_at` then holds when that attempt began), sent,
failed. Each delivery first claims its row with a conditional UPDATE, so two processes never
send the same message; a row left "sending" by a crashed process is reclaimed after
STALE_CLAIM."""
import http.client
import json
import logging
import smtplib
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from models import Notification, db
from services import clock, secrets, settings
from services.i18n import N_, translate

log = logging.getLogger(__name__)

MAX_TRIES = 10                        # deliveries per message, the first included; then give up
STALE_CLAIM = timedelta(minutes=10)   # far longer than one delivery (tries x timeout + backoff)
CODE_WORTH_SENDING = timedelta(minutes=3)   # a verification code's life
DEFAULT_SUBJECT = N_("[CertCenter] A message from the certificate center")

# Module-level so tests can replace it; HttpSmsSender also takes one.
sleep = time.sleep


def text_of(notification: Notification) -> str:
    """The message as the recipient reads it. A message that carries a code is kept sealed
    (AES-GCM under an instance key, like TOTP secrets) and is opened only to be sent or shown
    in the demo inbox; once delivered, its text is deleted."""
    if not notification.sealed:
        return notification.body
    plain = secrets.decrypt("outbox", notification.body) if notification.body else None
    return plain.decode() if plain is not None else ""


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
        message.set_content(text_of(notification))
        try:
            with smtplib.SMTP(self.config["host"], int(self.config.get("port", 25)),
                              timeout=10) as smtp:
                if self.config.get("starttls"):
                    smtp.starttls()
                if self.config.get("user"):
                    smtp.login(self.config["user"], self.config["password"])
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            # The class name only: SMTP replies can quote the address or the login.
            log.warning("Email %s not sent: %s", notification.id, type(error).__name__)
            return "failed"
        return "sent"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a misconfigured URL: following it would hand the bearer token (urllib
    keeps the Authorization header) to another address. It surfaces as an HTTPError."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class HttpSmsSender:
    """POSTs each SMS as JSON to the gateway. Within one delivery it tries up to `tries`
    times, waiting backoff, 2 x backoff, ... between tries, on server errors (5xx, 408,
    429), timeouts and connection errors; any other answer is final. Never logs the token,
    the recipient or the text."""

    def __init__(self, config: dict, sleep=None):
        self.url = config["url"]
        self.token = config.get("token") or ""
        self.timeout = float(config.get("timeout", 5))
        self.tries = max(1, int(config.get("tries", 3)))
        self.backoff = float(config.get("backoff", 0.5))
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

    def deliver(self, notification: Notification) -> str:
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            log.error("SMS %s not sent: CERTCENTER_SMS_URL must be an http(s) URL",
                      notification.id)
            return "failed"
        # The id lets the gateway drop a second copy when a retry follows a lost answer.
        payload = json.dumps({"to": notification.recipient, "text": text_of(notification),
                              "id": notification.id}, ensure_ascii=False).encode("utf-8")
        for attempt in range(1, self.tries + 1):
            if attempt > 1:
                delay = self.backoff * 2 ** (attempt - 2)
                if delay > 0:
                    (self._sleep or sleep)(delay)
            outcome = self._post(payload, notification.id, attempt)
            if outcome != "retry":
                return outcome
        return "failed"

    def _post(self, payload: bytes, note_id: int, attempt: int) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        request = urllib.request.Request(self.url, data=payload, headers=headers,
                                         method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout):
                return "sent"           # a 2xx; urllib raises HTTPError for the rest
        except urllib.error.HTTPError as error:
            error.close()
            code = error.code
            again = code >= 500 or code in (408, 429)
            log.warning("SMS %s: gateway answered HTTP %s (try %d of %d)%s", note_id, code,
                        attempt, self.tries, "" if again else "; not retrying")
            return "retry" if again else "failed"
        except (OSError, http.client.HTTPException) as error:
            # Timeouts, refused or reset connections, TLS failures, garbled answers.
            reason = getattr(error, "reason", error)
            log.warning("SMS %s: gateway unreachable: %s (try %d of %d)", note_id,
                        type(reason).__name__, attempt, self.tries)
            return "retry"
        except ValueError as error:
            # A malformed URL (say, a port that is not a number): trying again will not help.
            log.error("SMS %s not sent: bad CERTCENTER_SMS_URL (%s)", note_id,
                      type(error).__name__)
            return "failed"


def _sender(channel: str):
    """The channel's backend, or None when it has none (the message stays queued)."""
    config = settings.current()
    if channel == "email" and config.smtp.get("host"):
        return SmtpSender(config.smtp)
    if channel == "sms" and config.sms.get("url"):
        return HttpSmsSender(config.sms)
    return None


def _configured_channels() -> list[str]:
    return [channel for channel in ("sms", "email") if _sender(channel) is not None]


def _finish(note: Notification, sender, claimed_at: datetime) -> str:
    """Deliver a row this process has claimed and record the outcome, unless the claim was
    lost meanwhile (reclaimed as stale): then the newer claim's outcome stands."""
    status = sender.deliver(note)
    if status not in ("sent", "failed"):
        status = "failed"
    delivered = {"body": ""} if status == "sent" and note.sealed else {}
    Notification.update(status=status, sent_at=clock.now() if status == "sent" else None,
                        **delivered).where(
        (Notification.id == note.id) & (Notification.status == "sending")
        & (Notification.sent_at == claimed_at)).execute()
    return status


def notify(customer, purpose: str, message: str, subject: str | None = None,
           sealed: bool = False, **params) -> None:
    """Send `message` (an N_-marked msgid with %(name)s params) by SMS, and by email too when
    the customer has an address. `sealed`: the text carries a secret (a code), so it is kept
    encrypted until it is sent and deleted once it has been."""
    channels = [("sms", customer.phone)]
    if customer.email:
        channels.append(("email", customer.email))
    for channel, recipient in channels:
        sender = _sender(channel)
        now = clock.now()
        text = translate(customer.language, message, **params)
        # With a backend the row is born claimed ("sending", first try counted), so a crash
        # before the outcome is written leaves it for retry_outbox() to reclaim.
        with db.atomic():
            note = Notification.create(
                customer=customer, channel=channel, recipient=recipient, purpose=purpose,
                subject=translate(customer.language, subject or DEFAULT_SUBJECT),
                body=secrets.encrypt("outbox", text.encode()) if sealed else text, sealed=sealed,
                language=customer.language, created_at=now,
                status="sending" if sender else "queued", tries=1 if sender else 0,
                sent_at=now if sender else None)
        if sender:
            _finish(note, sender, now)


# -- retrying ------------------------------------------------------------------------------

@dataclass
class RetryReport:
    """What one retry_outbox() run did."""
    sent: int = 0
    failed: int = 0
    gave_up: int = 0      # of the failed: reached max_tries, not retried again
    skipped: int = 0      # claimed by another process first

    @property
    def tried(self) -> int:
        return self.sent + self.failed


def _retryable(now: datetime, max_tries: int):
    """Rows retry_outbox() may claim now: failed, or stuck in "sending" past STALE_CLAIM;
    under the cap; on a channel that has a backend."""
    stale = ((Notification.status == "sending")
             & (Notification.sent_at.is_null() | (Notification.sent_at < now - STALE_CLAIM)))
    # A verification code is useless once it has expired: retrying it would only confuse.
    expired_code = ((Notification.purpose == "verification_code")
                    & (Notification.created_at < now - CODE_WORTH_SENDING))
    return (((Notification.status == "failed") | stale)
            & (Notification.tries < max_tries)
            & Notification.channel.in_(_configured_channels()) & ~expired_code)


def pending_retries(max_tries: int = MAX_TRIES):
    """The notifications retry_outbox() would retry now, oldest first (a query: iterate it
    or call .count()). Sends nothing."""
    return (Notification.select().where(_retryable(clock.now(), max_tries))
            .order_by(Notification.id))


def retry_outbox(limit: int = 100, max_tries: int = MAX_TRIES) -> RetryReport:
    """Re-deliver up to `limit` failed notifications (and ones a crashed process left
    "sending"), each counted as one more try; after `max_tries` a message stays "failed" and
    is not tried again. Safe to run in several processes at once: each row is claimed with a
    conditional UPDATE before it is sent. Call it outside a transaction, so that claims
    commit at once and no lock is held while a gateway answers."""
    report = RetryReport()
    now = clock.now()
    # A stale claim already at the cap cannot be retried: mark it failed so it stops
    # looking in flight.
    Notification.update(status="failed", sent_at=None).where(
        (Notification.status == "sending") & (Notification.tries >= max_tries)
        & (Notification.sent_at.is_null() | (Notification.sent_at < now - STALE_CLAIM))
    ).execute()
    for note_id in [row.id for row in pending_retries(max_tries).limit(limit)]:
        claimed_at = clock.now()
        claimed = Notification.update(
            status="sending", sent_at=claimed_at, tries=Notification.tries + 1).where(
            (Notification.id == note_id) & _retryable(claimed_at, max_tries)).execute()
        if not claimed:
            report.skipped += 1
            continue
        note = Notification.get_by_id(note_id)
        if _finish(note, _sender(note.channel), claimed_at) == "sent":
            report.sent += 1
        else:
            report.failed += 1
            if note.tries >= max_tries:
                report.gave_up += 1
                log.warning("Notification %s: giving up after %d tries", note.id, note.tries)
    if report.tried or report.skipped:
        log.info("Outbox retry: %d sent, %d failed (%d given up), %d taken by another run",
                 report.sent, report.failed, report.gave_up, report.skipped)
    return report


def sms_inbox(limit: int = 50):
    """The newest SMS messages: the demo inbox."""
    return (Notification.select().where(Notification.channel == "sms")
            .order_by(Notification.id.desc()).limit(limit))
