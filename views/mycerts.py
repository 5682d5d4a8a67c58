"""My certificates (내 인증서): the verified customer's certificates, their public files,
and setting up an authenticator app."""
import segno
from flask import Blueprint, abort, session
from flask_babel import gettext as _

from models import Certificate
from pki import files as pki_files
from pki.profile import CERT_TYPES
from services import ca_store, clock, issuance, registration, secrets, verification
from services.errors import DomainError
from views import attachment, days_left, error_list, go, page, verified
from views.forms import CodeForm

bp = Blueprint("mycerts", __name__, url_prefix="/my")


def _state(cert: Certificate) -> str:
    if cert.status == "valid" and cert.not_after <= clock.now():
        return "expired"
    return cert.status


@bp.get("/")
@verified("mycerts.index")
def index(customer):
    rows = [{"cert": cert, "type": CERT_TYPES[cert.cert_type], "state": _state(cert),
             "days_left": days_left(cert.not_after),
             "total_days": max(1, (cert.not_after - cert.not_before).days)}
            for cert in issuance.certificates_of(customer)]
    requests = [r for r in customer.requests if r.status in ("requested", "approved", "rejected")]
    registered = [{"reg": reg, "names": registration.names(reg),
                   "state": "expired" if reg.not_after <= clock.now() else "valid"}
                  for reg in registration.registered_of(customer)]
    return page("mycerts/index.html", customer=customer, rows=rows, requests=requests,
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


@bp.get("/chain.pem")
@verified("mycerts.index")
def chain_file(customer):
    return attachment(pki_files.chain_pem(ca_store.chain()), "application/x-pem-file",
                      "chain.pem")


@bp.route("/authenticator", methods=["GET", "POST"])
@verified("mycerts.authenticator")
def authenticator(customer):
    """Enrol an authenticator app: a QR code and the key in groups, confirmed by a code."""
    pending = secrets.decrypt("totp-pending", session.get("totp_pending", ""))
    if pending is None:
        pending = verification.new_totp_secret().encode()
        session["totp_pending"] = secrets.encrypt("totp-pending", pending)
    secret = pending.decode()
    form = CodeForm()
    errors = None
    if form.validate_on_submit():
        try:
            verification.enroll_totp(customer, secret, form.code.data)
        except DomainError as error:
            errors = error_list(error, "code")
        else:
            session.pop("totp_pending", None)
            session["flash"] = "totp_enrolled"
            return go("mycerts.index")
    uri = verification.totp_uri(customer, secret, _("CertCenter"))
    qr = segno.make(uri, error="m").svg_inline(scale=4, title=_("QR code for your authenticator app"))
    groups = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return page("mycerts/authenticator.html", errors=errors, form=form, qr=qr, groups=groups)
