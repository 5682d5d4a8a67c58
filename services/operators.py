"""The bank's staff in the console: accounts, enrolment by a one-time link (a password and an
authenticator app), login (password, then TOTP), sessions, and which role may do what. Every
route of the console asks `require` before it acts; the templates only mirror the answer."""
import re
from dataclasses import dataclass
from datetime import timedelta

from zxcvbn import zxcvbn

from models import AuditEvent, Operator, db
from services import audit, clock, limits, secrets, settings, totp
from services.errors import DomainError

ROLES = ("support", "ra-officer", "auditor", "admin")

_READ = {"view_dashboard", "lookup", "read_outbox"}
_SUPPORT = _READ | {"unlock_customer", "resend_notice"}
# What each role may do. Auditors read everything and change nothing; admins manage operators
# and settings, and look at no customer.
PERMISSIONS = {
    "support": _SUPPORT,
    "ra-officer": _SUPPORT | {"decide_request", "change_status", "issue_reference"},
    "auditor": _READ | {"read_audit"},
    "admin": {"view_dashboard", "manage_operators", "settings"},
}

ENROLMENT_VALID = timedelta(hours=24)
IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=8)
PASSWORD_TO_CODE = timedelta(minutes=5)     # between the right password and its code
MIN_PASSWORD, MAX_PASSWORD = 12, 128
# zxcvbn's score: 3 is "safely unguessable: moderate protection from offline slow-hash
# scenario" (about 10^10 guesses). Its dictionaries hold the 30,000 most common passwords,
# and it sees through l33t spellings, keyboard walks, dates and repeats.
MIN_STRENGTH = 3

_NAME = re.compile(r"[a-z][a-z0-9._-]{2,31}")
# A hash that no password matches, checked for unknown names so that a wrong name costs the
# same time as a wrong password.
_NO_ONE = secrets.hash_pin("no operator has this password")


def require(operator: Operator, action: str) -> None:
    """Refuse (403) what the operator's role may not do."""
    if action not in PERMISSIONS.get(operator.role, ()):
        raise DomainError("ops_forbidden", status=403)


def may(operator: Operator, action: str) -> bool:
    return action in PERMISSIONS.get(operator.role, ())


def named(name: str) -> Operator:
    operator = Operator.get_or_none(Operator.name == (name or "").strip().lower())
    if operator is None:
        raise DomainError("operator_not_found", status=404, name=name)
    return operator


def _new_enrolment(operator: Operator) -> str:
    token = secrets.random_token()
    operator.enrolment_hash = secrets.keyed_hash("operator-enrolment", token)
    operator.enrolment_expires_at = clock.now() + ENROLMENT_VALID
    return token


def enrolment_link(token: str) -> str:
    return f"{settings.current().base_url.rstrip('/')}/ops/enrol/{token}"


def add_operator(name: str, role: str, actor: str) -> tuple[Operator, str]:
    """A new operator, not yet enrolled; returns it and its enrolment link (valid 24 hours)."""
    name = (name or "").strip().lower()
    if not _NAME.fullmatch(name):
        raise DomainError("operator_name", field="name")
    if role not in ROLES:
        raise DomainError("operator_role", field="role", roles=", ".join(ROLES))
    with db.atomic():
        if Operator.select().where(Operator.name == name).exists():
            raise DomainError("operator_exists", field="name", name=name)
        operator = Operator(name=name, role=role, created_at=clock.now(), created_by=actor)
        token = _new_enrolment(operator)
        operator.save(force_insert=True)
        audit.record(actor, "operator.add", name, role=role)
    return operator, enrolment_link(token)


def reset_operator(name: str, actor: str) -> str:
    """Start over: a new enrolment link; the password and authenticator are gone and every
    session of the operator ends."""
    operator = named(name)
    with db.atomic():
        token = _new_enrolment(operator)
        operator.password_hash = operator.totp_secret = operator.totp_last_step = None
        operator.sessions_valid_from = clock.now()
        operator.save()
        audit.record(actor, "operator.reset", operator.name)
    return enrolment_link(token)


def disable_operator(name: str, actor: str) -> Operator:
    """The operator can no longer log in, and their sessions end now."""
    operator = named(name)
    if operator.disabled_at is None:
        with db.atomic():
            operator.disabled_at = operator.sessions_valid_from = clock.now()
            operator.enrolment_hash = operator.enrolment_expires_at = None
            operator.save()
            audit.record(actor, "operator.disable", operator.name)
    return operator


def another_operator(acting: Operator, name: str) -> Operator:
    """The operator an administrator is about to disable or reset: anyone but themselves, so
    that no administrator locks themselves out (another administrator, or the CLI, can)."""
    operator = named(name)
    if operator.id == acting.id:
        raise DomainError("operator_self", status=403)
    return operator


def last_login(operator: Operator):
    """When the operator last logged in, or None."""
    event = (AuditEvent.select(AuditEvent.at)
             .where((AuditEvent.action == "operator.login") & (AuditEvent.target == operator.name))
             .order_by(AuditEvent.id.desc()).first())
    return event.at if event else None


def operators() -> list[Operator]:
    return list(Operator.select().order_by(Operator.name))


def state(operator: Operator) -> str:
    """"disabled", "enrolling" (a link is out) or "active"."""
    if operator.disabled_at:
        return "disabled"
    return "active" if operator.password_hash and operator.totp_secret else "enrolling"


# -- enrolment -----------------------------------------------------------------------------

def operator_for_enrolment(token: str) -> Operator:
    """The operator whose unexpired enrolment link this is (404 otherwise)."""
    operator = Operator.get_or_none(
        Operator.enrolment_hash == secrets.keyed_hash("operator-enrolment", token or ""))
    if (operator is None or operator.disabled_at is not None
            or operator.enrolment_expires_at <= clock.now()):
        raise DomainError("enrolment_invalid", status=404)
    return operator


def check_new_password(password: str, operator: Operator) -> None:
    """At least 12 characters, and not one that guessing finds early (common passwords, the
    operator's name, the bank's name, keyboard walks, l33t spellings)."""
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise DomainError("operator_password_short", field="password", minimum=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise DomainError("operator_password_long", field="password", maximum=MAX_PASSWORD)
    hints = [operator.name, settings.current().ca_org, "certcenter", "인증센터"]
    if zxcvbn(password, user_inputs=hints)["score"] < MIN_STRENGTH:
        raise DomainError("operator_password_common", field="password")


def complete_enrolment(token: str, password: str, totp_secret: str, code: str) -> Operator:
    """Set the password and the authenticator app (proved by a code from it) in one step; the
    link is then used up."""
    operator = operator_for_enrolment(token)
    check_new_password(password, operator)
    step = totp.matching_step(totp_secret, (code or "").strip())
    if step is None:
        raise DomainError("code_wrong_totp", field="code")
    with db.atomic():
        updated = Operator.update(
            password_hash=secrets.hash_pin(password),
            totp_secret=secrets.encrypt("operator-totp", totp_secret.encode()),
            totp_last_step=step, enrolment_hash=None, enrolment_expires_at=None,
            sessions_valid_from=clock.now(),
        ).where((Operator.id == operator.id) & (Operator.enrolment_hash.is_null(False))).execute()
        if not updated:                     # the same link used twice at once
            raise DomainError("enrolment_invalid", status=404)
        audit.record("operator:" + operator.name, "operator.enrol", operator.name)
    return Operator.get_by_id(operator.id)


# -- login ---------------------------------------------------------------------------------

def _login_limits(name: str, client: str) -> list:
    return [limits.per_client("ops-login", client), limits.per_target("ops-login", name)]


def check_password(name: str, password: str, client: str) -> Operator:
    """The first step of a login. One answer for every failure (no such name, disabled, not
    enrolled, wrong password), counted per client and per name before it is evaluated."""
    name = (name or "").strip().lower()
    try:
        attempt = limits.reserve(*_login_limits(name, client))
    except limits.LimitReached:
        raise DomainError("login_blocked", status=429) from None
    operator = Operator.get_or_none(Operator.name == name)
    usable = operator is not None and operator.disabled_at is None and operator.password_hash
    right = secrets.check_pin(password or "", operator.password_hash if usable else _NO_ONE)
    if not (usable and right and operator.totp_secret):
        audit.record("client:" + client, "operator.login_failed", name or "-")
        raise DomainError("login_failed", field="password")
    attempt.succeeded()
    return operator


def password_checked(operator_id, checked_at: float) -> Operator | None:
    """The operator whose password was right at `checked_at` (a clock.timestamp()), while the
    code may still follow it: for PASSWORD_TO_CODE, and while the operator is not disabled."""
    if not isinstance(operator_id, int) or clock.timestamp() - checked_at > \
            PASSWORD_TO_CODE.total_seconds():
        return None
    return Operator.get_or_none((Operator.id == operator_id) & Operator.disabled_at.is_null())


def check_code(operator: Operator, code: str, client: str) -> Operator:
    """The second step: a TOTP code, each accepted once, under the same limits."""
    try:
        attempt = limits.reserve(*_login_limits(operator.name, client))
    except limits.LimitReached:
        raise DomainError("login_blocked", status=429) from None
    plain = secrets.decrypt("operator-totp", operator.totp_secret or "")
    step = totp.matching_step(plain.decode(), (code or "").strip()) if plain else None
    if step is None:
        audit.record("operator:" + operator.name, "operator.login_failed", operator.name,
                     factor="totp")
        raise DomainError("code_wrong_totp", field="code")
    attempt.succeeded()
    with db.atomic():
        used = Operator.update(totp_last_step=step).where(
            (Operator.id == operator.id) & Operator.disabled_at.is_null()
            & (Operator.totp_last_step.is_null() | (Operator.totp_last_step < step))).execute()
        if not used:
            raise DomainError("totp_replayed", field="code")
        audit.record("operator:" + operator.name, "operator.login", operator.name)
    return operator


@dataclass(frozen=True)
class Session:
    operator_id: int
    started_at: float       # clock.timestamp() values
    seen_at: float


def session_operator(session: Session) -> Operator | None:
    """The operator a console session belongs to, or None when it has ended: idle for 15
    minutes, older than 8 hours, started before a reset or logout, or the operator disabled."""
    now = clock.timestamp()
    if now - session.seen_at > IDLE_TIMEOUT.total_seconds() \
            or now - session.started_at > ABSOLUTE_TIMEOUT.total_seconds():
        return None
    operator = Operator.get_or_none(Operator.id == session.operator_id)
    if operator is None or operator.disabled_at is not None:
        return None
    valid_from = operator.sessions_valid_from
    if valid_from is not None and clock.aware(valid_from).timestamp() > session.started_at:
        return None
    return operator


def log_out(operator: Operator) -> None:
    """End every session of the operator (the console has no other session to keep)."""
    with db.atomic():
        Operator.update(sessions_valid_from=clock.now()).where(
            Operator.id == operator.id).execute()
        audit.record("operator:" + operator.name, "operator.logout", operator.name)
