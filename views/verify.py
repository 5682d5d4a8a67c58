"""Identity verification pages: who you are, how to get a code, the code. On success the
session is rotated and the customer continues the flow they came from."""
from datetime import datetime

from flask import Blueprint, request, session
from flask_babel import get_locale

from models import Customer
from services import clock, secrets, verification
from services.customers import set_language
from services.errors import DomainError
from services.verification import IdentityClaim
from views import error_list, go, page, sign_in, sign_out
from views.forms import CodeForm, IdentityForm, MethodForm

bp = Blueprint("verify", __name__, url_prefix="/verify")

FLOWS = {"issue.terms", "issue.check", "mycerts.index", "mycerts.authenticator",
         "registration.upload",
         "certstatus.choose", "possession.choose", "renew.choose", "renew.check",
         "mycerts.auto_renew"}


def _pending() -> Customer | None:
    """The customer who passed step one in the last 10 minutes, not yet the second factor."""
    started = session.get("pending_at")
    if "pending" not in session or not started or not verification.is_fresh(
            datetime.fromisoformat(started)):
        return None
    return Customer.get_or_none(Customer.id == session["pending"])


@bp.route("/", methods=["GET", "POST"])
def identity():
    form = IdentityForm()
    if form.validate_on_submit():
        business = (form.business_number.data or "").strip()
        claim = IdentityClaim(form.name.data, form.rrn.data, form.account.data, form.pin.data,
                              business or None)
        try:
            customer = verification.check_identity(claim, request.remote_addr or "?")
        except DomainError as error:
            return page("verify/identity.html", status=error.status,
                        errors=error_list(error, "name"), form=form)
        session["pending"] = customer.id
        session["pending_at"] = clock.now().isoformat()
        # The VID is computed from this number at issuance; kept encrypted, never plain.
        session["idn"] = secrets.encrypt("session-idn", (business or form.rrn.data).encode())
        if verification.totp_secret(customer):
            return go("verify.method")
        return _send_code(customer, form)
    return page("verify/identity.html", form=form)


def _send_code(customer, form):
    try:
        verification.send_sms_code(customer)
    except DomainError as error:
        return page("verify/identity.html", status=error.status, errors=error_list(error),
                    form=form)
    session["method"] = "sms"
    return go("verify.code")


@bp.route("/method", methods=["GET", "POST"])
def method():
    customer = _pending()
    if customer is None:
        return go("verify.identity")
    form = MethodForm()
    if form.validate_on_submit():
        if form.method.data == "sms":
            try:
                verification.send_sms_code(customer)
            except DomainError as error:
                return page("verify/method.html", status=error.status,
                            errors=error_list(error, "method"), form=form)
        session["method"] = form.method.data
        return go("verify.code")
    return page("verify/method.html", form=form)


@bp.route("/code", methods=["GET", "POST"])
def code():
    customer = _pending()
    if customer is None:
        return go("verify.identity")
    method = session.get("method", "sms")
    form = CodeForm()
    if form.validate_on_submit():
        try:
            if method == "totp":
                verification.check_totp(customer, form.code.data)
            else:
                verification.check_sms_code(customer, form.code.data)
        except DomainError as error:
            return page("verify/code.html", status=error.status,
                        errors=error_list(error, "code"), form=form, method=method,
                        phone=customer.phone)
        flow, args = session.pop("next", None) or (None, {})
        sign_in(customer)
        set_language(customer, str(get_locale()))
        return go(flow, **args) if flow in FLOWS else go("mycerts.index")
    return page("verify/code.html", form=form, method=method, phone=customer.phone)


@bp.post("/resend")
def resend():
    customer = _pending()
    if customer is None:
        return go("verify.identity")
    try:
        verification.send_sms_code(customer)
    except DomainError as error:
        return page("verify/code.html", status=error.status, errors=error_list(error, "code"),
                    form=CodeForm(), method="sms", phone=customer.phone)
    session["method"] = "sms"
    return page("verify/code.html", form=CodeForm(), method="sms", phone=customer.phone,
                resent=True)


@bp.post("/signout")
def signout():
    sign_out()
    return page("verify/signed_out.html")
