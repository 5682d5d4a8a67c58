"""Web front end: Flask blueprints and Flask-WTF forms. A view parses, calls one service,
renders a template: the whole page, or only `<main>` for an htmx request."""
from datetime import datetime, timedelta
from functools import wraps

import segno
from flask import Response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from models import Customer
from services import clock, secrets, totp
from services.customers import format_business_number, format_phone
from services.errors import DomainError
from services.verification import VERIFIED_IDLE, end_sessions, is_fresh, session_is_current
from views.messages import message_for

MAX_ID = 2 ** 63 - 1      # the database's largest integer: a longer id in a URL is no page (404)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def page(template: str, status: int | None = None, errors: list | None = None,
         **context) -> Response:
    """Render a page; for htmx, only `<main>` (and its title). `errors` are (field id, text)
    pairs shown in the error summary; when not given, a posted `form`'s own errors are
    shown. A page with errors answers 400 unless `status` says otherwise."""
    form = context.get("form")
    if errors is None and form is not None and request.method == "POST":
        errors = form_errors(form)
    status = status or (400 if errors else 200)
    html = render_template(template, errors=errors or [], **context)
    response = Response(html, status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    return response


def go(endpoint: str, **values) -> Response:
    """After a successful post: a 303 redirect, or for htmx an HX-Redirect, so that the new
    page loads whole and a screen reader announces its title."""
    url = url_for(endpoint, **values)
    if is_htmx():
        response = Response("", status=200)
        response.headers["HX-Redirect"] = url
    else:
        response = redirect(url, code=303)
    response.vary.add("HX-Request")
    return response


def attachment(content: bytes, media_type: str, filename: str) -> Response:
    """A file for the browser to save; never cached on the way."""
    response = Response(content, mimetype=media_type)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_list(error, default_field: str | None = None) -> list:
    return [(error.field or default_field, message_for(error))]


def form_errors(form) -> list:
    """(field id, message) for each field's first error, in the order of the form."""
    return [(field.id, field.errors[0]) for field in form if field.errors]


# -- the verified customer in the session ---------------------------------------------------

def sign_in(customer: Customer) -> None:
    """Start a verified session: a new session, keeping only the flow in progress (and the
    answers given so far, if the same customer is verifying again)."""
    keep = {key: session[key] for key in ("idn", "next") if key in session}
    if session.get("customer") == customer.id:
        keep.update({flow: session[flow] for flow in ("issue", "renew") if flow in session})
    session.clear()
    session.permanent = True
    session.update(keep, customer=customer.id, verified_at=clock.now().isoformat(),
                   seen_at=clock.now().isoformat())


def _time(key: str):
    value = session.get(key)
    return datetime.fromisoformat(value) if value else None


def verified_customer() -> Customer | None:
    """The customer of a verified session still in use (10 minutes idle at most)."""
    seen = _time("seen_at")
    if "customer" not in session or seen is None or clock.now() - seen > VERIFIED_IDLE:
        return None
    customer = Customer.get_or_none(Customer.id == session["customer"])
    if customer is None or not session_is_current(customer, _time("verified_at")):
        return None
    session["seen_at"] = clock.now().isoformat()
    return customer


def verification_is_fresh() -> bool:
    return is_fresh(_time("verified_at"))


def reverify_unless_fresh(flow: str) -> Response | None:
    """A confirm button that changes a certificate needs a verification younger than 10
    minutes: if it is older, verify again and come back to `flow`."""
    if verification_is_fresh():
        return None
    remember_flow(flow)
    return go("verify.identity")


class PendingAuthenticator:
    """An authenticator app being set up (a customer's, an operator's): its secret, made once
    and kept sealed in the session under `key` until the setup is confirmed, and what the page
    shows of it (a QR code, and the key in groups of four for typing)."""

    def __init__(self, key: str):
        self.key = key

    def secret(self) -> str:
        pending = secrets.decrypt(self.key, session.get(self.key, ""))
        if pending is None:
            pending = totp.new_secret().encode()
            session[self.key] = secrets.encrypt(self.key, pending)
        return pending.decode()

    def shown(self, account: str, issuer: str) -> dict:
        secret = self.secret()
        uri = totp.provisioning_uri(secret, account, issuer)
        return {"qr": segno.make(uri, error="m").svg_inline(
                    scale=4, title=_("QR code for your authenticator app")),
                "groups": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))}

    def done(self) -> None:
        session.pop(self.key, None)


class FlowAnswers:
    """A multi-page flow's answers so far, kept in the session under one key."""

    def __init__(self, key: str):
        self.key = key

    def get(self) -> dict:
        return session.get(self.key, {})

    def save(self, **answers) -> None:
        session[self.key] = {**self.get(), **answers}

    def opened(self, name: str) -> str | None:
        """A secret answer kept sealed in the session (secrets purpose "session-<name>"), or
        None when there is none or its seal no longer opens (the instance key changed): the
        stale one is forgotten, and the flow asks for it again."""
        sealed = self.get().get(name)
        value = secrets.decrypt("session-" + name, sealed) if sealed else None
        if value is None:
            self.save(**{name: None})
            return None
        return value.decode()


def sign_out() -> None:
    customer = verified_customer()
    if customer is not None:
        end_sessions(customer)
    session.clear()


def remember_flow(endpoint: str) -> None:
    """Where to continue after identity verification (with the URL's own arguments)."""
    session["next"] = [endpoint, dict(request.view_args or {})]


def verified(flow: str, fresh: bool = False):
    """Require a verified customer; else send them to identity verification, to come back
    to `flow`. With `fresh`, the verification must be younger than 10 minutes."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            customer = verified_customer()
            if customer is None or (fresh and not is_fresh(_time("verified_at"))):
                remember_flow(flow)
                return go("verify.identity")
            return view(customer, *args, **kwargs)
        return wrapper
    return decorate


# Babel's Korean data writes "AM"/"PM", which Korean readers do not expect: Korean pages
# show the 24-hour clock instead. English keeps Babel's patterns, but says "Korea time" where
# Babel's long form would write "+0900". Every pattern has a 4-digit year (Babel's short ones,
# used for lockout times, have 2).
DATETIME_PATTERNS = {
    "ko": {"short": "yyyy. M. d. HH:mm", "medium": "yyyy. M. d. HH:mm:ss",
           "long": "yyyy년 M월 d일 HH:mm:ss"},
    "en": {"short": "MMM d, y, h:mm a", "long": "MMMM d, y, h:mm:ss a 'Korea time'"},
}


def format_moment(value, format: str = "medium") -> str:
    """A stored (naive UTC) time as the reader reads it, in KST."""
    from flask_babel import format_datetime, get_locale
    pattern = DATETIME_PATTERNS.get(str(get_locale()), {}).get(format)
    return format_datetime(value, pattern or format)


def type_name(type_id: str) -> str:
    """A certificate type's name in the reader's language."""
    from flask_babel import get_locale

    from services.issuance import type_name as named
    return named(type_id, str(get_locale()))


def days_left(not_after) -> int:
    return max(0, (not_after - clock.now()) // timedelta(days=1))


def register(app) -> None:
    from views import (
        certfiles,
        certstatus,
        cmp,
        downloads,
        issue,
        main,
        mycerts,
        ops,
        pki_public,
        possession,
        registration,
        renew,
        transfer,
        verify,
    )
    from views.commands import register_commands
    for module in (main, verify, issue, mycerts, downloads, pki_public, certstatus, transfer,
                   certfiles, possession, registration, renew, ops, cmp):
        app.register_blueprint(module.bp)
    for module in (pki_public, cmp):        # relying parties and CMP clients post no forms
        app.extensions["csrf"].exempt(module.bp)
    register_commands(app)
    app.jinja_env.filters["datetimeformat"] = format_moment
    app.jinja_env.globals["type_name"] = type_name
    app.jinja_env.filters["business_number"] = format_business_number
    app.jinja_env.filters["phone"] = format_phone

    @app.context_processor
    def _globals():
        from flask_babel import get_locale
        return {"htmx": is_htmx(), "lang": str(get_locale()), "demo": app.config["DEMO"],
                "signed_in": "customer" in session}

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def _csrf(_error):
        return page("error.html", status=400, title=_("Form expired"),
                    message=message_for(DomainError("csrf")))

    @app.errorhandler(DomainError)
    def _domain_error(error):
        """A rule said no where no page of the flow handles it: its message, in the reader's
        language, with its status; never a 500."""
        return page("error.html", status=error.status, title=_("There is a problem"),
                    message=message_for(error))

    from pki.errors import PkiError

    @app.errorhandler(PkiError)
    def _pki_error(error):
        """The signer (an HSM, say) could not sign: a 503 that says to try again. Any other
        PkiError here is a bug: the 500 page."""
        if error.code in ("signer_unavailable", "signer_failed"):
            app.logger.error("CA signer: %s", error)
            return _domain_error(DomainError(error.code, status=503))
        app.logger.error("Unexpected PKI error", exc_info=error)
        return _server_error(error)

    from werkzeug.exceptions import HTTPException

    titles = {404: _l("Page not found"), 405: _l("Page not found"),
              413: _l("File too large"), 429: _l("Too many requests")}
    bodies = {404: _l("If you typed the web address, check it is correct."),
              405: _l("If you typed the web address, check it is correct."),
              413: _l("The file is too large. Upload a file under 256 KB"),
              429: _l("Wait a few minutes and try again.")}

    @app.errorhandler(HTTPException)
    def _http_error(error):
        """Every HTTP error gets a page in the reader's language, not Werkzeug's default."""
        status = error.code or 500
        return page("error.html", status=status,
                    title=titles.get(status, _l("Sorry, something went wrong")),
                    message=bodies.get(status, _l("Go back and try again. If it happens "
                                                  "again, call us on weekdays 09:00–18:00.")))

    @app.errorhandler(500)
    def _server_error(_error):
        return page("error.html", status=500, title=_("Sorry, there is a problem with the "
                                                      "service"),
                    message=_("Nothing was changed. Try again later. If it happens again, "
                              "call us on weekdays 09:00–18:00."))
