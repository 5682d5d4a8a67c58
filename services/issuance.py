"""Issuance (발급) and reissue (재발급), in order: reserve a serial -> build the TBS from the
type's profile -> lint it -> sign with the issuing CA -> store -> audit.

One valid certificate per type per customer: issuing again is a reissue, which revokes the
old certificate (superseded) and keeps its expiry date. Business types need an operator's
approval first.
"""
import json
import os
from dataclasses import dataclass, field
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from peewee import IntegrityError

from models import AuditEvent, Certificate, CertificateRequest, Customer, Reminder, db
from pki import csr as pki_csr
from pki import files as pki_files
from pki import lint as pki_lint
from pki import npki
from pki.errors import PkiError
from pki.profile import (
    CERT_TYPES,
    KST,
    CertType,
    EndEntityRequest,
    crl_partition_named,
    end_entity_builder,
    validity_end,
)
from pki.serials import serial_hex
from services import audit, ca_store, clock, downloads, flows, reservations, secrets, settings
from services.customers import normalise_business_number, rrn_lookup
from services.errors import DomainError
from services.i18n import N_
from services.notify import notify
from services.passwords import check_new_password
from services.status import crl_partition_for, note_change, presign_ocsp, publish_changes
from services.text import one_line


def cert_type(type_id: str) -> CertType:
    if type_id not in CERT_TYPES:
        raise DomainError("cert_type_unknown", field="cert_type")
    return CERT_TYPES[type_id]


def type_name(type_id: str, language: str) -> str:
    """The type's name in a customer's language, for messages sent outside a page."""
    kind = CERT_TYPES[type_id]
    return kind.name_en if language == "en" else kind.name_ko


def types_for(customer: Customer) -> list[CertType]:
    holder = "person" if customer.kind == "personal" else "business"
    return [t for t in CERT_TYPES.values() if t.holder == holder]


def _slot(customer: Customer, type_id: str) -> str:
    return f"{customer.id}:{type_id}"


def current_certificate(customer: Customer, type_id: str) -> Certificate | None:
    """The customer's certificate of this type that is still in force (valid or suspended
    and not expired), if any."""
    cert = Certificate.get_or_none(Certificate.current_slot == _slot(customer, type_id))
    if cert and cert.status in ("valid", "suspended") and cert.not_after > clock.now():
        return cert
    return None


def certificates_of(customer: Customer):
    return (Certificate.select().where(Certificate.customer == customer)
            .order_by(Certificate.created_at.desc()))


# -- business approval --------------------------------------------------------------------

def open_request(customer: Customer, type_id: str) -> CertificateRequest | None:
    """The customer's latest undecided or approved-but-unused request for the type."""
    return (CertificateRequest.select()
            .where((CertificateRequest.customer == customer)
                   & (CertificateRequest.cert_type == type_id)
                   & (CertificateRequest.status.in_(["requested", "approved"])))
            .order_by(CertificateRequest.id.desc()).first())


def request_certificate(customer: Customer, type_id: str) -> CertificateRequest:
    kind = cert_type(type_id)
    if not kind.needs_approval or kind not in types_for(customer):
        raise DomainError("cert_type_not_for_you", field="cert_type")
    if open_request(customer, type_id):
        raise DomainError("request_exists", status=409)
    with db.atomic():
        request = CertificateRequest.create(customer=customer, cert_type=type_id,
                                            created_at=clock.now())
        audit.record("customer:" + customer.code, "request.create", str(request.id),
                     cert_type=type_id)
    return request


def list_requests(status: str | None = "requested"):
    query = (CertificateRequest.select(CertificateRequest, Customer).join(Customer)
             .order_by(CertificateRequest.id))      # the queue shows each customer: one query
    return query.where(CertificateRequest.status == status) if status else query


def find_request(request_id: int) -> CertificateRequest:
    request = CertificateRequest.get_or_none(CertificateRequest.id == request_id)
    if request is None:
        raise DomainError("request_not_found", status=404, id=request_id)
    return request


# The papers an officer checks before approving a business certificate (사업자 서류), and
# those without which no approval is given.
DOCUMENTS = ("business-registration", "representative-id", "seal-certificate",
             "corporate-register", "power-of-attorney")
REQUIRED_DOCUMENTS = ("business-registration", "representative-id")


def checked_documents(documents) -> list[str]:
    """The documents an officer says they checked, known ones only, in a stable order;
    refused unless the required ones are among them."""
    chosen = [document for document in DOCUMENTS if document in set(documents or ())]
    if not set(REQUIRED_DOCUMENTS) <= set(chosen):
        raise DomainError("documents_missing", field="documents")
    return chosen


def documents_noted(request: CertificateRequest) -> list[str]:
    """The documents the approving officer noted, from the approval's audit event."""
    event = (audit.events(target=str(request.id))
             .where(AuditEvent.action == "request.approved").first())
    return json.loads(event.details).get("documents", []) if event else []


def _decide(request_id: int, operator: str, status: str, reason: str | None, **details):
    request = find_request(request_id)
    if request.status != "requested":
        raise DomainError("request_decided", status=409, id=request_id, state=request.status)
    with db.atomic():
        updated = CertificateRequest.update(
            status=status, reason=reason, decided_by=operator, decided_at=clock.now()).where(
            (CertificateRequest.id == request.id)
            & (CertificateRequest.status == "requested")).execute()
        if not updated:
            raise DomainError("request_decided", status=409, id=request_id, state="?")
        audit.record("operator:" + operator, "request." + status, str(request.id),
                     customer=request.customer.code, reason=reason, **details)
    return CertificateRequest.get_by_id(request.id)


def approve_request(request_id: int, operator: str, documents) -> CertificateRequest:
    request = _decide(request_id, operator, "approved", None,
                      documents=checked_documents(documents))
    notify(request.customer, "request_approved", N_(
        "[CertCenter] Your request for a %(type)s certificate was approved. Verify your "
        "identity on the certificate center site to set a password and download it."),
        type=type_name(request.cert_type, request.customer.language))
    return request


def reject_request(request_id: int, operator: str, reason: str) -> CertificateRequest:
    reason = one_line(reason, "reason", 200)       # the customer reads it in a text message
    if not reason:
        raise DomainError("reject_reason_missing", field="reason")
    request = _decide(request_id, operator, "rejected", reason)
    notify(request.customer, "request_rejected", N_(
        "[CertCenter] Your certificate request was not approved: %(reason)s. "
        "Call us on weekdays 09:00-18:00 for help."), reason=reason)
    return request


# -- what issuing would do ----------------------------------------------------------------

RECENT = timedelta(hours=24)     # a reissue of a certificate younger than this is warned of


@dataclass
class Plan:
    """What confirming would do: issue, reissue (revoking `current`), or stop for approval."""
    cert_type: CertType
    action: str                          # issue | reissue | request | waiting
    current: Certificate | None = None
    keeps_expiry: object = None          # the current certificate's not_after, on reissue

    @property
    def current_age_minutes(self) -> int | None:
        """On reissue, how many minutes ago the certificate it revokes was issued, when that
        was recently: someone who came back to the flow from its download page (Back) is
        told that it would revoke what they just got."""
        if self.current is None or clock.now() - self.current.created_at > RECENT:
            return None
        return int((clock.now() - self.current.created_at).total_seconds() // 60)

    @property
    def fee_won(self) -> int:
        """What confirming this plan costs: see fee_won()."""
        return fee_won(self.cert_type.id, self.action)


def fee_won(type_id: str, action: str = "issue") -> int:
    """The fee rule, the one place every page takes it from: in won, VAT included. Issuing
    (or requesting a business certificate) costs the type's fee for the year; a reissue is
    free, since the new certificate keeps the expiry date already paid for."""
    if action == "reissue":
        return 0
    return cert_type(type_id).fee_won


@dataclass(frozen=True)
class Fee:
    cert_type: CertType
    issue_won: int
    reissue_won: int


def fee_table() -> list[Fee]:
    """Every type with what it costs to get and to reissue, for the pages that list fees."""
    return [Fee(kind, fee_won(kind.id, "issue"), fee_won(kind.id, "reissue"))
            for kind in CERT_TYPES.values()]


def plans_for(customer: Customer) -> dict[str, Plan]:
    """For each type this customer may choose, what choosing it would do now, and so what it
    would cost (a type they already hold would be reissued)."""
    return {kind.id: plan(customer, kind.id) for kind in types_for(customer)}


def plan(customer: Customer, type_id: str) -> Plan:
    kind = cert_type(type_id)
    if kind not in types_for(customer):
        raise DomainError("cert_type_not_for_you", field="cert_type")
    if kind.needs_approval:
        request = open_request(customer, type_id)
        if request is None:
            return Plan(kind, "request")
        if request.status == "requested":
            return Plan(kind, "waiting")
    current = current_certificate(customer, type_id)
    if current:
        return Plan(kind, "reissue", current, current.not_after)
    return Plan(kind, "issue")


def issuable_plan(customer: Customer, type_id: str) -> Plan:
    """The plan, when it is to issue or reissue now; else why not (approval first)."""
    step = plan(customer, type_id)
    if step.action in ("request", "waiting"):
        raise DomainError("request_needed" if step.action == "request" else "request_waiting",
                          status=409)
    return step


def read_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        return pki_csr.load_csr(data)
    except PkiError as error:
        raise DomainError(error.code, field="csr") from None


# -- issuing -------------------------------------------------------------------------------

@dataclass
class Issued:
    """A certificate signed and delivered: its files, their single-use links (none when
    downloads were not offered) and the certificate it replaces (revoked by a reissue, still
    valid after a renewal)."""
    certificate: Certificate
    files: list                          # (kind, filename, media type, bytes)
    links: list = field(default_factory=list)
    replaced: Certificate | None = None


@dataclass(frozen=True)
class KeyFiles:
    """What goes into the customer's files beside the certificate: the private key and its
    password make a PKCS#12, an encrypted signPri.key an NPKI folder. Empty when the key
    stays with the customer (a CSR, or a same-key renewal after a signature login)."""
    private_key: object = None
    password: str | None = None
    signpri: bytes | None = None


def _identity_number(customer: Customer, idn: str) -> str:
    """The number the VID is computed from: the RRN for a person, the business registration
    number for a business. The person's RRN is checked against the stored HMAC."""
    if customer.kind == "business":
        number = normalise_business_number(idn)
        if number != customer.business_number:
            raise DomainError("identity_mismatch")
        return number
    if rrn_lookup(idn) != customer.rrn_hmac:
        raise DomainError("identity_mismatch")
    return "".join(c for c in idn if c.isdigit())


def unique_digits(customer: Customer, now) -> str:
    """0011 + issuance time in KST + 4 random digits, drawn again until the subject CN is
    unused: every certificate gets its own subject."""
    stamp = clock.aware(now).astimezone(KST).strftime("%Y%m%d%H%M%S")
    while True:
        digits = "0011" + stamp + secrets.random_digits(4)
        taken = Certificate.select().where(
            Certificate.subject.startswith(f"CN={customer.name}(){digits},")).exists()
        if not taken:
            return digits


def new_key(customer: Customer, idn: str, password: str) -> tuple[KeyFiles, bytes]:
    """A key made here for `customer`: the key with its signPri.key encrypted under
    `password`, and the npkiIdentifyData with the VID of `idn` (checked against the customer
    first)."""
    identity_number = _identity_number(customer, idn or "")
    check_new_password(password, password)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    random_num = os.urandom(20)
    return (KeyFiles(key, password, npki.encrypt_private_key(key, password, random_num)),
            npki.identify_data(customer.name, npki.compute_vid(identity_number, random_num)))


def issue_certificate(customer: Customer, type_id: str, *, idn: str, actor: str,
                      password: str | None = None, csr_der: bytes | None = None,
                      offer_downloads: bool = True, once: str | None = None) -> Issued:
    """Issue (or reissue) a certificate of `type_id` to `customer`.

    With `password`, the key is generated here and the customer receives NPKI files and a
    PKCS#12, both encrypted with it. With `csr_der`, the CSR's key is certified and only the
    certificate and chain are offered. Returns the certificate, its files and (unless
    `offer_downloads` is off, as for the operator CLI) their single-use links. `once` names
    the confirm button's press (services.flows.once).
    """
    step = issuable_plan(customer, type_id)
    if (password is None) == (csr_der is None):
        raise ValueError("give exactly one of password and csr_der")
    if password is not None:
        keys, identify_data = new_key(customer, idn, password)
        public_key = keys.private_key.public_key()
    else:
        _identity_number(customer, idn)
        keys, public_key, identify_data = KeyFiles(), read_csr(csr_der).public_key(), None

    now = clock.now()
    superseded = []

    def store(cert: x509.Certificate) -> Certificate:
        record, replaced = store_issued(customer, step, cert, actor,
                                        key_generated_here=password is not None)
        superseded.extend(replaced)
        return record

    try:
        issued = sign_and_deliver(
            customer, step.cert_type, public_key, identify_data, now, not_after(step, now),
            unique_digits(customer, now), actor, keys, store=store, once=once,
            offer_downloads=offer_downloads, replaced=step.current)
    except IntegrityError:
        raise DomainError("issue_conflict", status=409) from None
    announce_superseded(superseded)
    return issued


def not_after(step: Plan, now) -> object:
    """Where an issue ends: a reissue keeps the expiry already paid for."""
    return step.keeps_expiry or clock.naive(validity_end(clock.aware(now)))


def store_issued(customer: Customer, step: Plan, cert: x509.Certificate, actor: str, *,
                 key_generated_here: bool) -> tuple[Certificate, list[Certificate]]:
    """Step 5 of an issue or reissue, inside its transaction: every certificate of the type
    still in force is superseded (the current one, and a renewed predecessor still running out
    its days), and `cert` is stored as the current one. Returns (the record, the superseded);
    announce_superseded tells relying parties once the transaction is committed."""
    now, type_id = clock.now(), step.cert_type.id
    superseded = list(in_force(customer, type_id))
    if step.current and step.current.id not in {c.id for c in superseded}:
        raise DomainError("issue_conflict", status=409)
    for old in superseded:
        updated = Certificate.update(
            status="revoked", revoked_at=now, revocation_reason="superseded",
            status_changed_at=now, current_slot=None).where(
            (Certificate.id == old.id)
            & (Certificate.status.in_(["valid", "suspended"]))).execute()
        if not updated:
            raise DomainError("issue_conflict", status=409)
    Certificate.update(current_slot=None).where(
        Certificate.current_slot == _slot(customer, type_id)).execute()
    record = store_certificate(cert, customer, type_id, key_generated_here=key_generated_here)
    for old in superseded:
        Certificate.update(replaced_by=record).where(Certificate.id == old.id).execute()
        audit.record(actor, "certificate.revoke", old.serial, reason="superseded",
                     replaced_by=record.serial)
        note_change(old)
    if step.current is not None and step.current.not_after == record.not_after:
        _carry_on(step.current, record)
    if step.cert_type.needs_approval:
        CertificateRequest.update(status="issued", certificate=record).where(
            (CertificateRequest.customer == customer)
            & (CertificateRequest.cert_type == type_id)
            & (CertificateRequest.status == "approved")).execute()
    audit.record(actor, "certificate.issue", record.serial, customer=customer.code,
                 cert_type=type_id, reissue=bool(step.current),
                 key_generated_here=key_generated_here)
    return record, superseded


def announce_superseded(superseded: list[Certificate]) -> None:
    """After the transaction: relying parties see the superseded certificates revoked at once."""
    if superseded:
        publish_changes()
        presign_ocsp(*(old.serial for old in superseded))


def sign_and_deliver(customer: Customer, kind: CertType, public_key,
                     identify_data: bytes | None, not_before, not_after, unique_digits: str,
                     actor: str, keys: KeyFiles, *, store, once: str | None = None,
                     offer_downloads: bool = True,
                     replaced: Certificate | None = None) -> Issued:
    """The one path from signature to customer, for issue, reissue and renewal alike: sign
    (sign_end_entity), make the customer's files (certificate_files with `keys`), then in one
    transaction claim the confirm press (`once`, services.flows), let `store(cert)` record
    the certificate (store_certificate, what it replaces, its audit event) and put the files
    behind single-use links, unless `offer_downloads` is off (the operator CLI, automatic
    renewal). A press that was already done stops before anything is signed."""
    flows.not_done(once)
    cert = sign_end_entity(customer, kind, public_key, identify_data, not_before, not_after,
                           unique_digits, actor)
    files = certificate_files(cert, keys)
    with db.atomic():
        flows.once(once)
        record = store(cert)
        links = [downloads.create(record, name_kind, name, media, content)
                 for name_kind, name, media, content in files] if offer_downloads else []
    presign_ocsp(record.serial)
    return Issued(record, files, links, replaced)


def _carry_on(replaced: Certificate, record: Certificate) -> None:
    """A reissue keeps the expiry date, so it keeps what hangs on it: the expiry reminders
    already sent are not sent again, and automatic renewal stays as it was."""
    for reminder in replaced.reminders:
        Reminder.create(certificate=record, days_before=reminder.days_before,
                        status=reminder.status, created_at=reminder.created_at)
    record.auto_renew_days = replaced.auto_renew_days
    record.save(only=[Certificate.auto_renew_days])


def in_force(customer: Customer, type_id: str):
    """The customer's certificates of the type that relying parties still accept or may
    accept again: valid or suspended, not expired."""
    return Certificate.select().where(
        (Certificate.customer == customer) & (Certificate.cert_type == type_id)
        & Certificate.status.in_(["valid", "suspended"]) & (Certificate.not_after > clock.now()))


def sign_end_entity(customer: Customer, kind: CertType, public_key, identify_data: bytes | None,
                    not_before, not_after, unique_digits: str, actor: str) -> x509.Certificate:
    """Steps 1 to 4 of every issuance, each recorded before the next (services.reservations):
    reserve a serial, build the TBS from the type's profile, lint it, sign it with the issuing
    CA. Step 5, store_certificate, marks it issued in the customer's transaction."""
    config, ca = settings.current(), ca_store.load_ca()
    # 1. reserve a serial that was never used, committed before anything is signed
    reservation = reservations.reserve(customer, kind.id, public_key, actor)
    serial = int(reservation.serial, 16)
    # 2. build the TBS from the type's profile
    builder = end_entity_builder(EndEntityRequest(
        cert_type=kind, holder_name=customer.name, unique_digits=unique_digits,
        bank_code=config.bank_code, ca_org=config.ca_org, public_key=public_key,
        not_before=clock.aware(not_before), not_after=clock.aware(not_after), serial=serial,
        policy_arc=config.policy_arc, urls=ca_store.urls(crl_partition_for(serial)),
        identify_data=identify_data),
        ca.issuing_cert)
    # 3. lint it, signed by a throwaway key, before the CA key signs anything
    try:
        tbs = pki_lint.require_clean(builder)
    except PkiError as error:
        reservations.refused(reservation, actor, error.detail)
        raise DomainError("lint_failed", status=500) from None
    reservations.linted(reservation, tbs)
    # 4. sign exactly the linted TBS with the issuing CA (file or token), and keep the result
    cert = ca.issuing_key.certificate(tbs)
    reservations.signed(reservation, cert)
    return cert


def store_certificate(cert: x509.Certificate, customer: Customer, type_id: str, *,
                      key_generated_here: bool) -> Certificate:
    """Step 5: the signed certificate as the customer's current one of its type. Call inside
    the transaction that also moves the old one aside."""
    reservations.issued(serial_hex(cert.serial_number))
    return Certificate.create(
        serial=serial_hex(cert.serial_number), customer=customer, cert_type=type_id,
        subject=cert.subject.rfc4514_string(), not_before=clock.naive(cert.not_valid_before_utc),
        not_after=clock.naive(cert.not_valid_after_utc), der=pki_files.cert_der(cert),
        key_generated_here=key_generated_here, current_slot=_slot(customer, type_id),
        crl_partition=crl_partition_named(cert), created_at=clock.now())


def certificate_files(cert: x509.Certificate, keys: KeyFiles) -> list[tuple]:
    """(kind, filename, media type, bytes) for every file the customer may download: an NPKI
    folder when there is an encrypted signPri.key to put beside the certificate, a PKCS#12
    when the key and its password are at hand, and always the certificate and chain."""
    chain, ca_org = ca_store.chain(), settings.current().ca_org
    serial = serial_hex(cert.serial_number)
    found = []
    if keys.signpri is not None:
        found.append(("npki", "NPKI.zip", "application/zip",
                      npki.npki_zip(cert, keys.signpri, ca_org)))
    if keys.private_key is not None and keys.password is not None:
        found.append(("p12", f"{serial}.p12", "application/x-pkcs12",
                      pki_files.pkcs12(keys.private_key, cert, chain, keys.password,
                                       cert.subject.rfc4514_string())))
    return found + [
        ("cert", f"{serial}.crt", "application/pkix-cert", pki_files.cert_der(cert)),
        ("chain", "chain.pem", "application/x-pem-file", pki_files.chain_pem(chain))]
