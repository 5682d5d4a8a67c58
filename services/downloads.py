"""Single-use download links: each works once, for 10 minutes; the file is deleted on
download or at expiry. Only a hash of the link's token is kept."""
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from models import Download, db
from services import audit, clock, secrets
from services.errors import DomainError

LINK_LIFE = timedelta(minutes=10)


@dataclass
class Link:
    kind: str
    token: str
    filename: str
    size: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(certificate, kind: str, filename: str, media_type: str, content: bytes) -> Link:
    """Store a file behind a fresh link. Call inside the issuance transaction."""
    token = secrets.random_token()
    now = clock.now()
    Download.create(token_hash=_hash(token), certificate=certificate, kind=kind,
                    filename=filename, media_type=media_type, content=content,
                    expires_at=now + LINK_LIFE, created_at=now)
    return Link(kind, token, filename, len(content))


@dataclass
class File:
    filename: str
    media_type: str
    content: bytes


def take(token: str) -> File:
    """The file behind the link, once. A used or expired link raises DomainError (410)."""
    now = clock.now()
    row = Download.get_or_none(Download.token_hash == _hash(token or ""))
    if row is None:
        raise DomainError("download_unknown", status=404)
    if row.used_at is not None:
        raise DomainError("download_used", status=410)
    if row.expires_at <= now or row.content is None:
        Download.update(content=None).where(Download.id == row.id).execute()
        raise DomainError("download_expired", status=410)
    with db.atomic():
        # The conditional update makes two simultaneous clicks yield one file, not two.
        taken = Download.update(used_at=now, content=None).where(
            (Download.id == row.id) & Download.used_at.is_null()).execute()
        if taken:
            audit.record("customer:" + row.certificate.customer.code, "download.taken",
                         row.certificate.serial, kind=row.kind)
    if not taken:
        raise DomainError("download_used", status=410)
    return File(row.filename, row.media_type, bytes(row.content))


def _expired(at):
    return (Download.expires_at <= at) & Download.content.is_null(False)


def expired_count(at) -> int:
    """How many links' files a purge at `at` would delete."""
    return Download.select().where(_expired(at)).count()


def purge_expired() -> int:
    """Delete the files of links past their time. Returns how many were purged."""
    with db.atomic():
        count = Download.update(content=None).where(_expired(clock.now())).execute()
        if count:
            audit.record("system", "download.purged", None, count=count)
    return count
