"""The periodic work `jobs run` does, as a list of tasks that can be printed (a dry run, for
any date) or carried out. Safe to run from cron every few minutes, and twice at once: each
task claims its work in the database before acting (a reminder's unique row, a renewal's
claim on the certificate, a CRL number, an outbox row), so a second run skips what the first
took."""
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pki.profile import KST
from services import (
    ca_store,
    ceremony,
    checkpoints,
    clock,
    downloads,
    enrolment_codes,
    notify,
    reminders,
    renewal,
    reservations,
    status,
    transfer,
)
from services.errors import DomainError
from services.flows import claim_once

ACTOR = "system:jobs"


@dataclass
class Task:
    plan: str                            # what it would do, for the dry run
    run: Callable[[], str | None]        # do it; what was done, or None when nothing was


def _day(moment: dt.datetime) -> str:
    return f"{clock.aware(moment).astimezone(KST):%Y-%m-%d}"


def _renewal_task(cert) -> Task:
    def run():
        try:
            record = renewal.auto_renew(cert, ACTOR)
        except DomainError as error:
            if error.code in ("auto_renew_off", "auto_renew_not_due"):
                return None                  # changed since the run looked: nothing to do
            return f"Did not renew {cert.serial}: {error.code}."
        return f"Renewed {cert.serial} automatically as {record.serial} ({cert.customer.code})."
    return Task(f"Renew {cert.serial} automatically ({cert.customer.code}, "
                f"{cert.auto_renew_days} days before its expiry on {_day(cert.not_after)}).", run)


def _reminder_task(item: reminders.DueReminder) -> Task:
    cert = item.certificate
    what = (f"the {item.days_before}-day expiry reminder for {cert.serial} "
            f"({cert.customer.code}, expires {_day(cert.not_after)})")
    if item.skipped:
        what += ", skipping the " + ", ".join(f"{d}-day" for d in item.skipped) + " one"

    def run():
        return ("Sent " + what + ".") if reminders.send(item, ACTOR) else None
    return Task("Send " + what + ".", run)


def tasks(at: dt.datetime) -> list[Task]:
    """What a run at `at` would do, in the order it does it. Each task looks again when it
    runs, so a plan that went stale meanwhile does nothing wrong."""
    found = []
    count = downloads.expired_count(at)
    if count:
        found.append(Task(f"Purge {count} expired downloads.",
                          lambda: f"Purged {downloads.purge_expired()} expired downloads."))
    count = transfer.expired_count(at)
    if count:
        found.append(Task(f"Purge {count} expired transfers.",
                          lambda: f"Purged {transfer.purge()} expired transfers."))
    count = enrolment_codes.ended_count(at)
    if count:
        found.append(Task(f"Purge {count} ended reference numbers.",
                          lambda: f"Purged {enrolment_codes.purge()} ended reference numbers."))
    # Renewals before reminders: a certificate renewed now gets no reminder.
    found += [_renewal_task(cert) for cert in renewal.auto_renewals_due(at)]
    found += [_reminder_task(item) for item in reminders.due(at)]
    count = reservations.unsettled(at).count()
    if count:
        found.append(Task(f"Settle {count} interrupted issuances.", _settle_reservations))
    due = status.crls_due(at)
    partitions = [scope for scope in due if scope is not None]
    if partitions:
        found.append(Task(f"Publish the CRLs of {len(partitions)} partitions.",
                          _publish_partitions))
    if None in due:
        found.append(Task("Publish a new CRL.", _publish_crl))
    if ca_store.signer_due("ocsp", at):
        found.append(Task("Issue a new OCSP signer.", _rotate_ocsp_signer))
    if ca_store.signer_due("cmp", at):
        found.append(Task("Issue a new CMP signer.", _rotate_cmp_signer))
    certificates, expired = status.ocsp_refresh_due(at)
    if certificates or expired:
        found.append(Task(f"Sign the OCSP answers of {certificates} certificates and drop "
                          f"{expired} about expired ones.", _refresh_ocsp))
    warning = ceremony.root_crl_warning(at)
    if warning:          # only a ceremony can help: said on every run until one is held
        found.append(Task("Warn: " + warning, lambda: "Warning: " + warning))
    # Retries last: with the gateway down they take a while, and the rest should not wait.
    count = notify.pending_retries().count()
    if count:
        found.append(Task(f"Retry {count} notifications that could not be sent.", _retry))
    # The checkpoint after everything else, so that it seals what this run recorded too.
    if found or checkpoints.is_due():
        found.append(Task("Sign an audit checkpoint.", _sign_checkpoint))
    return found


def _sign_checkpoint() -> str | None:
    signed = checkpoints.sign()
    return signed and f"Signed an audit checkpoint at event {signed.event_id}."


def _settle_reservations() -> str:
    abandoned, revoked = reservations.settle(ACTOR)
    return (f"Settled interrupted issuances: {abandoned} never signed, {revoked} signed but "
            "never delivered, revoked.")


def _retry() -> str:
    report = notify.retry_outbox()
    return (f"Retried {report.tried} notifications: {report.sent} sent, "
            f"{report.failed} failed ({report.gave_up} given up).")


def _publish_crl() -> str | None:
    if None not in status.crls_due():    # another run published one a moment ago
        return None
    crl = status.publish_crl()
    return f"Published CRL {crl.number} with {crl.entries} entries."


def _publish_partitions() -> str | None:
    # Each looked at again just before: a second run at once skips what the first did.
    published = [status.publish_crl(scope) for scope in status.crls_due()
                 if scope is not None and scope in status.crls_due()]
    if not published:
        return None
    return (f"Published the CRLs of {len(published)} partitions "
            f"({sum(crl.entries for crl in published)} entries in all).")


def _claim_rotation(role: str) -> bool:
    # One run per signer rotates it: the claim is keyed on the signer being replaced.
    keys = ca_store.load_ca()
    old = keys.ocsp_cert if role == "ocsp" else keys.cmp_cert
    return ca_store.signer_due(role) and claim_once(
        f"{role}-signer:{old.serial_number:x}" if old else f"{role}-signer:first")


def _rotate_ocsp_signer() -> str | None:
    if not _claim_rotation("ocsp"):
        return None
    fingerprint, signed = status.rotate_ocsp_signer(ACTOR)
    return f"New OCSP signer, SHA-256 {fingerprint}; signed the OCSP answers of {signed} " \
        "certificates again."


def _rotate_cmp_signer() -> str | None:
    if not _claim_rotation("cmp"):
        return None
    return f"New CMP signer, SHA-256 {ca_store.rotate_signer('cmp', ACTOR)}."


def _refresh_ocsp() -> str | None:
    signed, dropped = status.refresh_ocsp_answers()
    if not (signed or dropped):           # the signer rotation just did it, or another run
        return None
    return f"Signed the OCSP answers of {signed} certificates; dropped {dropped} about " \
        "expired ones."


def run() -> list[str]:
    """Do what is due now; the lines say what was done."""
    done = []
    for task in tasks(clock.now()):
        line = task.run()
        if line:
            done.append(line)
    return done


def end_of_day(day: dt.date) -> dt.datetime:
    """23:59:59 KST on `day`, as naive UTC: a dry run "on a date" covers the whole day."""
    return clock.naive(dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=KST))
