"""Copy certificate files between devices: send (upload, get a one-time code and a QR code of
the receive address) and receive (type the code, get the files once). No verification: the
code is the key."""
import segno
from flask import Blueprint, current_app, request, session, url_for
from flask_babel import gettext as _

from services import secrets, transfer
from services.errors import DomainError
from views import attachment, error_list, go, is_htmx, page
from views.forms import CodeForm, FilesForm

bp = Blueprint("transfer", __name__, url_prefix="/transfer")

MAX_FILES = 4


@bp.get("/")
def start():
    return page("transfer/start.html")


@bp.route("/send", methods=["GET", "POST"])
def send():
    form = FilesForm()
    if form.validate_on_submit():
        uploads = request.files.getlist("files")[:MAX_FILES + 1]
        try:
            if len(uploads) > MAX_FILES:
                raise DomainError("bundle_too_many", field="files")
            sent = transfer.send([(f.filename or "", f.read()) for f in uploads])
        except DomainError as error:
            return page("transfer/send.html", status=error.status,
                        errors=error_list(error, "files"), form=form)
        session["transfer"] = {"id": sent.transfer.id,
                               "code": secrets.encrypt("transfer-code", sent.code.encode())}
        return go("transfer.sent")
    return page("transfer/send.html", form=form)


def _sending():
    mine = session.get("transfer") or {}
    code = secrets.decrypt("transfer-code", mine.get("code", ""))
    return (mine.get("id"), code.decode()) if code else (None, None)


@bp.get("/sent")
def sent():
    transfer_id, code = _sending()
    if transfer_id is None:
        return go("transfer.send")
    receive_url = current_app.config["BASE_URL"] + url_for("transfer.receive")
    qr = segno.make(receive_url, error="m").svg_inline(
        scale=4, title=_("QR code of the receive page"))
    return page("transfer/sent.html", code=code, groups=[code[0:4], code[4:8], code[8:12]],
                qr=qr, receive_url=receive_url, progress=transfer.progress(transfer_id))


@bp.get("/sent/progress")
def sent_progress():
    """Polled by htmx every 5 seconds; 286 tells htmx to stop once nothing more can change."""
    transfer_id, _code = _sending()
    if transfer_id is None or not is_htmx():
        return go("transfer.sent")
    progress = transfer.progress(transfer_id)
    response = page("transfer/progress.html", progress=progress, polled=True)
    if progress.state != "waiting":
        response.status_code = 286
    return response


@bp.route("/receive", methods=["GET", "POST"])
def receive():
    form = CodeForm()
    if form.validate_on_submit():
        try:
            files = transfer.receive(form.code.data, request.remote_addr or "?")
        except DomainError as error:
            return page("transfer/receive.html", status=error.status,
                        errors=error_list(error, "code"), form=form)
        return attachment(files.content, files.media_type, files.filename)
    return page("transfer/receive.html", form=form)
