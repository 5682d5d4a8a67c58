"""The certificate password a person chooses (KISA rules), typed twice."""
from pki.passwords import password_problems
from services.errors import DomainError


def check_new_password(password: str, again: str, field: str = "password") -> None:
    """Raise a DomainError naming the first KISA rule broken, or a mismatch of the two."""
    problems = password_problems(password or "")
    if problems:
        raise DomainError("password_" + problems[0], field=field)
    if password != again:
        raise DomainError("password_mismatch", field=field + "_again")
