"""The customer registry: personal and business customers, their accounts and PINs.
RRNs are kept only as an HMAC (for lookup) and a masked form (for display)."""
import csv
import io
import re
from dataclasses import dataclass
from datetime import date

from email_validator import EmailNotValidError, validate_email
from peewee import IntegrityError

from models import Account, Customer, db
from services import audit, clock, secrets
from services.errors import DomainError
from services.text import one_line


def digits(value: str) -> str:
    """The digits of a number people type with hyphens or spaces. The patterns below say
    [0-9], not \\d: \\d (and str.isdigit) also take Arabic-Indic or full-width digits,
    which no number of ours holds."""
    return re.sub(r"[\s-]", "", value or "")


def normalise_rrn(value: str) -> str:
    """13 digits whose first six are a real birth date; else DomainError."""
    rrn = digits(value)
    if not re.fullmatch(r"[0-9]{13}", rrn):
        raise DomainError("rrn_format", field="rrn")
    century = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "3": 2000, "4": 2000, "7": 2000,
               "8": 2000, "9": 1800, "0": 1800}[rrn[6]]
    try:
        date(century + int(rrn[0:2]), int(rrn[2:4]), int(rrn[4:6]))
    except ValueError:
        raise DomainError("rrn_format", field="rrn") from None
    return rrn


def rrn_lookup(rrn: str) -> str:
    return secrets.keyed_hash("rrn", normalise_rrn(rrn))


def mask_rrn(rrn: str) -> str:
    return f"{rrn[:6]}-{rrn[6]}******"


def normalise_business_number(value: str) -> str:
    number = digits(value)
    if not re.fullmatch(r"[0-9]{10}", number):
        raise DomainError("business_number_format", field="business_number")
    return number


def format_business_number(number: str) -> str:
    return f"{number[:3]}-{number[3:5]}-{number[5:]}"


def format_phone(phone: str) -> str:
    """010-1234-5678 (or 011-123-4567 for the older ten-digit numbers)."""
    return f"{phone[:3]}-{phone[3:-4]}-{phone[-4:]}"


def normalise_phone(value: str) -> str:
    phone = digits(value)
    if not re.fullmatch(r"01[0-9]{8,9}", phone):
        raise DomainError("phone_format", field="phone")
    return phone


def normalise_account(value: str) -> str:
    number = digits(value)
    if not re.fullmatch(r"[0-9]{10,14}", number):
        raise DomainError("account_format", field="account")
    return number


def check_pin_format(pin: str) -> str:
    if not re.fullmatch(r"[0-9]{4}", pin or ""):
        raise DomainError("pin_format", field="pin")
    return pin


def normalise_email(value: str | None) -> str | None:
    """An address mail can be sent to (syntax per RFC 5321/5322, international domains in
    their ASCII form), or None when none was given."""
    value = one_line(value, "email", 254)
    if not value:
        return None
    try:
        return validate_email(value, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError:
        raise DomainError("email_format", field="email") from None


def _name(value: str, field: str) -> str:
    """A name that goes into a certificate's subject as it is: printable, one line, without
    the characters that mean something in a distinguished name."""
    value = one_line(value, field, 40)
    if not value or any(c in value for c in "/\\,=+<>#;\""):
        raise DomainError("name_format", field=field)
    return value


@dataclass
class NewCustomer:
    kind: str                       # personal | business
    name: str                       # the person, or the company
    rrn: str                        # the person's, or the representative's
    phone: str
    account: str
    pin: str
    email: str | None = None
    representative: str | None = None
    business_number: str | None = None
    language: str = "ko"
    code: str | None = None         # chosen by the registry unless given


def _next_code(kind: str) -> str:
    prefix = "P" if kind == "personal" else "B"
    last = (Customer.select(Customer.code).where(Customer.code.startswith(prefix))
            .order_by(Customer.code.desc()).first())
    return f"{prefix}{(int(last.code[1:]) if last else 0) + 1:07d}"


def _validated(new: NewCustomer) -> dict:
    if new.kind not in ("personal", "business"):
        raise DomainError("customer_kind", field="kind")
    rrn = normalise_rrn(new.rrn)
    fields = dict(
        kind=new.kind, name=_name(new.name, "name"), rrn_hmac=secrets.keyed_hash("rrn", rrn),
        rrn_masked=mask_rrn(rrn), phone=normalise_phone(new.phone),
        email=normalise_email(new.email), language=new.language,
        account=normalise_account(new.account), pin=check_pin_format(new.pin))
    if new.kind == "business":
        fields["representative"] = _name(new.representative, "representative")
        fields["business_number"] = normalise_business_number(new.business_number)
    return fields


def add_customer(new: NewCustomer, actor: str) -> Customer:
    """Register a customer with one account. Raises DomainError on any bad field or a
    duplicate RRN, business number or account."""
    fields = _validated(new)
    account, pin = fields.pop("account"), fields.pop("pin")
    try:
        with db.atomic():
            customer = Customer.create(code=new.code or _next_code(new.kind),
                                       created_at=clock.now(), **fields)
            Account.create(customer=customer, number=account, pin_hash=secrets.hash_pin(pin))
            audit.record(actor, "customer.add", customer.code, kind=customer.kind)
    except IntegrityError:
        raise DomainError("customer_duplicate") from None
    return customer


CSV_COLUMNS = ["kind", "name", "rrn", "phone", "account", "pin", "email", "representative",
               "business_number"]


@dataclass
class ImportReport:
    imported: list
    errors: list                   # (line number, message id, field)


def import_csv(text: str, actor: str, progress=lambda done: None) -> ImportReport:
    """Check every row, report bad rows by line number, import the good ones in one
    transaction. `progress(n)` is called after each row."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS[:6] if c not in (reader.fieldnames or [])]
    if missing:
        raise DomainError("csv_columns", columns=", ".join(missing))
    report = ImportReport([], [])
    seen = set()
    with db.atomic():
        for row in reader:
            line = reader.line_num
            new = NewCustomer(**{c: (row.get(c) or "").strip() or None for c in CSV_COLUMNS})
            try:
                if new.rrn in seen:
                    raise DomainError("customer_duplicate")
                with db.atomic():
                    report.imported.append(add_customer(new, actor))
                seen.add(new.rrn)
            except DomainError as error:
                report.errors.append((line, error.code, error.field))
            progress(1)
    return report


def find(code: str) -> Customer:
    customer = Customer.get_or_none(Customer.code == (code or "").strip().upper())
    if customer is None:
        raise DomainError("customer_not_found", status=404, customer=code)
    return customer


def set_language(customer: Customer, language: str) -> None:
    if customer.language != language:
        customer.language = language
        customer.save()
