"""Renewal (갱신) and automatic renewal (자동 갱신).

A certificate in force can be renewed once, in the last 30 days before it expires (counted in
KST calendar days), by a customer who proves they hold it. The new certificate runs from now
until the old expiry plus one year, so no days are lost; the old one stays valid until its own
expiry, pointing at its successor. The new one may have a new key, or the same public key.

Automatic renewal is a standing instruction per certificate: `jobs run` renews it with the
same public key 7, 14 or 30 days before expiry and tells the customer.
"""
import base64
import datetime as dt
import json
from datetime import timedelta

from cryptography import x509
from cryptography.x509.oid import NameOID
from peewee import IntegrityError

from models import Certificate, Customer, db
from pki import bundle, npki
from pki.errors import PkiError
from pki.profile import CERT_TYPES, KST, add_years
from services import audit, clock, issuance, secrets
from services.errors import DomainError
from services.i18n import N_
from services.notify import notify

WINDOW_DAYS = 30
LEAD_DAYS = (7, 14, 30)
SEND_HOUR = 9                 # messages and automatic renewals wait for 09:00 KST, not midnight
CLAIM_LIFE = timedelta(minutes=5)


# -- dates, in KST calendar days --------------------------------------------------------------

def expiry_day(cert: Certificate) -> dt.date:
    return clock.aware(cert.not_after).astimezone(KST).date()


def days_before_expiry(cert: Certificate, days: int, hour: int = 0) -> dt.datetime:
    """`hour`:00 KST on the calendar day `days` before the expiry day, as naive UTC."""
    day = expiry_day(cert) - timedelta(days=days)
    return clock.naive(dt.datetime.combine(day, dt.time(hour), tzinfo=KST))


def window_opens(cert: Certificate) -> dt.datetime:
    return days_before_expiry(cert, WINDOW_DAYS)


def renewal_end(cert: Certificate) -> dt.datetime:
    """The successor's expiry: the old expiry, one year on."""
    return clock.naive(add_years(clock.aware(cert.not_after).astimezone(KST), 1))


def auto_renewal_due(cert: Certificate) -> dt.datetime | None:
    if cert.auto_renew_days is None:
        return None
    return days_before_expiry(cert, cert.auto_renew_days, SEND_HOUR)


def current_successor(cert: Certificate) -> Certificate | None:
    """The certificate in force that replaced `cert` (by renewal or reissue, perhaps in
    several steps), or None when the chain ends in revoked or expired ones."""
    while cert.replaced_by_id:
        cert = Certificate.get_by_id(cert.replaced_by_id)
        if cert.status in ("valid", "suspended") and cert.not_after > clock.now():
            return cert
    return None


def is_renewed(cert: Certificate) -> bool:
    """Renewed, not reissued: the old one still valid, with a successor."""
    return cert.status == "valid" and cert.replaced_by_id is not None


def refusal(cert: Certificate) -> DomainError | None:
    """Why `cert` cannot be renewed now, or None when it can."""
    if cert.status == "revoked":
        newer = current_successor(cert) if cert.revocation_reason == "superseded" else None
        return DomainError("renew_superseded", status=409, serial=newer.serial) if newer \
            else DomainError("renew_revoked", status=409)
    if cert.replaced_by_id is not None:      # renewed: valid, or suspended with its successor
        newer = current_successor(cert)
        return DomainError("renew_already", status=409, serial=newer.serial) if newer \
            else DomainError("renew_successor_revoked", status=409)
    if cert.status == "suspended":
        return DomainError("renew_suspended", status=409)
    if cert.not_after <= clock.now():
        return DomainError("renew_expired", status=409)
    if clock.now() < window_opens(cert):
        return DomainError("renew_too_early", status=409,
                           date=expiry_day(cert) - timedelta(days=WINDOW_DAYS))
    return None


# -- renewing --------------------------------------------------------------------------------

HELD_KEY_MAX = 3000   # characters (RSA-2048: about 2,450): the cookie must stay under 4 KB


def seal_held_key(opened, password: str) -> str | None:
    """The opened files of a certificate login, sealed (AES-GCM under an instance key) for
    the session until the renewal is confirmed: the signPri.key as it came (or, from a .p12,
    the key encrypted under the same password) and the password. Nothing is stored here."""
    npki_folder = opened.encrypted_key is not None
    signpri = opened.encrypted_key if npki_folder else npki.encrypt_private_key(
        opened.private_key, password, None)
    payload = json.dumps({"npki": npki_folder, "password": password,
                          "signpri": base64.b64encode(signpri).decode()})
    sealed = secrets.encrypt("renewal-held-key", payload.encode())
    # A key larger than RSA-2048 would not fit the cookie: such a customer gets the
    # certificate alone, as after a signature login.
    return sealed if len(sealed) <= HELD_KEY_MAX else None


def open_held_key(sealed: str | None) -> issuance.KeyFiles | None:
    """The key a customer opened at certificate login, for a same-key renewal's files: the
    key, its password and their encrypted signPri.key (when they brought an NPKI folder)."""
    plain = secrets.decrypt("renewal-held-key", sealed or "")
    if plain is None:
        return None
    held = json.loads(plain)
    signpri = base64.b64decode(held["signpri"])
    try:
        key, _random_num = npki.read_private_key(signpri, held["password"])
    except PkiError:
        return None
    return issuance.KeyFiles(key, held["password"], signpri if held["npki"] else None)


def claim(cert: Certificate, automatic: bool) -> None:
    """Mark the certificate as being renewed, unless it is renewed or being renewed (or, for
    an automatic renewal, no longer set to renew automatically): two renewals at once stop
    here, before the CA key signs anything."""
    now = clock.now()
    condition = ((Certificate.id == cert.id) & (Certificate.status == "valid")
                 & Certificate.replaced_by.is_null()
                 & (Certificate.renewal_started_at.is_null()
                    | (Certificate.renewal_started_at < now - CLAIM_LIFE)))
    if automatic:
        condition &= Certificate.auto_renew_days.is_null(False)
    with db.atomic():
        claimed = Certificate.update(renewal_started_at=now).where(condition).execute()
    if not claimed:
        raise DomainError("renew_conflict", status=409)


def release(cert: Certificate) -> None:
    with db.atomic():
        Certificate.update(renewal_started_at=None).where(Certificate.id == cert.id).execute()


def kept_unique_digits(cert: x509.Certificate) -> str:
    """The digits after "()" in the old CN: the renewed certificate keeps its subject, so
    banking programs find it in the same NPKI folder."""
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return str(common_name).rsplit("()", 1)[-1]


def renew_certificate(old: Certificate, actor: str, *, new_password: str | None = None,
                      idn: str | None = None, held: issuance.KeyFiles | None = None,
                      auto_renew_days: int | None = None, automatic: bool = False,
                      offer_downloads: bool = True, once: str | None = None) -> issuance.Issued:
    """Renew `old`. With `new_password` (and the `idn` the VID is computed from), a new key
    is made here and the customer gets new files under that password. Without it, the new
    certificate certifies the same public key: with `held`, the customer gets a new NPKI
    folder (their own signPri.key beside the new certificate) and a new .p12 under the same
    password; without, the certificate alone. `auto_renew_days` carries on to the successor;
    `automatic` renews only while automatic renewal is still on. `once` names the confirm
    button's press (services.flows.once).
    """
    problem = refusal(old)
    if problem:
        raise problem
    customer: Customer = old.customer
    old_x509 = x509.load_der_x509_certificate(bytes(old.der))
    if new_password is not None:
        keys, identify_data = issuance.new_key(customer, idn, new_password)
        public_key = keys.private_key.public_key()
    else:
        keys, public_key = held or issuance.KeyFiles(), old_x509.public_key()
        if held is not None and not bundle.key_matches(held.private_key, old_x509):
            raise DomainError("key_mismatch")
        identify_data = kept_identify_data(customer, old_x509)

    def store(cert: x509.Certificate) -> Certificate:
        return store_renewal(old, cert, actor, key_generated_here=new_password is not None,
                             auto_renew_days=auto_renew_days)

    claim(old, automatic)
    try:
        return issuance.sign_and_deliver(
            customer, CERT_TYPES[old.cert_type], public_key, identify_data, clock.now(),
            renewal_end(old), kept_unique_digits(old_x509), actor, keys, store=store, once=once,
            offer_downloads=offer_downloads, replaced=old)
    except IntegrityError:           # the unique current slot: another renewal got there
        release(old)
        raise DomainError("renew_conflict", status=409) from None
    except BaseException:
        release(old)
        raise


def kept_identify_data(customer: Customer, old_x509: x509.Certificate) -> bytes | None:
    """For a successor with the same key: the same randomNum and person, so the same VID;
    the name is today's. None when the old certificate carries none."""
    try:
        found = npki.read_identify_data(old_x509)
    except PkiError:
        return None
    return npki.identify_data(customer.name, found[1]) if found else None


def store_renewal(old: Certificate, cert: x509.Certificate, actor: str, *,
                  key_generated_here: bool, auto_renew_days: int | None = None) -> Certificate:
    """Store `cert` as the successor of `old`, inside the renewal's transaction: `old` stays
    valid until its own expiry, pointing at it. Stops when `old` was revoked, suspended or
    renewed meanwhile."""
    Certificate.update(current_slot=None).where(Certificate.id == old.id).execute()
    record = issuance.store_certificate(cert, old.customer, old.cert_type,
                                        key_generated_here=key_generated_here)
    record.auto_renew_days = auto_renew_days
    record.save()
    moved = Certificate.update(replaced_by=record, renewal_started_at=None,
                               auto_renew_days=None).where(
        (Certificate.id == old.id) & Certificate.replaced_by.is_null()
        & (Certificate.status == "valid")).execute()
    if not moved:
        raise refusal(Certificate.get_by_id(old.id)) or DomainError("renew_conflict", status=409)
    audit.record(actor, "certificate.renew", record.serial, renewed=old.serial,
                 customer=old.customer.code,
                 same_key=cert.public_key() == x509.load_der_x509_certificate(
                     bytes(old.der)).public_key(),
                 auto_renew_days=auto_renew_days)
    return record


# -- automatic renewal -------------------------------------------------------------------------

def check_auto_renewal(cert: Certificate) -> None:
    """Automatic renewal is for a valid certificate not yet renewed or expired."""
    if cert.status != "valid" or cert.replaced_by_id or cert.not_after <= clock.now():
        raise DomainError("auto_renew_not_possible", status=409)


def set_auto_renewal(cert: Certificate, lead_days: int | None, actor: str) -> Certificate:
    """Turn automatic renewal on (`lead_days` before expiry) or off (None)."""
    if lead_days is not None and lead_days not in LEAD_DAYS:
        raise DomainError("auto_renew_lead", field="lead_days")
    if lead_days is not None:
        check_auto_renewal(cert)
    with db.atomic():
        Certificate.update(auto_renew_days=lead_days).where(Certificate.id == cert.id).execute()
        audit.record(actor, "certificate.auto_renew", cert.serial, lead_days=lead_days)
    return Certificate.get_by_id(cert.id)


def auto_renewals_due(at: dt.datetime) -> list[Certificate]:
    """Certificates whose automatic renewal is due at `at`."""
    candidates = Certificate.select().where(
        Certificate.auto_renew_days.is_null(False) & (Certificate.status == "valid")
        & Certificate.replaced_by.is_null() & (Certificate.not_after > at)
        & (Certificate.not_after <= at + timedelta(days=max(LEAD_DAYS) + 1)))
    return [cert for cert in candidates.order_by(Certificate.not_after)
            if auto_renewal_due(cert) <= at]


def auto_renew(cert: Certificate, actor: str = "system:jobs") -> Certificate:
    """Renew with the same public key and tell the customer where to get it. The row is read
    again: automatic renewal may have been turned off or put later since the run looked."""
    cert = Certificate.get_by_id(cert.id)
    if cert.auto_renew_days is None:
        raise DomainError("auto_renew_off", status=409)
    if auto_renewal_due(cert) > clock.now():         # the lead time was shortened meanwhile
        raise DomainError("auto_renew_not_due", status=409)
    record = renew_certificate(cert, actor, auto_renew_days=cert.auto_renew_days,
                               automatic=True, offer_downloads=False).certificate
    notify(cert.customer, "renewal_ready", N_(
        "[CertCenter] Your %(type)s certificate was renewed automatically and is valid until "
        "%(date)s. Download it from My certificates on our site and put it in your NPKI "
        "folder in place of the old signCert.der."),
        subject=N_("[CertCenter] Your certificate was renewed"),
        type=issuance.type_name(cert.cert_type, cert.customer.language),
        date=f"{clock.aware(record.not_after).astimezone(KST):%Y-%m-%d}")
    return record
