"""`jobs run`: expiry reminders and automatic renewals across a simulated year, the dry run
for any date, and two runs at once doing each thing once."""
import datetime as dt
import os
import subprocess
import sys
from email.header import decode_header, make_header

import pytest

from models import AuditEvent, Certificate, Crl, Download, Notification, Reminder
from services import audit, clock, issuance, jobs, renewal, status
from services.errors import DomainError
from tests.conftest import REPO
from tests.test_notify import smtp_server  # noqa: F401  (the aiosmtpd fixture)
from tests.test_renewal import PASSWORD, RRN, expiry, set_kst


def issue(customer, type_id, offer_downloads=False):
    return issuance.issue_certificate(customer, type_id, idn=RRN, actor="test",
                                      password=PASSWORD,
                                      offer_downloads=offer_downloads).certificate


def sent(customer, purpose, channel="sms"):
    return list(Notification.select().where(
        (Notification.customer == customer) & (Notification.purpose == purpose)
        & (Notification.channel == channel)).order_by(Notification.id))


def test_a_simulated_year_of_reminders_and_automatic_renewal(demo):
    person = demo["person"]
    person.language, person.email = "en", "hong@example.com"
    person.save()
    automatic = renewal.set_auto_renewal(issue(person, "personal-banking"), 7, "test")
    manual = issue(person, "personal-general")
    end = expiry(manual)
    start = clock.aware(clock.now()).astimezone(renewal.KST).date()
    when = {}                              # what happened on which KST day
    for offset in range(0, 400):
        day = start + dt.timedelta(days=offset)
        set_kst(day, 3)                    # a night run sends nothing new
        before = Notification.select().count()
        jobs.run()
        assert Notification.select().count() == before, day
        set_kst(day, 9, 30)
        for line in jobs.run():
            when.setdefault(day, []).append(line)
    reminders = {(r.certificate_id, r.days_before): r.status for r in Reminder.select()}
    assert reminders == {(automatic.id, 30): "sent", (manual.id, 30): "sent",
                         (manual.id, 7): "sent", (manual.id, 1): "sent"}
    days = {d for d, lines in when.items() if any("reminder" in line for line in lines)}
    assert days == {end - dt.timedelta(days=30), end - dt.timedelta(days=7),
                    end - dt.timedelta(days=1)}
    # The automatic renewal, 7 days before, with the same key, once; it carries on.
    successor = Certificate.get_by_id(automatic.id).replaced_by
    assert successor is not None and successor.auto_renew_days == 7
    assert any(f"Renewed {automatic.serial} automatically as {successor.serial}" in line
               for line in when[end - dt.timedelta(days=7)])
    assert expiry(successor) == end.replace(year=end.year + 1)
    assert Certificate.select().count() == 3
    # The messages, in the customer's language, by SMS and email alike.
    for channel in ("sms", "email"):
        texts = [n.body for n in sent(person, "expiry_reminder", channel)]
        assert len(texts) == 4
        assert sum("It will be renewed automatically on "
                   f"{end - dt.timedelta(days=7):%Y-%m-%d}" in t for t in texts) == 1
        assert sum(f"expires on {end:%Y-%m-%d}, in 7 day(s)" in t for t in texts) == 1
        ready = [n.body for n in sent(person, "renewal_ready", channel)]
        assert len(ready) == 1 and "renewed automatically" in ready[0]
    assert audit.verify_chain() is None


def test_reminders_go_out_in_korean_and_only_the_latest_when_runs_were_missed(demo):
    cert = issue(demo["person"], "personal-banking")
    set_kst(expiry(cert) - dt.timedelta(days=5), 10)      # no run for the 30- and 7-day ones
    lines = jobs.run()
    assert [line for line in lines if "reminder" in line] == [
        f"Sent the 7-day expiry reminder for {cert.serial} (P0000001, expires "
        f"{expiry(cert):%Y-%m-%d}), skipping the 30-day one."]
    texts = [n.body for n in sent(demo["person"], "expiry_reminder")]
    assert len(texts) == 1 and "만료됩니다" in texts[0] and f"{expiry(cert):%Y-%m-%d}" in texts[0]
    again = jobs.run()
    assert [line for line in again if "reminder" in line] == []
    assert len(sent(demo["person"], "expiry_reminder")) == 1


@pytest.mark.parametrize("change", [
    lambda cert: renewal.renew_certificate(cert, "test"),
    lambda cert: status.revoke_certificate(cert, "cessation-of-operation", actor="t"),
    lambda cert: status.suspend_certificate(cert, actor="t"),
])
def test_no_reminder_for_a_renewed_revoked_or_suspended_certificate(demo, change):
    cert = issue(demo["person"], "personal-banking")
    set_kst(expiry(cert) - dt.timedelta(days=20), 10)
    change(cert)
    jobs.run()
    assert sent(demo["person"], "expiry_reminder") == [] and Reminder.select().count() == 0


def test_dry_run_says_what_would_happen_on_a_date_and_changes_nothing(app, demo):
    automatic = renewal.set_auto_renewal(issue(demo["person"], "personal-banking",
                                               offer_downloads=True), 7, "test")
    manual = issue(demo["person"], "personal-general")
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["jobs", "run", "--as-of", "2027-01-01"])
    assert refused.exit_code == 2 and "only together with --dry-run" in refused.output
    end = expiry(manual)
    counts = lambda: [model.select().count() for model in (  # noqa: E731
        Certificate, Reminder, Notification, Crl, AuditEvent)] + [
        Download.select().where(Download.content.is_null(False)).count()]
    before = counts()
    result = runner.invoke(args=["jobs", "run", "--dry-run", "--as-of",
                                 f"{end - dt.timedelta(days=7):%Y-%m-%d}"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Dry run for {end - dt.timedelta(days=7):%Y-%m-%d} 23:59:59 KST" in out
    assert (f"Would: Renew {automatic.serial} automatically (P0000001, 7 days before its "
            f"expiry on {end:%Y-%m-%d}).") in out
    assert (f"Would: Send the 7-day expiry reminder for {manual.serial} (P0000001, expires "
            f"{end:%Y-%m-%d}), skipping the 30-day one.") in out
    assert "Would: Purge 4 expired downloads." in out       # the 4 links of the first issuance
    assert "Would: Issue a new OCSP signer." in out
    assert "Would: Publish a new CRL." in out
    assert len(automatic.serial) == 40
    assert counts() == before
    today = runner.invoke(args=["jobs", "run", "--dry-run"])
    assert today.exit_code == 0 and "Would: Send" not in today.output


def test_two_runs_at_once_renew_once_and_remind_once(app, demo):
    """Two `flask jobs run` processes at the same moment, on the real clock: the test makes
    certificates that are due now by issuing them with the clock set a year back."""
    today = clock.aware(clock.now()).astimezone(renewal.KST).date()
    set_kst(today - dt.timedelta(days=360), 12)       # expires in 5 or 6 days (a leap year)
    automatic = renewal.set_auto_renewal(issue(demo["person"], "personal-banking"), 7, "test")
    manual = issue(demo["person"], "personal-general")
    clock.reset()
    env = {**os.environ, "CERTCENTER_INSTANCE": app.config["INSTANCE"],
           "FLASK_APP": "app"}
    env.pop("CERTCENTER_DEMO", None)
    runs = [subprocess.Popen([sys.executable, "-m", "flask", "jobs", "run"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
    combined = "".join(out for out, _err in outputs)
    assert combined.count(f"Renewed {automatic.serial} automatically") == 1, combined
    assert combined.count(f"reminder for {manual.serial}") == 1, combined
    assert Certificate.select().count() == 3
    assert AuditEvent.select().where(AuditEvent.action == "certificate.renew").count() == 1
    assert len(sent(demo["person"], "expiry_reminder")) == 1
    assert len(sent(demo["person"], "renewal_ready")) == 1
    assert audit.verify_chain() is None


def test_operators_turn_automatic_renewal_on_and_off_by_serial(app, demo):
    cert = issue(demo["person"], "personal-banking")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["certs", "auto-renew", cert.serial.upper(), "--lead-days",
                                 "14", "--operator", "kim"])
    assert result.exit_code == 0, result.output
    due = expiry(cert) - dt.timedelta(days=14)
    assert f"{cert.serial} will be renewed automatically on {due:%Y-%m-%d} 09:00 KST" in result.output
    assert Certificate.get_by_id(cert.id).auto_renew_days == 14
    assert AuditEvent.select().where(AuditEvent.action == "certificate.auto_renew").get().actor \
        == "operator:kim"
    set_kst(due, 10)                             # past the time: it says the next run does it
    result = runner.invoke(args=["certs", "auto-renew", cert.serial, "--lead-days", "14"])
    assert f"{cert.serial} is due for automatic renewal now" in result.output
    result = runner.invoke(args=["certs", "auto-renew", cert.serial, "--off"])
    assert result.exit_code == 0 and "is off" in result.output
    assert Certificate.get_by_id(cert.id).auto_renew_days is None
    for wrong in ([], ["--off", "--lead-days", "7"], ["--lead-days", "10"]):
        assert runner.invoke(args=["certs", "auto-renew", cert.serial, *wrong]).exit_code == 2
    unknown = runner.invoke(args=["certs", "auto-renew", "ab" * 20, "--lead-days", "7"])
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output
    status.revoke_certificate(cert, "cessation-of-operation", actor="t")
    revoked = runner.invoke(args=["certs", "auto-renew", cert.serial, "--lead-days", "7"])
    assert revoked.exit_code == 1 and "유효한 인증서에만" in revoked.output     # Korean by default


def subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def test_reminder_and_renewal_emails_go_out_by_smtp_with_a_subject(demo, smtp_server):
    person = demo["person"]
    person.email = "gildong@example.com"
    person.save()
    cert = renewal.set_auto_renewal(issue(person, "personal-banking"), 30, "test")
    set_kst(expiry(cert) - dt.timedelta(days=30), 9, 5)
    jobs.run()                     # renewed 30 days before: the reminder is not needed
    [message] = smtp_server.messages
    assert message["To"] == "gildong@example.com"
    assert subject(message) == "[인증센터] 인증서가 갱신되었습니다"
    assert "자동으로 갱신" in message.get_payload(decode=True).decode()
    other = issue(person, "personal-general")
    set_kst(expiry(other) - dt.timedelta(days=7), 9, 5)
    jobs.run()
    assert subject(smtp_server.messages[-1]) == "[인증센터] 인증서 만료가 다가옵니다"


def reminder_texts(customer):
    return [n.body for n in sent(customer, "expiry_reminder")]


def test_a_late_reminder_says_the_days_really_left_or_today(demo):
    person = demo["person"]
    person.language = "en"
    person.save()
    cert = issue(person, "personal-banking")
    set_kst(expiry(cert) - dt.timedelta(days=3), 10)           # the 7-day run was missed
    jobs.run()
    assert f"expires on {expiry(cert):%Y-%m-%d}, in 3 day(s)" in reminder_texts(person)[-1]
    set_kst(expiry(cert), 10)                                  # and the 1-day one too
    jobs.run()
    assert f"expires today, {expiry(cert):%Y-%m-%d}" in reminder_texts(person)[-1]
    assert len(reminder_texts(person)) == 2


def test_a_reissue_keeps_the_reminders_already_sent_and_automatic_renewal(demo):
    person = demo["person"]
    cert = issue(person, "personal-banking")
    set_kst(expiry(cert) - dt.timedelta(days=7), 10)
    jobs.run()
    assert len(reminder_texts(person)) == 1
    reissued = issue(person, "personal-banking")               # same expiry date
    assert reissued.not_after == cert.not_after
    clock.advance(dt.timedelta(hours=1))
    assert [line for line in jobs.run() if "reminder" in line] == []
    assert len(reminder_texts(person)) == 1                    # no second 7-day reminder
    set_kst(expiry(cert) - dt.timedelta(days=1), 10)
    assert len([line for line in jobs.run() if "1-day expiry reminder" in line]) == 1
    # Automatic renewal stays on through a reissue, and the reissued one is renewed.
    renewal.set_auto_renewal(Certificate.get_by_id(reissued.id), 30, "test")
    again = issue(person, "personal-banking")
    assert Certificate.get_by_id(again.id).auto_renew_days == 30
    assert any(f"Renewed {again.serial} automatically" in line for line in jobs.run())


def test_automatic_renewal_turned_off_or_put_later_after_the_run_looked_is_not_done(demo):
    cert = renewal.set_auto_renewal(issue(demo["person"], "personal-banking"), 14, "test")

    def planned():
        [task] = [task for task in jobs.tasks(clock.now()) if "Renew" in task.plan]
        return task
    set_kst(expiry(cert) - dt.timedelta(days=14), 10)
    task = planned()
    renewal.set_auto_renewal(Certificate.get_by_id(cert.id), 7, "customer:P0000001")
    assert task.run() is None                             # not due any more: nothing done
    set_kst(expiry(cert) - dt.timedelta(days=7), 10)
    task = planned()
    renewal.set_auto_renewal(Certificate.get_by_id(cert.id), None, "customer:P0000001")
    assert task.run() is None
    assert Certificate.select().count() == 1


def test_an_automatic_renewal_that_did_not_happen_gets_the_plain_reminder(demo, monkeypatch):
    person = demo["person"]
    person.language = "en"
    person.save()
    cert = renewal.set_auto_renewal(issue(person, "personal-banking"), 7, "test")
    set_kst(expiry(cert) - dt.timedelta(days=30), 10)
    jobs.run()
    assert "It will be renewed automatically" in reminder_texts(person)[-1]

    def fails(*args, **kwargs):
        raise DomainError("renew_conflict", status=409)
    monkeypatch.setattr(renewal, "renew_certificate", fails)
    set_kst(expiry(cert) - dt.timedelta(days=7), 10)
    lines = jobs.run()
    assert f"Did not renew {cert.serial}: renew_conflict." in lines
    assert "in 7 day(s). Renew it on our site" in reminder_texts(person)[-1]
