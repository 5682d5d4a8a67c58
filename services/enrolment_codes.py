"""Reference numbers and authorisation codes (참조번호·인가코드): what a verified customer, or the
bank's RA officer on their behalf, is given to enrol one certificate with their own CMP client.
The client's key is made on the customer's side; the pair proves who asks.

A pair is for one certificate of one type, valid VALID_FOR, used once, and void after MAX_WRONG
messages whose MAC the code does not check out (or as soon as a newer pair is given for the
same customer and type). The rules of the web flow decide whether it may be given at all: a
business type needs its approved request, and a type already held is reissued. The code is
sealed under a key from the master key: a password-based MAC can only be checked with the code
itself, so a hash would not do."""
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import IntegrityError

from models import Customer, EnrolmentCode, db
from services import audit, clock, issuance, secrets
from services.errors import DomainError

REFERENCE_DIGITS = 8
CODE_LENGTH = 12
# Letters and digits that cannot be read as one another (no 0/O, 1/I/L, U/V): 29 symbols,
# 12 of them 58 bits, against at most MAX_WRONG guesses.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
VALID_FOR = timedelta(minutes=10)
MAX_WRONG = 5
KEPT = timedelta(days=1)
_SEAL = "enrolment-code"


@dataclass(frozen=True)
class Given:
    """A pair as it is shown once: to the customer's page, or printed for the officer."""
    reference: str
    code: str
    cert_type: str
    expires_at: datetime

    @property
    def code_groups(self) -> list[str]:
        return groups(self.code)


def groups(code: str) -> list[str]:
    """A code in groups of four, as it is shown: for reading it out and copying it by eye."""
    return [code[i:i + 4] for i in range(0, len(code), 4)]


def give(customer: Customer, type_id: str, actor: str) -> Given:
    """A new pair for `customer` to enrol a certificate of `type_id`; any pair given before for
    the same type stops working."""
    step = issuance.issuable_plan(customer, type_id)
    now = clock.now()
    code = secrets.random_text(CODE_ALPHABET, CODE_LENGTH)
    for _attempt in range(5):
        reference = secrets.random_digits(REFERENCE_DIGITS)
        try:
            with db.atomic():
                EnrolmentCode.update(voided_at=now).where(
                    (EnrolmentCode.customer == customer) & (EnrolmentCode.cert_type == type_id)
                    & EnrolmentCode.used_at.is_null() & EnrolmentCode.voided_at.is_null()
                ).execute()
                EnrolmentCode.create(reference=reference, code_sealed=secrets.encrypt(
                    _SEAL, code.encode()), customer=customer, cert_type=type_id, made_by=actor,
                    created_at=now, expires_at=now + VALID_FOR)
                audit.record(actor, "enrolment_code.give", reference, customer=customer.code,
                             cert_type=type_id, plan=step.action)
            return Given(reference, code, type_id, now + VALID_FOR)
        except IntegrityError:
            continue            # the reference of an older pair: draw another
    raise DomainError("enrolment_code_busy", status=503)


@dataclass(frozen=True)
class Open:
    """A pair that may still be used: its row, and the code to check a MAC with."""
    record: EnrolmentCode
    code: bytes


def open_pair(reference: str) -> Open:
    """The pair a CMP message names by its reference, while it may still be used."""
    record = (EnrolmentCode.select(EnrolmentCode, Customer).join(Customer)
              .where(EnrolmentCode.reference == reference).first())
    if record is None or record.used_at or record.voided_at or record.expires_at <= clock.now():
        raise DomainError("enrolment_code_unknown", status=401)
    return Open(record, code_of(record))


def code_of(record: EnrolmentCode) -> bytes:
    """The code of a pair however it ended: the rest of a CMP transaction it began is
    protected under it too."""
    return secrets.decrypt(_SEAL, record.code_sealed)


def wrong_code(pair: Open, actor: str) -> None:
    """A message under `pair`'s reference whose MAC its code does not check: one of
    MAX_WRONG tries used; at the last one the pair is void."""
    now = clock.now()
    with db.atomic():
        EnrolmentCode.update(wrong_tries=EnrolmentCode.wrong_tries + 1).where(
            EnrolmentCode.id == pair.record.id).execute()
        voided = EnrolmentCode.update(voided_at=now).where(
            (EnrolmentCode.id == pair.record.id) & (EnrolmentCode.wrong_tries >= MAX_WRONG)
            & EnrolmentCode.voided_at.is_null()).execute()
        audit.record(actor, "enrolment_code.wrong", pair.record.reference, void=bool(voided))


def use(pair: Open) -> None:
    """Spend the pair: call inside the transaction that stores its certificate. A pair
    spent, voided or run out meanwhile stops the transaction."""
    spent = EnrolmentCode.update(used_at=clock.now()).where(
        (EnrolmentCode.id == pair.record.id) & EnrolmentCode.used_at.is_null()
        & EnrolmentCode.voided_at.is_null() & (EnrolmentCode.expires_at > clock.now())
    ).execute()
    if not spent:
        raise DomainError("enrolment_code_unknown", status=401)


def _ended(at):
    return EnrolmentCode.expires_at < at - KEPT


def ended_count(at) -> int:
    return EnrolmentCode.select().where(_ended(at)).count()


def purge(at=None) -> int:
    """Forget pairs that ended more than KEPT ago (their events stay in the audit trail);
    their references may then be drawn again."""
    return EnrolmentCode.delete().where(_ended(at or clock.now())).execute()
