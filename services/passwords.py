"""The certificate password a person chooses (KISA rules), typed twice."""
from pki.passwords import MAX_LENGTH, password_problems
from services.errors import DomainError


def check_new_password(password: str, again: str, field: str = "password") -> None:
    """Raise a DomainError naming the first KISA rule broken, or a mismatch of the two.

    A password over the limit is refused as it was typed, never shortened: a secret cut to fit
    would open the files only with its first characters, which nobody would remember."""
    password = password or ""
    if len(password) > MAX_LENGTH:
        raise DomainError("password_too_long", field=field, length=len(password),
                          limit=MAX_LENGTH)
    problems = password_problems(password)
    if problems:
        raise DomainError("password_" + problems[0], field=field)
    if password != again:
        raise DomainError("password_mismatch", field=field + "_again")
