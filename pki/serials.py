"""Certificate serial numbers: generation and the 40-digit hex text form used for storage."""

import re
import secrets

from .errors import PkiError

_SERIAL_BITS = 159
_HEX_RE = re.compile(r"[0-9a-f]{1,40}")


def random_serial() -> int:
    """A serial with 158 random bits and the top bit (2**158) set.

    Fixing the top bit makes every serial exactly 20 octets in DER (RFC 5280's maximum), positive,
    non-zero and below 2**159, while leaving far more than the 64 bits of entropy CAs must use.
    """
    return secrets.randbits(_SERIAL_BITS - 1) | (1 << (_SERIAL_BITS - 1))


def serial_hex(n: int) -> str:
    """The storage form: 40 lower-case hex digits, zero-padded (serials do not fit SQLite INTEGER)."""
    return f"{n:040x}"


def parse_serial_hex(s: str) -> int:
    """Parse a serial typed or pasted as hex, in either case, with or without colons."""
    text = s.strip().replace(":", "").lower() if isinstance(s, str) else ""
    if not _HEX_RE.fullmatch(text) or int(text, 16) == 0:
        raise PkiError("serial_invalid", s)
    return int(text, 16)
