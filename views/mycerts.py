"""My certificates (내 인증서): the verified customer's certificates, their public files,
and setting up an authenticator app."""
from datetime import datetime

from flask import Blueprint, abort, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from models import Certificate
from pki import files as pki_files
from pki.profile import CERT_TYPES
from services import ca_store, clock, issuance, registration, renewal, status, verification
from services.errors import DomainError
from views import PendingAuthenticator, attachment, days_left, error_list, go, page, verified
from views.forms import AutoRenewForm, CodeForm
from views.second_factor import SecondFactorStep

bp = Blueprint("mycerts", __name__, url_prefix="/my")
AUTO_RENEW_STEP = SecondFactorStep("auto_renew", _l("Save"), "mycerts.auto_renew_code",
                                   "mycerts.auto_renew_sms")
AUTHENTICATOR_STEP = SecondFactorStep("authenticator", _l("Continue"),
                                      "mycerts.authenticator_confirm", "mycerts.authenticator_sms")


def _state(cert: Certificate) -> str:
    if cert.status == "valid" and cert.not_after <= clock.now():
        return "expired"
    if renewal.is_renewed(cert):
        return "renewed"
    return cert.status


# Listed first; the rest (revoked, expired, replaced by a renewal) go under "Past certificates".
NEW_AUTHENTICATOR = PendingAuthenticator("totp_pending")
CURRENT = ("valid", "suspended")


@bp.get("/")
@verified("mycerts.index")
def index(customer):
    certificates = list(issuance.certificates_of(customer))
    serials = {cert.id: cert.serial for cert in certificates}
    changes = status.history(certificates)
    rows = [{"cert": cert, "type": CERT_TYPES[cert.cert_type], "state": _state(cert),
             "days_left": days_left(cert.not_after),
             "total_days": max(1, (cert.not_after - cert.not_before).days),
             "successor": serials.get(cert.replaced_by_id),
             "renewable": renewal.refusal(cert) is None,
             "auto_due": renewal.auto_renewal_due(cert), "changes": changes[cert.serial]}
            for cert in certificates]
    rows.sort(key=lambda row: row["cert"].not_before, reverse=True)       # newest first
    current = [row for row in rows if row["state"] in CURRENT]
    past = [row for row in rows if row["state"] not in CURRENT]
    requests = [r for r in customer.requests if r.status in ("requested", "approved", "rejected")]
    registered = [{"reg": reg, "names": registration.names(reg),
                   "state": "expired" if reg.not_after <= clock.now() else "valid"}
                  for reg in registration.registered_of(customer)]
    return page("mycerts/index.html", customer=customer, current=current, past=past,
                requests=requests,
                registered=registered,
                notice=session.pop("flash", None),
                has_totp=verification.totp_secret(customer) is not None,
                types=CERT_TYPES)


def _own(customer, serial) -> Certificate:
    cert = Certificate.get_or_none((Certificate.serial == serial.lower())
                                   & (Certificate.customer == customer))
    if cert is None:
        abort(404)
    return cert


@bp.get("/certificates/<serial>.crt")
@verified("mycerts.index")
def certificate_file(customer, serial):
    cert = _own(customer, serial)
    return attachment(bytes(cert.der), "application/pkix-cert", f"{cert.serial}.crt")


@bp.get("/certificates/<serial>/signCert.der")
@verified("mycerts.index")
def sign_cert(customer, serial):
    """The certificate under the name banking programs look for in an NPKI folder."""
    cert = _own(customer, serial)
    return attachment(bytes(cert.der), "application/pkix-cert", "signCert.der")


@bp.route("/certificates/<serial>/auto-renew", methods=["GET", "POST"])
@verified("mycerts.index")
def auto_renew(customer, serial):
    """Automatic renewal: when (7, 14 or 30 days before expiry) or off; then a code."""
    cert = _own(customer, serial)
    form = AutoRenewForm(data={"lead_days": str(cert.auto_renew_days or "")}
                         if request.method == "GET" else None)
    if form.validate_on_submit():
        lead = None if form.lead_days.data == "off" else int(form.lead_days.data)
        session["auto_renew"] = {"serial": cert.serial, "lead": lead}
        try:
            if lead is not None:
                renewal.check_auto_renewal(cert)
            AUTO_RENEW_STEP.ask(customer)
        except DomainError as error:
            return page("mycerts/auto_renew.html", status=error.status,
                        errors=error_list(error, "lead_days"), form=form, cert=cert,
                        cert_type=CERT_TYPES[cert.cert_type])
        return go("mycerts.auto_renew_code", serial=cert.serial)
    return page("mycerts/auto_renew.html", form=form, cert=cert,
                cert_type=CERT_TYPES[cert.cert_type])


def _auto_renew_asked(cert) -> bool:
    """Whether this certificate's automatic renewal waits for its second factor."""
    choice = session.get("auto_renew")
    return bool(choice) and choice["serial"] == cert.serial and AUTO_RENEW_STEP.method() is not None


@bp.route("/certificates/<serial>/auto-renew/code", methods=["GET", "POST"])
@verified("mycerts.index")
def auto_renew_code(customer, serial):
    cert = _own(customer, serial)
    if not _auto_renew_asked(cert):
        return go("mycerts.auto_renew", serial=cert.serial)
    return AUTO_RENEW_STEP.code(customer, lambda: _set_auto_renewal(customer, cert),
                                serial=cert.serial)


def _set_auto_renewal(customer, cert):
    lead = session["auto_renew"]["lead"]
    renewal.set_auto_renewal(cert, lead, "customer:" + customer.code)
    session.pop("auto_renew", None)
    session["flash"] = "auto_renew_on" if lead else "auto_renew_off"
    return go("mycerts.index")


@bp.post("/certificates/<serial>/auto-renew/sms")
@verified("mycerts.index")
def auto_renew_sms(customer, serial):
    """A text message instead of the authenticator app, or a new code."""
    cert = _own(customer, serial)
    if not _auto_renew_asked(cert):
        return go("mycerts.auto_renew", serial=cert.serial)
    return AUTO_RENEW_STEP.send_sms(customer, serial=cert.serial)


@bp.get("/chain.pem")
@verified("mycerts.index")
def chain_file(customer):
    return attachment(pki_files.chain_pem(ca_store.chain()), "application/x-pem-file",
                      "chain.pem")


def _changing_authenticator_confirmed(customer) -> bool:
    """Replacing an authenticator app needs the current second factor first, in this
    session, in the last 10 minutes."""
    if verification.totp_secret(customer) is None:
        return True
    confirmed = AUTHENTICATOR_STEP.answers.get().get("confirmed")
    return bool(confirmed) and verification.is_fresh(datetime.fromisoformat(confirmed))


@bp.route("/authenticator/confirm", methods=["GET", "POST"])
@verified("mycerts.authenticator")
def authenticator_confirm(customer):
    """Before a new authenticator app replaces the current one: a code from the current one
    (or a text message), so that a borrowed session cannot take over the second factor."""
    if _changing_authenticator_confirmed(customer):
        return go("mycerts.authenticator")
    if AUTHENTICATOR_STEP.method() is None:
        AUTHENTICATOR_STEP.ask(customer)          # the app they have: no text message
    return AUTHENTICATOR_STEP.code(customer, _authenticator_confirmed)


def _authenticator_confirmed():
    AUTHENTICATOR_STEP.answers.save(confirmed=clock.now().isoformat())
    return go("mycerts.authenticator")


@bp.post("/authenticator/confirm/sms")
@verified("mycerts.authenticator")
def authenticator_sms(customer):
    if AUTHENTICATOR_STEP.method() is None:
        return go("mycerts.authenticator")
    return AUTHENTICATOR_STEP.send_sms(customer)


@bp.route("/authenticator", methods=["GET", "POST"])
@verified("mycerts.authenticator")
def authenticator(customer):
    """Enrol an authenticator app: a QR code and the key in groups, confirmed by a code."""
    if not _changing_authenticator_confirmed(customer):
        return go("mycerts.authenticator_confirm")
    secret = NEW_AUTHENTICATOR.secret()
    form = CodeForm()
    errors = None
    if form.validate_on_submit():
        try:
            verification.enroll_totp(customer, secret, form.code.data)
        except DomainError as error:
            errors = error_list(error, "code")
        else:
            NEW_AUTHENTICATOR.done()
            session.pop("authenticator", None)
            session["flash"] = "totp_enrolled"
            return go("mycerts.index")
    return page("mycerts/authenticator.html", errors=errors, form=form,
                **NEW_AUTHENTICATOR.shown(customer.code, _("CertCenter")))
