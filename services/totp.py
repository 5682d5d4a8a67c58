"""Authenticator-app codes (TOTP, RFC 6238), for customers and operators alike: new secrets,
the provisioning URI, and which time step a typed code belongs to."""
import hmac

import pyotp

from services import clock


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def matching_step(secret: str, code: str) -> int | None:
    """The time step (within one step either way) at which `code` is right, if any."""
    totp = pyotp.TOTP(secret)
    moment = clock.timestamp()
    for offset in (0, -1, 1):
        at = int(moment) + offset * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return at // totp.interval
    return None
