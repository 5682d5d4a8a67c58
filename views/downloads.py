"""Single-use download links of a finished issuance."""
from flask import Blueprint
from flask_babel import gettext as _

from services import downloads
from services.errors import DomainError
from views import attachment, page
from views.messages import message_for

bp = Blueprint("downloads", __name__)


@bp.get("/download/<token>")
def take(token):
    try:
        file = downloads.take(token)
    except DomainError as error:
        return page("error.html", status=error.status, title=_("This link no longer works"),
                    message=message_for(error))
    return attachment(file.content, file.media_type, file.filename)
