"""The KISA certificate-password rule, as a list of the rule ids a password breaks."""

import string

_FORBIDDEN = set("'\"\\|")
_LETTERS = set(string.ascii_letters)
_DIGITS = set(string.digits)
# Special = printable ASCII punctuation (string.punctuation). Spaces and non-ASCII characters
# (e.g. Hangul) do not count: Korean toolkits and keyboards agree only on ASCII symbols.
_SPECIALS = set(string.punctuation)
MIN_LENGTH, MAX_LENGTH = 10, 64


def _runs(pw: str):
    return zip(pw, pw[1:], pw[2:], strict=False)


def _is_sequence(a: str, b: str, c: str) -> bool:
    a, b, c = a.lower(), b.lower(), c.lower()
    same_class = all(x in _DIGITS for x in (a, b, c)) or all(x in _LETTERS for x in (a, b, c))
    step = ord(b) - ord(a)
    return same_class and step in (1, -1) and ord(c) - ord(b) == step


def password_problems(pw: str) -> list[str]:
    """Rule ids broken, in this order: length, letter, digit, special, forbidden_char, sequence, repeat.

    Each rule is checked on its own (e.g. "'" counts as special and is also forbidden), so a
    form can show every problem at once. An empty list means the password is acceptable.
    """
    chars = set(pw)
    checks = [
        ("length", not MIN_LENGTH <= len(pw) <= MAX_LENGTH),
        ("letter", not chars & _LETTERS),
        ("digit", not chars & _DIGITS),
        ("special", not chars & _SPECIALS),
        ("forbidden_char", bool(chars & _FORBIDDEN)),
        ("sequence", any(_is_sequence(*run) for run in _runs(pw))),
        ("repeat", any(a == b == c for a, b, c in _runs(pw))),
    ]
    return [rule for rule, broken in checks if broken]
