"""Check my certificate file (certificate login): choose a way, then open the files with the
password or paste a signature of a challenge. The proof is kept in the session for 10 minutes
for the steps that need it."""
from datetime import datetime

from flask import Blueprint, request, session

from pki.profile import CERT_TYPES
from services import clock, possession
from services.errors import DomainError
from views import error_list, go, page, verified
from views.forms import PossessionFilesForm, SignatureForm, WayForm
from views.transfer import MAX_FILES

bp = Blueprint("possession", __name__, url_prefix="/my/check")


def _proved(record) -> None:
    session["possession"] = {"serial": record.serial, "at": clock.now().isoformat()}
    session.pop("challenge", None)


@bp.route("/", methods=["GET", "POST"])
@verified("possession.choose")
def choose(customer):
    form = WayForm()
    if form.validate_on_submit():
        return go("possession.with_files" if form.way.data == "files"
                  else "possession.with_signature")
    return page("possession/choose.html", form=form)


@bp.route("/files", methods=["GET", "POST"])
@verified("possession.choose")
def with_files(customer):
    form = PossessionFilesForm()
    if form.validate_on_submit():
        uploads = request.files.getlist("files")[:MAX_FILES]
        try:
            record = possession.prove_with_files(
                customer, [(f.filename or "", f.read()) for f in uploads], form.password.data,
                request.remote_addr or "?")
        except DomainError as error:
            return page("possession/files.html", status=error.status,
                        errors=error_list(error, "files"), form=form)
        _proved(record)
        return go("possession.done")
    return page("possession/files.html", form=form)


@bp.route("/signature", methods=["GET", "POST"])
@verified("possession.choose")
def with_signature(customer):
    form = SignatureForm()
    if form.validate_on_submit():
        challenge = session.pop("challenge", None)          # one attempt per challenge
        try:
            if challenge is None:
                raise DomainError("challenge_expired", field="signature")
            record = possession.prove_with_signature(
                customer, challenge["text"], datetime.fromisoformat(challenge["at"]),
                form.signature.data, request.remote_addr or "?")
        except DomainError as error:
            return _signature_page(form, error_list(error, "signature"), error.status)
        _proved(record)
        return go("possession.done")
    return _signature_page(form, None)


def _signature_page(form, errors, status=None):
    """A fresh challenge with every page: each one may be tried once."""
    text = possession.new_challenge()
    session["challenge"] = {"text": text, "at": clock.now().isoformat()}
    return page("possession/signature.html", status=status, errors=errors, form=form,
                challenge=text)


@bp.get("/done")
@verified("possession.choose")
def done(customer):
    proof = session.get("possession")
    if not proof:
        return go("possession.choose")
    record = next((c for c in customer.certificates if c.serial == proof["serial"]), None)
    return page("possession/done.html", record=record, cert_type=CERT_TYPES[record.cert_type])
