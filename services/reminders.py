"""Expiry reminders: an SMS (and an email when the customer has one) 30, 7 and 1 day before a
certificate expires, from 09:00 KST on that day, once each, in the customer's language. None
for a certificate that is renewed, revoked or suspended. When a job run finds several due at
once (the jobs did not run for a while), only the latest is sent and the others are recorded
as skipped: one message, not three."""
import datetime as dt
from dataclasses import dataclass
from datetime import timedelta

from peewee import IntegrityError

from models import Certificate, Reminder, db
from pki.profile import KST
from services import audit, clock, issuance, limits
from services.errors import DomainError
from services.i18n import N_
from services.notify import notify
from services.renewal import CLAIM_LIFE, SEND_HOUR, auto_renewal_due, days_before_expiry, expiry_day

REMINDER_DAYS = (30, 7, 1)


@dataclass
class DueReminder:
    certificate: Certificate
    days_before: int
    skipped: list            # earlier reminders that are due too but will not be sent


def due(at: dt.datetime) -> list[DueReminder]:
    """The reminders due at `at` and not yet recorded."""
    candidates = Certificate.select().where(
        (Certificate.status == "valid") & Certificate.replaced_by.is_null()
        & (Certificate.not_after > at)
        & (Certificate.not_after <= at + timedelta(days=max(REMINDER_DAYS) + 1)))
    found = []
    for cert in candidates.order_by(Certificate.not_after):
        done = {r.days_before for r in cert.reminders}
        pending = [d for d in REMINDER_DAYS
                   if d not in done and days_before_expiry(cert, d, SEND_HOUR) <= at]
        if pending:
            found.append(DueReminder(cert, min(pending), [d for d in pending if d != min(pending)]))
    return found


def send(item: DueReminder, actor: str = "system:jobs") -> bool:
    """Record the reminder, then send it. False when another run recorded it first."""
    cert = item.certificate
    try:
        with db.atomic():
            # Looked at again under the write lock: renewed or revoked since it was found, or
            # being renewed by another run at this moment, it gets no reminder.
            cert = Certificate.get_by_id(cert.id)
            now = clock.now()
            renewing = (cert.renewal_started_at is not None
                        and cert.renewal_started_at > now - CLAIM_LIFE)
            if cert.status != "valid" or cert.replaced_by_id is not None or renewing:
                return False
            Reminder.create(certificate=cert, days_before=item.days_before, status="sent",
                            created_at=now)
            for days in item.skipped:
                Reminder.create(certificate=cert, days_before=days, status="skipped",
                                created_at=now)
            audit.record(actor, "reminder.sent", cert.serial, days_before=item.days_before,
                         skipped=item.skipped)
    except IntegrityError:
        return False
    _tell(cert, now)
    return True


def resendable(cert: Certificate) -> bool:
    """A valid certificate, not renewed, within the first reminder's reach of its expiry: one
    whose customer an operator may send the expiry notice again."""
    now = clock.now()
    return (cert.status == "valid" and cert.replaced_by_id is None
            and now < cert.not_after <= now + timedelta(days=max(REMINDER_DAYS)))


# Support may send a notice again a few times a day, not flood a customer's phone.
RESEND_LIMIT = 3


def resend(cert: Certificate, actor: str) -> None:
    """An operator sends the expiry notice again (the customer lost it, or asks when): the
    same text the next reminder would carry, audited as the operator's."""
    cert = Certificate.get_by_id(cert.id)
    if not resendable(cert):
        raise DomainError("reminder_not_resendable", status=409, days=max(REMINDER_DAYS))
    try:
        limits.reserve(limits.Limit("reminder-resend:" + cert.serial, RESEND_LIMIT,
                                    timedelta(days=1)))
    except limits.LimitReached:
        raise DomainError("reminder_resent_enough", status=429, times=RESEND_LIMIT) from None
    audit.record(actor, "reminder.resent", cert.serial)
    _tell(cert, clock.now())


def _tell(cert: Certificate, now: dt.datetime) -> None:
    """The expiry text, in the customer's language: what renewal will do, or what to do."""
    language = cert.customer.language
    # The days really left, in KST calendar days: a late run sends the latest reminder only,
    # and it must not say "in 7 days" three days before the end.
    days_left = (expiry_day(cert) - clock.aware(now).astimezone(KST).date()).days
    params = {"type": issuance.type_name(cert.cert_type, language),
              "date": _day(cert.not_after), "days": days_left,
              "subject": N_("[CertCenter] Your certificate expires soon")}
    automatic = auto_renewal_due(cert)
    if automatic is not None and automatic > now:
        notify(cert.customer, "expiry_reminder", N_(
            "[CertCenter] Your %(type)s certificate expires on %(date)s. It will be renewed "
            "automatically on %(auto_date)s; there is nothing you need to do."),
            auto_date=_day(automatic), **params)
    elif days_left == 0:
        notify(cert.customer, "expiry_reminder", N_(
            "[CertCenter] Your %(type)s certificate expires today, %(date)s. Renew it on our "
            "site with your certificate files before midnight, under Renew a certificate."),
            **params)
    else:
        # No automatic renewal, or one that was due and has not happened: renew by hand.
        notify(cert.customer, "expiry_reminder", N_(
            "[CertCenter] Your %(type)s certificate expires on %(date)s, in %(days)s day(s). "
            "Renew it on our site with your certificate files before then, under Renew a "
            "certificate."), **params)


def _day(moment: dt.datetime) -> str:
    return f"{clock.aware(moment).astimezone(KST):%Y-%m-%d}"
