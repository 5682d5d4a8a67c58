"""Identity verification (본인확인): who you are (name, RRN, account, PIN; a business also
gives its registration number), then a second factor (an SMS code or a TOTP code).

Every secret a person types has an attempt limit: five wrong step-one tries lock the
customer for 30 minutes and send an SMS alert; failures are also counted per client address.
"""
import hmac
from dataclasses import dataclass
from datetime import timedelta

import pyotp

from models import Account, Customer, OneTimeCode, db
from services import audit, clock, limits, secrets
from services.customers import (
    check_pin_format,
    normalise_account,
    normalise_business_number,
    rrn_lookup,
)
from services.errors import DomainError
from services.i18n import N_

MAX_CUSTOMER_TRIES = 5
LOCK_TIME = timedelta(minutes=30)
MAX_CLIENT_FAILURES = 20            # per client address per hour
CODE_LIFE = timedelta(minutes=3)
CODE_TRIES = 5
RESEND_AFTER = timedelta(seconds=30)
SENDS_PER_HOUR = 5
VERIFIED_IDLE = timedelta(minutes=10)   # a verified session lasts this long without activity
FRESH_FOR = timedelta(minutes=10)       # sensitive steps need a verification this young


@dataclass
class IdentityClaim:
    name: str
    rrn: str
    account: str
    pin: str
    business_number: str | None = None   # given: the customer is a business


# -- per-customer lockout -------------------------------------------------------------------

def _raise_if_locked(customer: Customer) -> None:
    if customer.locked_until and customer.locked_until > clock.now():
        raise DomainError("customer_locked", status=429, until=customer.locked_until)


def _count_customer_failure(customer: Customer, what: str) -> None:
    """One more wrong secret for this customer; the fifth locks them out and alerts them."""
    from services.notify import notify
    locked = False
    with db.atomic():
        Customer.update(failed_tries=Customer.failed_tries + 1).where(
            Customer.id == customer.id).execute()
        customer = Customer.get_by_id(customer.id)
        audit.record("customer:" + customer.code, "verify.failed", customer.code, what=what,
                     tries=customer.failed_tries)
        if customer.failed_tries >= MAX_CUSTOMER_TRIES:
            customer.locked_until = clock.now() + LOCK_TIME
            customer.failed_tries = 0
            customer.save()
            audit.record("system", "customer.locked", customer.code,
                         until=customer.locked_until)
            locked = True
    if locked:      # after the transaction: no lock held while a gateway answers
        notify(customer, "lockout", N_(
            "[CertCenter] Identity checks for your account failed 5 times, so they are "
            "paused for 30 minutes. If this was not you, call us."))


def check_identity(claim: IdentityClaim, client: str) -> Customer:
    """Step one. Returns the customer, or raises one message for every kind of mismatch, so
    that the answer does not tell which detail was wrong."""
    if limits.blocked("identity:" + client, MAX_CLIENT_FAILURES):
        raise DomainError("client_blocked", status=429)
    try:
        rrn_hmac = rrn_lookup(claim.rrn)
        account = normalise_account(claim.account)
        check_pin_format(claim.pin)
        business_number = (normalise_business_number(claim.business_number)
                           if claim.business_number is not None else None)
    except DomainError:
        raise                      # a typing mistake, not a guess: no try is counted
    customer = Customer.get_or_none(Customer.rrn_hmac == rrn_hmac)
    if customer is None:
        limits.count_failure("identity:" + client)
        raise DomainError("identity_mismatch")
    _raise_if_locked(customer)
    owned = Account.get_or_none((Account.number == account) & (Account.customer == customer))
    expected_name = customer.representative if customer.kind == "business" else customer.name
    matches = (owned is not None and secrets.check_pin(claim.pin, owned.pin_hash)
               and claim.name.strip() == expected_name
               and (customer.kind == "business") == (business_number is not None)
               and business_number == customer.business_number)
    if not matches:
        limits.count_failure("identity:" + client)
        _count_customer_failure(customer, "identity")
        raise DomainError("identity_mismatch")
    if customer.failed_tries:
        customer.failed_tries = 0
        customer.save()
    return customer


# -- second factor: SMS code -------------------------------------------------------------

def _code_hash(customer: Customer, code: str) -> str:
    return secrets.keyed_hash("sms-code", f"{customer.id}:{code}")


def send_sms_code(customer: Customer) -> OneTimeCode:
    """Send a fresh 6-digit code. Refuses a resend sooner than 30 s, or a sixth in an hour."""
    from services.notify import notify
    _raise_if_locked(customer)
    now = clock.now()
    this_hour = OneTimeCode.select().where((OneTimeCode.customer == customer)
                                           & (OneTimeCode.created_at > now - timedelta(hours=1)))
    latest = this_hour.order_by(OneTimeCode.created_at.desc()).first()
    if latest and latest.created_at > now - RESEND_AFTER:
        raise DomainError("code_resend_too_soon", status=429,
                          seconds=int((latest.created_at + RESEND_AFTER - now).total_seconds()) + 1)
    if this_hour.count() >= SENDS_PER_HOUR:
        raise DomainError("code_send_limit", status=429)
    code = secrets.random_digits(6)
    with db.atomic():
        OneTimeCode.update(used_at=now).where((OneTimeCode.customer == customer)
                                              & OneTimeCode.used_at.is_null()).execute()
        row = OneTimeCode.create(customer=customer, code_hash=_code_hash(customer, code),
                                 created_at=now, expires_at=now + CODE_LIFE)
        audit.record("customer:" + customer.code, "verify.code_sent", customer.code)
    notify(customer, "verification_code", N_(
        "[CertCenter] Your verification code is %(code)s. It works for 3 minutes. "
        "Never tell it to anyone, including bank staff."), code=code)
    return row


def check_sms_code(customer: Customer, code: str) -> None:
    _raise_if_locked(customer)
    row = (OneTimeCode.select().where(OneTimeCode.customer == customer)
           .order_by(OneTimeCode.created_at.desc()).first())
    if row is None or row.used_at is not None:
        raise DomainError("code_none", field="code")
    if row.expires_at <= clock.now():
        raise DomainError("code_expired", field="code")
    if row.tries >= CODE_TRIES:
        raise DomainError("code_too_many_tries", field="code", status=429)
    code = (code or "").strip()
    if not (len(code) == 6 and code.isdigit()):
        raise DomainError("code_format", field="code")
    if not hmac.compare_digest(row.code_hash, _code_hash(customer, code)):
        with db.atomic():
            OneTimeCode.update(tries=OneTimeCode.tries + 1).where(
                OneTimeCode.id == row.id).execute()
            audit.record("customer:" + customer.code, "verify.code_wrong", customer.code)
        left = CODE_TRIES - row.tries - 1
        if left <= 0:
            raise DomainError("code_too_many_tries", field="code", status=429)
        raise DomainError("code_wrong", field="code", left=left)
    with db.atomic():
        row.used_at = clock.now()
        row.save()
        audit.record("customer:" + customer.code, "verify.passed", customer.code, factor="sms")


# -- second factor: TOTP ------------------------------------------------------------------

def ask_second_factor(customer: Customer) -> str:
    """Before a sensitive change: "totp" when the customer has an authenticator app, else
    "sms" with a code sent now."""
    if totp_secret(customer):
        return "totp"
    send_sms_code(customer)
    return "sms"


def check_second_factor(customer: Customer, method: str, code: str) -> None:
    if method == "totp":
        check_totp(customer, code)
    else:
        check_sms_code(customer, code)


def totp_secret(customer: Customer) -> str | None:
    if not customer.totp_secret:
        return None
    plain = secrets.decrypt("totp", customer.totp_secret)
    return plain.decode() if plain else None


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (within one step either way) at which `code` is right, if any."""
    totp = pyotp.TOTP(secret)
    moment = clock.timestamp()
    for offset in (0, -1, 1):
        at = int(moment) + offset * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return at // totp.interval
    return None


def check_totp(customer: Customer, code: str, secret: str | None = None) -> None:
    """Accept a TOTP code once: a code already used (or older than the last used) is refused.
    `secret` is given when confirming an enrollment, before it is saved."""
    _raise_if_locked(customer)
    secret = secret or totp_secret(customer)
    if secret is None:
        raise DomainError("totp_not_enrolled")
    code = (code or "").strip()
    if not (len(code) == 6 and code.isdigit()):
        raise DomainError("code_format", field="code")
    step = _matching_step(secret, code)
    if step is None:
        _count_customer_failure(customer, "totp")
        raise DomainError("code_wrong_totp", field="code")
    if customer.totp_last_step is not None and step <= customer.totp_last_step:
        raise DomainError("totp_replayed", field="code")
    with db.atomic():
        updated = Customer.update(totp_last_step=step).where(
            (Customer.id == customer.id) & ((Customer.totp_last_step.is_null())
                                            | (Customer.totp_last_step < step))).execute()
        if not updated:             # a concurrent request used the same code first
            raise DomainError("totp_replayed", field="code")
        audit.record("customer:" + customer.code, "verify.passed", customer.code, factor="totp")
    customer.totp_last_step = step


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(customer: Customer, secret: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=customer.code, issuer_name=issuer)


def enroll_totp(customer: Customer, secret: str, code: str) -> None:
    """Save the authenticator once the customer has typed its first code."""
    check_totp(customer, code, secret=secret)
    with db.atomic():
        Customer.update(totp_secret=secrets.encrypt("totp", secret.encode())).where(
            Customer.id == customer.id).execute()
        audit.record("customer:" + customer.code, "totp.enrolled", customer.code)


def end_sessions(customer: Customer) -> None:
    """Sign out: every session of the customer verified until now stops working, including
    a copy of the session cookie."""
    with db.atomic():
        Customer.update(sessions_valid_from=clock.now()).where(
            Customer.id == customer.id).execute()
        audit.record("customer:" + customer.code, "customer.signed_out", customer.code)


def session_is_current(customer: Customer, verified_at) -> bool:
    return customer.sessions_valid_from is None or (
        verified_at is not None and verified_at > customer.sessions_valid_from)


def is_fresh(verified_at, now=None) -> bool:
    """Whether a verification done at `verified_at` still allows sensitive steps."""
    return verified_at is not None and (now or clock.now()) - verified_at < FRESH_FOR
