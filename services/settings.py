"""The settings the services run with, set once by the application factory."""
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Settings:
    instance: Path
    base_url: str
    master_key: bytes            # 32 random bytes; every service secret is derived from it
    ca_passphrase: bytes
    ca_org: str = "CertCenter"
    bank_code: str = "CCBANK"
    policy_arc: str = ""
    demo: bool = False
    support_phone: str = "1588-0000"   # where customers call the bank (weekdays 09:00-18:00)
    crl_hours: int = 24          # nextUpdate - thisUpdate of each CRL
    # Follow caIssuers URLs in customers' certificates: "" no, "public" addresses, or "private" too.
    fetch_intermediates: str = ""
    smtp: dict = field(default_factory=dict)   # host, port, user, password, sender, starttls
    sms: dict = field(default_factory=dict)    # url, token, timeout, tries, backoff (seconds)
    pkcs11: dict = field(default_factory=dict)  # module, token (label), pin: CA keys in an HSM


_current: Settings | None = None


def configure(settings: Settings) -> None:
    global _current
    _current = settings


def current() -> Settings:
    if _current is None:
        raise RuntimeError("services.settings.configure() was not called")
    return _current
