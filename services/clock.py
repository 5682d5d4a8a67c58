"""The one clock every rule reads. Tests move it instead of sleeping."""
from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    """Now, as naive UTC (how the database keeps times)."""
    return datetime.now(UTC).replace(tzinfo=None) + _offset


def advance(delta: timedelta) -> None:
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)


def timestamp() -> float:
    """Now, as seconds since the epoch (for TOTP)."""
    return now().replace(tzinfo=UTC).timestamp()


def aware(moment: datetime) -> datetime:
    """A naive-UTC time as an aware one, for pki/ and `cryptography`."""
    return moment.replace(tzinfo=UTC)


def naive(moment: datetime) -> datetime:
    """An aware time as naive UTC, for the database."""
    return moment.astimezone(UTC).replace(tzinfo=None)
