"""Identity verification (본인확인): who you are (name, RRN, account, PIN; a business also
gives its registration number), then a second factor (an SMS code or a TOTP code).

Every secret a person types is limited per client address and per target (services.limits),
counted before it is evaluated. A wrong PIN counts toward the customer's own lock only when
everything else identified them; any other mismatch counts toward the client, the RRN typed and
the account number typed. Until every detail matches, every failure gets the same answer, locked
or not, so the page never tells whether an RRN belongs to a customer. Five failures of a
customer's secrets in 30 minutes pause their checks (one text message per pause); 100 without a
success suspend self-service until an operator unlocks them.
"""
import hmac
import re
from dataclasses import dataclass
from datetime import timedelta

from models import Account, Customer, OneTimeCode, db
from services import audit, clock, limits, secrets, settings, totp
from services.customers import (
    check_pin_format,
    normalise_account,
    normalise_business_number,
    rrn_lookup,
)
from services.errors import DomainError
from services.i18n import N_

SUSPEND_AFTER = 100                 # failures without a success (NIST SP 800-63B: at most 100)
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


# -- the customer's own limit ---------------------------------------------------------------

def customer_limit(customer: Customer) -> limits.Limit:
    """The limit on the customer's own secrets (PIN, TOTP, certificate passwords)."""
    return limits.per_target("customer", str(customer.id))


def is_suspended(customer: Customer) -> bool:
    return customer.self_service_suspended_at is not None


def _raise_unless_open(customer: Customer) -> None:
    """For someone who has already shown who they are: say that self-service is suspended, or
    that checks are paused and until when."""
    if is_suspended(customer):
        raise DomainError("customer_suspended", status=403, phone=settings.current().support_phone)
    until = limits.blocked_until(customer_limit(customer))
    if until:
        raise DomainError("customer_locked", status=429, until=until)


def reserve_customer_try(customer: Customer, *more: limits.Limit) -> limits.Attempt:
    """Take a try from the customer's limit (and `more`) before checking one of their secrets,
    for someone who has already shown who they are."""
    _raise_unless_open(customer)
    try:
        return limits.reserve(customer_limit(customer), *more)
    except limits.LimitReached as reached:
        if reached.limit == customer_limit(customer):
            raise DomainError("customer_locked", status=429, until=reached.until) from None
        raise DomainError("client_blocked", status=429) from None


def customer_failed(customer: Customer, what: str) -> None:
    """One more wrong secret of this customer, its try already taken: audited, counted toward
    the 100 that suspend self-service; the try that uses up the limit pauses their checks and
    alerts them, once per pause."""
    from services.notify import notify
    now = clock.now()
    with db.atomic():
        Customer.update(failed_tries=Customer.failed_tries + 1).where(
            Customer.id == customer.id).execute()
        tries = Customer.get_by_id(customer.id).failed_tries
        audit.record("customer:" + customer.code, "verify.failed", customer.code, what=what,
                     tries=tries)
        suspended = tries >= SUSPEND_AFTER and Customer.update(self_service_suspended_at=now).where(
            (Customer.id == customer.id) & Customer.self_service_suspended_at.is_null()).execute()
        if suspended:
            audit.record("system", "customer.suspended", customer.code, tries=tries)
        until = limits.blocked_until(customer_limit(customer))
        # One alert per pause: only the failure that starts a new pause announces it.
        paused = until is not None and not suspended and Customer.update(locked_until=until).where(
            (Customer.id == customer.id)
            & (Customer.locked_until.is_null() | (Customer.locked_until < now))).execute()
        if paused:
            audit.record("system", "customer.locked", customer.code, until=until)
    # After the transaction: no lock held while a gateway answers.
    if suspended:
        notify(customer, "suspended", N_(
            "[CertCenter] Identity checks for your account failed too many times, so we have "
            "stopped them. Call us on %(phone)s, weekdays 09:00-18:00, to start them again."),
            phone=settings.current().support_phone)
    elif paused:
        notify(customer, "lockout", N_(
            "[CertCenter] Identity checks for your account failed 5 times, so they are "
            "paused for 30 minutes. If this was not you, call us."))


def customer_succeeded(customer: Customer, attempt: limits.Attempt | None = None) -> None:
    """The customer proved a secret: the attempt's tries are given back and the count toward
    suspension starts again."""
    if attempt is not None:
        attempt.succeeded()
    if customer.failed_tries:
        Customer.update(failed_tries=0).where(Customer.id == customer.id).execute()
        customer.failed_tries = 0


def account_limit(account_number: str) -> limits.Limit:
    """The limit on identity checks naming an account number (digits only)."""
    return limits.per_target("identity-account", account_number)


def unlock(code: str, actor: str, note: str | None = None) -> Customer:
    """An operator starts a customer's checks again after a pause or a suspension (with a
    note for the audit trail); the customer is told by text message."""
    from services.customers import find
    from services.notify import notify
    from services.text import one_line
    customer = find(code)
    note = one_line(note, "note", 500)
    with db.atomic():
        limits.reset(customer_limit(customer))
        for account in customer.accounts:       # guesses at their account number, too
            limits.reset(account_limit(account.number))
        Customer.update(failed_tries=0, locked_until=None, self_service_suspended_at=None).where(
            Customer.id == customer.id).execute()
        audit.record(actor, "customer.unlocked", customer.code, **({"note": note} if note else {}))
    notify(customer, "unlocked", N_(
        "[CertCenter] The bank started your identity checks again: you can use the "
        "certificate center. If you did not ask for this, call us."))
    return Customer.get_by_id(customer.id)


def check_identity(claim: IdentityClaim, client: str) -> Customer:
    """Step one. Returns the customer, or raises one message for every kind of mismatch, so
    that the answer does not tell which detail was wrong, nor whether the customer is locked."""
    rrn_hmac = rrn_lookup(claim.rrn)         # typing mistakes raise here: no try is counted
    account = normalise_account(claim.account)
    check_pin_format(claim.pin)
    business_number = (normalise_business_number(claim.business_number)
                       if claim.business_number is not None else None)
    mismatch = DomainError("identity_mismatch")
    by_client = limits.per_client("identity", client)
    # The account number typed limits guessing an RRN for it; the RRN typed is checked too,
    # but only until the rest identifies its owner, so a stranger who has only the RRN
    # cannot keep its owner out.
    by_account = account_limit(account)
    by_rrn = limits.per_target("identity-rrn", rrn_hmac)
    customer = Customer.get_or_none(Customer.rrn_hmac == rrn_hmac)
    owned = customer and Account.get_or_none((Account.number == account)
                                             & (Account.customer == customer))
    identified = bool(owned) and claim.name.strip() == (
        customer.representative if customer.kind == "business" else customer.name) and (
        (customer.kind == "business") == (business_number is not None)
        and business_number == customer.business_number)
    try:
        if not identified:
            limits.reserve(by_client, by_account, by_rrn)
            raise mismatch                   # nothing to evaluate: the tries stay counted
        if is_suspended(customer):
            raise mismatch
        attempt = limits.reserve(by_client, by_account, customer_limit(customer))
    except limits.LimitReached as reached:
        if reached.limit == by_client:
            raise DomainError("client_blocked", status=429) from None
        raise mismatch from None
    if not secrets.check_pin(claim.pin, owned.pin_hash):
        attempt.give_back(by_account)        # the failure is the customer's, not the account's
        customer_failed(customer, "identity")
        raise mismatch
    customer_succeeded(customer, attempt)
    return customer


# -- second factor: SMS code -------------------------------------------------------------

def _check_code_format(code: str) -> None:
    # [0-9], not str.isdigit(): that takes Arabic-Indic and full-width digits too.
    if not re.fullmatch(r"[0-9]{6}", code):
        raise DomainError("code_format", field="code")


def _code_hash(customer: Customer, code: str) -> str:
    return secrets.keyed_hash("sms-code", f"{customer.id}:{code}")


def send_sms_code(customer: Customer) -> OneTimeCode:
    """Send a fresh 6-digit code. Refuses a sixth in an hour, and a resend sooner than 30 s
    while the last code is still waiting to be used (a code just used to verify does not hold
    back the one a sensitive step asks for next)."""
    from services.notify import notify
    _raise_unless_open(customer)
    now = clock.now()
    this_hour = OneTimeCode.select().where((OneTimeCode.customer == customer)
                                           & (OneTimeCode.created_at > now - timedelta(hours=1)))
    latest = this_hour.order_by(OneTimeCode.created_at.desc()).first()
    if latest and latest.used_at is None and latest.created_at > now - RESEND_AFTER:
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
        "Never tell it to anyone, including bank staff."), sealed=True, code=code)
    return row


def check_sms_code(customer: Customer, code: str) -> None:
    """Accept the latest code once. Each code may be tried 5 times, and each try is one of the
    customer's too (as a PIN or TOTP try is): both are taken before the code is compared, so
    parallel requests cannot try it more often, nor fresh codes give more tries."""
    _raise_unless_open(customer)
    code = (code or "").strip()
    _check_code_format(code)
    row = (OneTimeCode.select().where(OneTimeCode.customer == customer)
           .order_by(OneTimeCode.created_at.desc()).first())
    if row is None or row.used_at is not None:
        raise DomainError("code_none", field="code")
    if row.expires_at <= clock.now():
        raise DomainError("code_expired", field="code")
    attempt = reserve_customer_try(customer)
    taken = OneTimeCode.update(tries=OneTimeCode.tries + 1).where(
        (OneTimeCode.id == row.id) & (OneTimeCode.tries < CODE_TRIES)
        & OneTimeCode.used_at.is_null()).execute()
    if not taken:
        attempt.give_back()          # not compared
        raise DomainError("code_too_many_tries", field="code", status=429)
    if not hmac.compare_digest(row.code_hash, _code_hash(customer, code)):
        customer_failed(customer, "sms")
        left = CODE_TRIES - OneTimeCode.get_by_id(row.id).tries
        if left <= 0:
            raise DomainError("code_too_many_tries", field="code", status=429)
        raise DomainError("code_wrong", field="code", left=left)
    with db.atomic():
        used = OneTimeCode.update(used_at=clock.now()).where(
            (OneTimeCode.id == row.id) & OneTimeCode.used_at.is_null()).execute()
        if not used:                # a parallel request used the same code first
            raise DomainError("code_none", field="code")
        audit.record("customer:" + customer.code, "verify.passed", customer.code, factor="sms")
    customer_succeeded(customer, attempt)


# -- the second factor, and TOTP ------------------------------------------------------

def ask_second_factor(customer: Customer, method: str | None = None) -> str:
    """Start a second-factor step (a sign-in or a sensitive change) and return its method:
    `method` as the customer chose it, or else "totp" when they have an authenticator app and
    "sms" when they have not. For "sms" a (new) code is sent now."""
    method = method or ("totp" if totp_secret(customer) else "sms")
    if method == "sms":
        send_sms_code(customer)
    return method


def check_second_factor(customer: Customer, method: str, code: str) -> None:
    """The one check of a second factor, wherever it is asked: the code from the
    authenticator app ("totp") or the latest text message ("sms"), under the customer's
    attempt limits."""
    if method == "totp":
        check_totp(customer, code)
    else:
        check_sms_code(customer, code)


def totp_secret(customer: Customer) -> str | None:
    if not customer.totp_secret:
        return None
    plain = secrets.decrypt("totp", customer.totp_secret)
    return plain.decode() if plain else None


def check_totp(customer: Customer, code: str, secret: str | None = None) -> None:
    """Accept a TOTP code once: a code already used (or older than the last used) is refused.
    `secret` is given when confirming an enrollment, before it is saved."""
    secret = secret or totp_secret(customer)
    if secret is None:
        raise DomainError("totp_not_enrolled")
    code = (code or "").strip()
    _check_code_format(code)
    attempt = reserve_customer_try(customer)
    step = totp.matching_step(secret, code)
    if step is None:
        customer_failed(customer, "totp")
        raise DomainError("code_wrong_totp", field="code")
    attempt.succeeded()              # the code is right, even if it turns out replayed
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
    customer_succeeded(customer)


def new_totp_secret() -> str:
    return totp.new_secret()


def totp_uri(customer: Customer, secret: str, issuer: str) -> str:
    return totp.provisioning_uri(secret, customer.code, issuer)


def enroll_totp(customer: Customer, secret: str, code: str) -> None:
    """Save the authenticator once the customer has typed its first code, and tell them by
    text message: if someone else did it, they call us."""
    from services.notify import notify
    replaced = totp_secret(customer) is not None
    check_totp(customer, code, secret=secret)
    with db.atomic():
        Customer.update(totp_secret=secrets.encrypt("totp", secret.encode())).where(
            Customer.id == customer.id).execute()
        audit.record("customer:" + customer.code, "totp.enrolled", customer.code,
                     replaced=replaced)
    notify(customer, "authenticator_changed", N_(
        "[CertCenter] A new authenticator app now gives the codes for your certificates; the "
        "old one no longer works. If this was not you, call us at once.") if replaced else N_(
        "[CertCenter] An authenticator app now gives the codes for your certificates. If this "
        "was not you, call us at once."))


def end_sessions(customer: Customer) -> None:
    """Sign out: every session of the customer verified until now stops working, including
    a copy of the session cookie."""
    with db.atomic():
        Customer.update(sessions_valid_from=clock.now()).where(
            Customer.id == customer.id).execute()
        audit.record("customer:" + customer.code, "customer.signed_out", customer.code)


def session_is_current(customer: Customer, verified_at) -> bool:
    """Whether a session verified at `verified_at` still stands: not signed out since, and
    self-service not stopped."""
    if is_suspended(customer):
        return False
    return customer.sessions_valid_from is None or (
        verified_at is not None and verified_at > customer.sessions_valid_from)


def is_fresh(verified_at, now=None) -> bool:
    """Whether a verification done at `verified_at` still allows sensitive steps."""
    return verified_at is not None and (now or clock.now()) - verified_at < FRESH_FOR
