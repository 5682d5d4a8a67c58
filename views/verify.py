"""Identity verification pages: who you are, how to get a code, the code. On success the
session is rotated and the customer continues the flow they came from."""
from datetime import datetime

from flask import Blueprint, request, session
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from models import Customer
from services import clock, secrets, verification
from services.customers import set_language
from services.errors import DomainError
from services.verification import IdentityClaim
from views import error_list, go, page, sign_in, sign_out
from views.forms import IdentityForm, MethodForm
from views.second_factor import SecondFactorStep

bp = Blueprint("verify", __name__, url_prefix="/verify")
STEP = SecondFactorStep("verify", _l("Continue"), "verify.code", "verify.resend")

FLOWS = {"issue.terms", "issue.check", "mycerts.index", "mycerts.authenticator",
         "registration.upload",
         "certstatus.choose", "possession.choose", "renew.choose", "renew.check",
         "mycerts.auto_renew"}


def _pending() -> Customer | None:
    """The customer who passed step one in the last 10 minutes, not yet the second factor."""
    pending = STEP.answers.get()
    if "customer" not in pending or not verification.is_fresh(
            datetime.fromisoformat(pending["at"])):
        return None
    return Customer.get_or_none(Customer.id == pending["customer"])


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
        # A new verification in progress (its second factor not asked for yet).
        session["verify"] = {"customer": customer.id, "at": clock.now().isoformat()}
        # The VID is computed from this number at issuance; kept encrypted, never plain.
        session["idn"] = secrets.encrypt("session-idn", (business or form.rrn.data).encode())
        if verification.totp_secret(customer):
            return go("verify.method")
        try:
            STEP.ask(customer)
        except DomainError as error:
            return page("verify/identity.html", status=error.status, errors=error_list(error),
                        form=form)
        return go("verify.code")
    return page("verify/identity.html", form=form)


@bp.route("/method", methods=["GET", "POST"])
def method():
    customer = _pending()
    if customer is None:
        return go("verify.identity")
    form = MethodForm()
    if form.validate_on_submit():
        try:
            STEP.ask(customer, form.method.data)
        except DomainError as error:
            return page("verify/method.html", status=error.status,
                        errors=error_list(error, "method"), form=form)
        return go("verify.code")
    return page("verify/method.html", form=form)


@bp.route("/code", methods=["GET", "POST"])
def code():
    customer = _pending()
    if customer is None:
        return go("verify.identity")
    if STEP.method() is None:                # an app to choose first: the method page
        return go("verify.method")
    return STEP.code(customer, lambda: _signed_in(customer))


def _signed_in(customer):
    """The code was right: a new, verified session, back to the flow the customer came from."""
    flow, args = session.pop("next", None) or (None, {})
    sign_in(customer)
    set_language(customer, str(get_locale()))
    return go(flow, **args) if flow in FLOWS else go("mycerts.index")


@bp.post("/resend")
def resend():
    customer = _pending()
    if customer is None:
        return go("verify.identity")
    return STEP.send_sms(customer)


@bp.post("/signout")
def signout():
    sign_out()
    return page("verify/signed_out.html")
