"""Text people give us that we keep or pass on (names, reasons): one line of printable
characters. Control characters (newline, tab, BEL) and invisible format characters (such as
U+202E, which reverses how the rest of a line is shown) are refused with a message, never
stripped silently: the person sees what is wrong."""
import unicodedata

from services.errors import DomainError

# Cc control, Cf format (bidi overrides, zero-width), Zl/Zp line and paragraph separators,
# Co private use, Cs lone surrogates, Cn unassigned.
_REFUSED = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}


def one_line(value: str | None, field: str, max_length: int) -> str:
    """`value` without surrounding spaces, if it is one line of printable text no longer than
    `max_length`; else DomainError."""
    value = value or ""
    if any(unicodedata.category(c) in _REFUSED for c in value):
        raise DomainError("text_control_characters", field=field)
    value = value.strip()
    if len(value) > max_length:
        raise DomainError("text_too_long", field=field, most=max_length)
    return value
