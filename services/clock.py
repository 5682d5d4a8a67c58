"""The one clock every rule reads. Tests move it instead of sleeping."""
from datetime import datetime, timedelta, timezone

_offset = timedelta(0)


def now() -> datetime:
    """Now, as naive UTC (how the database keeps times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None) + _offset


def advance(delta: timedelta) -> None:
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)


def timestamp() -> float:
    """Now, as seconds since the epoch (for TOTP)."""
    return now().replace(tzinfo=timezone.utc).timestamp()


def aware(moment: datetime) -> datetime:
    """A naive-UTC time as an aware one, for pki/ and `cryptography`."""
    return moment.replace(tzinfo=timezone.utc)


def naive(moment: datetime) -> datetime:
    """An aware time as naive UTC, for the database."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)
