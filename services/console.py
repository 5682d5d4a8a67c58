"""What the operators' console shows: the dashboard's counts of work waiting and the CA's
state, search, a customer's and a certificate's pages. Read-only; the actions live in the
services they change."""
import contextlib
import csv
import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import timedelta

from models import (
    AuditEvent,
    Certificate,
    CertificateRequest,
    Customer,
    Download,
    Notification,
)
from services import (
    audit,
    ca_overview,
    clock,
    customers,
    issuance,
    notify,
    operators,
    registration,
    settings,
    status,
)
from services.errors import DomainError

EXPIRING_WITHIN = timedelta(days=30)


@dataclass
class Dashboard:
    pending_requests: int | None         # None where the role does not look at customers
    expiring: int | None
    failed_notifications: int | None
    locked_customers: int | None
    ca: ca_overview.Overview


def dashboard(operator) -> Dashboard:
    now = clock.now()
    counts = [None] * 4
    if operators.may(operator, "lookup"):
        counts = [
            CertificateRequest.select().where(CertificateRequest.status == "requested").count(),
            Certificate.select().where((Certificate.status == "valid")
                                       & (Certificate.not_after > now)
                                       & (Certificate.not_after <= now + EXPIRING_WITHIN)).count(),
            Notification.select().where(Notification.status == "failed").count(),
            Customer.select().where(Customer.self_service_suspended_at.is_null(False)
                                    | (Customer.locked_until > now)).count(),
        ]
    return Dashboard(*counts, ca=ca_overview.overview())


# -- search --------------------------------------------------------------------------------

MAX_RESULTS = 50


@dataclass
class Found:
    customers: list
    certificates: list


def _serial_of(query: str) -> str | None:
    """A serial typed in any case, with or without leading zeros (or colons), as stored."""
    hex_digits = query.replace(":", "").lower()
    if not re.fullmatch(r"[0-9a-f]{1,40}", hex_digits) or int(hex_digits, 16) == 0:
        return None
    return f"{int(hex_digits, 16):040x}"


def search(query: str) -> Found:
    """Customers and certificates matching what an operator typed: a customer code, a name
    (the customer's or the representative's), a phone number, an RRN (typed in full, matched
    by its keyed hash), a business number, or a certificate serial."""
    query = (query or "").strip()
    if not query:
        raise DomainError("search_empty", field="q")
    if len(query) > 100:
        raise DomainError("search_long", field="q")
    number = customers.digits(query)
    found = (Customer.name == query) | (Customer.representative == query)
    if re.fullmatch(r"[PBpb][0-9]{7}", query):
        found |= Customer.code == query.upper()
    if re.fullmatch(r"[0-9]{13}", number):
        with contextlib.suppress(DomainError):
            found |= Customer.rrn_hmac == customers.rrn_lookup(number)
    if re.fullmatch(r"[0-9]{10}", number):
        found |= Customer.business_number == number
    if re.fullmatch(r"01[0-9]{8,9}", number):
        found |= Customer.phone == number
    serial = _serial_of(query)
    certificates = (list(Certificate.select().where(Certificate.serial == serial))
                    if serial else [])
    return Found(list(Customer.select().where(found).order_by(Customer.code)
                      .limit(MAX_RESULTS)), certificates)


def customer(code: str) -> Customer:
    found = Customer.get_or_none(Customer.code == (code or "").upper())
    if found is None:
        raise DomainError("customer_not_found", status=404, customer=code)
    return found


def _fingerprint(algorithm: str, der: bytes) -> str:
    """As `openssl x509 -fingerprint` prints it: upper-case hex pairs joined by colons."""
    digest = hashlib.new(algorithm, der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


@dataclass
class CertificateView:
    record: Certificate
    sha256: str                     # fingerprints of the certificate's DER
    sha1: str                       # the one Korean toolkits show
    downloads: list                 # the files prepared for the customer, newest first
    events: list                    # audit events about it, oldest first


def certificate(serial: str) -> CertificateView:
    record = status.find_certificate(serial)
    der = bytes(record.der)
    return CertificateView(record, _fingerprint("sha256", der), _fingerprint("sha1", der),
                           list(record.downloads.order_by(Download.id.desc())),
                           list(audit.events(target=record.serial)))


# -- the audit trail ---------------------------------------------------------------------------

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    target: str = ""
    since: str = ""          # YYYY-MM-DD, in UTC

    def query(self):
        query = AuditEvent.select()
        if self.actor:
            query = query.where(AuditEvent.actor == self.actor.strip())
        if self.action:
            query = query.where(AuditEvent.action == self.action.strip())
        if self.target:
            query = query.where(AuditEvent.target == self.target.strip())
        if self.since:
            try:
                since = dt.datetime.strptime(self.since.strip(), "%Y-%m-%d")
            except ValueError:
                raise DomainError("date_format", field="since") from None
            # Events are stamped as they are appended, so those since a date are the trail
            # from the first one stamped then, which the `at` index finds at once. Bounded by
            # its id, a page that runs out of events (the last one, or a date with nothing
            # yet: no first, no rows) stops there instead of reading every older event to be
            # sure. Left out would be only an event stamped on or after the date but appended
            # before that first one, which takes a clock set back across the date.
            first = (AuditEvent.select(AuditEvent.id).where(AuditEvent.at >= since)
                     .order_by(AuditEvent.at, AuditEvent.id).limit(1))
            query = query.where((AuditEvent.at >= since) & (AuditEvent.id >= first))
        return query


@dataclass
class AuditPage:
    events: list
    older: int | None        # the id to continue from, when there are older events


def audit_page(chosen: AuditFilter, before: int | None = None) -> AuditPage:
    """Events newest first, PAGE_SIZE at a time, continuing below `before` (keyset paging:
    as fast on the millionth event as on the first)."""
    query = chosen.query()
    if before:
        query = query.where(AuditEvent.id < before)
    events = list(query.order_by(AuditEvent.id.desc()).limit(PAGE_SIZE + 1))
    older = events[PAGE_SIZE - 1].id if len(events) > PAGE_SIZE else None
    return AuditPage(events[:PAGE_SIZE], older)


def audit_csv(chosen: AuditFilter):
    """The matching events as CSV lines, oldest first, hashes included so that a copy can be
    checked against the chain later."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "at", "actor", "action", "target", "details", "prev_hash", "hash"])
    yield out.getvalue()
    for event in chosen.query().order_by(AuditEvent.id).iterator():
        out.seek(0)
        out.truncate()
        writer.writerow([event.id, f"{event.at:%Y-%m-%dT%H:%M:%S}Z", event.actor, event.action,
                         event.target or "", event.details, event.prev_hash, event.hash])
        yield out.getvalue()


# -- the outbox ----------------------------------------------------------------------------

def outbox_page(before: int | None = None) -> "OutboxPage":
    """Notifications not delivered (queued, being sent, failed), newest first, keyset paged."""
    query = Notification.select().where(Notification.status.in_(["queued", "sending", "failed"]))
    if before:
        query = query.where(Notification.id < before)
    rows = list(query.order_by(Notification.id.desc()).limit(PAGE_SIZE + 1))
    # The page names each message's customer: one query for them all, not one per row.
    owners = {c.id: c for c in Customer.select().where(
        Customer.id.in_([note.customer_id for note in rows if note.customer_id]))}
    for note in rows:
        if note.customer_id:
            note.customer = owners[note.customer_id]
    return OutboxPage(rows[:PAGE_SIZE], rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
                      notify.pending_retries().count())


@dataclass
class OutboxPage:
    notifications: list
    older: int | None
    retryable: int            # how many "retry now" would send


def retry_outbox(operator) -> notify.RetryReport:
    """An operator's "retry now": the same run as `jobs run` does, audited as theirs."""
    report = notify.retry_outbox()
    audit.record("operator:" + operator.name, "outbox.retry", None, sent=report.sent,
                 failed=report.failed)
    return report


# -- a customer's page -----------------------------------------------------------------------

RECENT_NOTIFICATIONS = 20


@dataclass
class CustomerPage:
    customer: Customer
    certificates: list
    changes: dict             # serial -> its status changes (services.status.history)
    requests: list
    registered: list
    notifications: list       # the latest RECENT_NOTIFICATIONS, newest first
    paused_until: object      # the end of a pause in identity checks still running, or None
    types: list               # the certificate types the customer may hold, by id


def customer_page(code: str) -> CustomerPage:
    """Everything support needs on the phone: certificates with their status history, business
    requests, other institutions' certificates registered, the latest notifications (what was
    sent, never the text: it may carry a code), and whether identity checks are stopped."""
    found = customer(code)
    certificates = list(issuance.certificates_of(found))
    now = clock.now()
    return CustomerPage(
        found, certificates, status.history(certificates),
        list(found.requests.order_by(CertificateRequest.id.desc())),
        registration.registered_of(found),
        list(found.notifications.order_by(Notification.id.desc()).limit(RECENT_NOTIFICATIONS)),
        found.locked_until if found.locked_until and found.locked_until > now else None,
        [kind.id for kind in issuance.types_for(found)])


# -- the settings page ---------------------------------------------------------------------

@dataclass(frozen=True)
class RunningSetting:
    key: str              # what the template labels
    value: str            # never a secret: a password, token, PIN or key is only "set"
    variable: str         # the environment variable that sets it


def _without_password(url: str) -> str:
    """A database URL as it can be shown: any password in it replaced."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def running_settings(config) -> list[RunningSetting]:
    """What this instance runs with (the application's config, read from the environment)."""
    current = settings.current()
    smtp, sms, pkcs11 = current.smtp, current.sms, current.pkcs11
    rows = [
        ("base_url", current.base_url, "CERTCENTER_BASE_URL"),
        ("instance", str(current.instance), "CERTCENTER_INSTANCE"),
        ("database", _without_password(config["DATABASE_URL"]), "DATABASE_URL"),
        ("ca_org", current.ca_org, "CERTCENTER_CA_ORG"),
        ("bank_code", current.bank_code, "CERTCENTER_BANK_CODE"),
        ("policy_arc", current.policy_arc, "CERTCENTER_POLICY_ARC"),
        ("support_phone", current.support_phone, "CERTCENTER_SUPPORT_PHONE"),
        ("crl_hours", str(current.crl_hours), "CERTCENTER_CRL_HOURS"),
        ("pkcs11", f"{pkcs11['module']} ({pkcs11['token']})" if pkcs11 else "",
         "CERTCENTER_PKCS11_MODULE"),
        ("smtp", f"{smtp['host']}:{smtp['port']} ({smtp['sender']})" if smtp.get("host") else "",
         "CERTCENTER_SMTP_HOST"),
        ("sms", _without_password(sms.get("url", "")), "CERTCENTER_SMS_URL"),
        ("fetch_intermediates", current.fetch_intermediates, "CERTCENTER_FETCH_INTERMEDIATES"),
        ("trusted_proxies", str(config["TRUSTED_PROXIES"]), "CERTCENTER_TRUSTED_PROXIES"),
        ("ops_allow", ", ".join(map(str, config["OPS_ALLOW"])), "CERTCENTER_OPS_ALLOW"),
        ("demo", "1" if current.demo else "", "CERTCENTER_DEMO"),
    ]
    return [RunningSetting(*row) for row in rows]
