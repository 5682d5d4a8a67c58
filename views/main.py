"""Home, language choice, support pages (FAQ, security guidance) and the demo SMS inbox."""
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, request, send_from_directory

from services import issuance
from services.i18n import LANGUAGES
from services.notify import sms_inbox, text_of
from views import page

bp = Blueprint("main", __name__)


@bp.get("/")
def home():
    return page("home.html", fees=issuance.fee_table())


@bp.get("/lang/<code>")
def language(code):
    if code not in LANGUAGES:
        abort(404)
    target = request.args.get("next", "/")
    parts = urlsplit(target)
    # Only our own pages: no open redirect. Browsers read a backslash as "/" and drop tabs
    # and line breaks inside a URL, so "/\\evil" or "/<TAB>/evil" would lead elsewhere; and
    # a line break cannot go in a header at all.
    if (parts.scheme or parts.netloc or not target.startswith("/") or "\\" in target
            or not target.isprintable()):
        target = "/"
    response = redirect(target.rstrip("?") or "/", code=303)
    response.set_cookie("lang", code, max_age=365 * 24 * 3600, samesite="Lax",
                        secure=True, httponly=True)
    return response


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page links: the same icon, not a 404 page."""
    return send_from_directory(current_app.static_folder, "favicon.svg",
                               mimetype="image/svg+xml", max_age=24 * 3600)


@bp.get("/support/faq")
def faq():
    return page("support/faq.html", fees=issuance.fee_table())


@bp.get("/support/security")
def security():
    return page("support/security.html")


@bp.get("/demo/inbox")
def demo_inbox():
    if not current_app.config["DEMO"]:
        abort(404)
    return page("demo_inbox.html", messages=list(sms_inbox()), text_of=text_of)
