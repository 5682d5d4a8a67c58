"""CertCenter (인증센터): the application factory.

`create_app()` reads configuration from the environment, prepares the instance folder
(database, generated secrets, the CA), and wires the extensions, blueprints, CLI groups and
security headers together.
"""
import hashlib
import ipaddress
import os
import secrets
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel
from flask_compress import Compress
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from models import db, open_database
from models.migrations import upgrade
from pki.profile import DEFAULT_POLICY_ARC
from services import ca_store, settings, status, trust
from services.i18n import DEFAULT_LANGUAGE, LANGUAGES, TRANSLATIONS_DIR

ONE_YEAR = 365 * 24 * 3600
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def _instance_secret(instance: Path, name: str, size: int = 32) -> bytes:
    """Read a generated secret from the instance folder, creating it (mode 0600) once."""
    path = instance / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(size))
    return path.read_bytes()


def _master_key(env, instance: Path) -> bytes:
    """The key every service secret is derived from: `CERTCENTER_MASTER_KEY` (64 hex digits),
    which several hosts of one site must share, or else one generated into the instance
    folder."""
    given = env.get("CERTCENTER_MASTER_KEY")
    if given is None:
        return _instance_secret(instance, "master.key")
    try:
        key = bytes.fromhex(given.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise RuntimeError("CERTCENTER_MASTER_KEY must be 64 hex digits (32 random bytes), "
                           "e.g. from `openssl rand -hex 32`")
    return key


def load_config(overrides: dict | None = None) -> dict:
    env = {**os.environ, **(overrides or {})}
    instance = Path(env.get("CERTCENTER_INSTANCE", "instance")).resolve()
    instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    smtp = {"host": env.get("CERTCENTER_SMTP_HOST", ""),
            "port": env.get("CERTCENTER_SMTP_PORT", "25"),
            "user": env.get("CERTCENTER_SMTP_USER", ""),
            "password": env.get("CERTCENTER_SMTP_PASSWORD", ""),
            "sender": env.get("CERTCENTER_SMTP_SENDER", "certcenter@localhost"),
            "starttls": env.get("CERTCENTER_SMTP_STARTTLS", "") == "1"}
    sms = {"url": env.get("CERTCENTER_SMS_URL", ""),
           "token": env.get("CERTCENTER_SMS_TOKEN", ""),
           "timeout": float(env.get("CERTCENTER_SMS_TIMEOUT", "5")),
           "tries": int(env.get("CERTCENTER_SMS_TRIES", "3")),
           "backoff": float(env.get("CERTCENTER_SMS_BACKOFF", "0.5"))}
    base_url = env.get("CERTCENTER_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    passphrase = env.get("CERTCENTER_CA_PASSPHRASE")
    return {
        "INSTANCE": instance,
        "BASE_URL": base_url,
        "DATABASE_URL": env.get("DATABASE_URL", f"sqlite:///{instance / 'certcenter.db'}"),
        "SECRET_KEY": env.get("SECRET_KEY") or _instance_secret(instance, "secret_key").hex(),
        "MASTER_KEY": _master_key(env, instance),
        "CA_PASSPHRASE": (passphrase.encode() if passphrase
                          else _instance_secret(instance, "ca-passphrase").hex().encode()),
        "POLICY_ARC": env.get("CERTCENTER_POLICY_ARC", DEFAULT_POLICY_ARC),
        "CA_ORG": env.get("CERTCENTER_CA_ORG", "CertCenter"),
        "BANK_CODE": env.get("CERTCENTER_BANK_CODE", "CCBANK"),
        "DEMO": env.get("CERTCENTER_DEMO", "") == "1",
        "SUPPORT_PHONE": env.get("CERTCENTER_SUPPORT_PHONE", "1588-0000"),
        "TRUSTED_PROXIES": int(env.get("CERTCENTER_TRUSTED_PROXIES", "0") or 0),
        "CRL_HOURS": int(env.get("CERTCENTER_CRL_HOURS", "24")),
        "FETCH_INTERMEDIATES": {"1": "public", "private": "private"}.get(
            env.get("CERTCENTER_FETCH_INTERMEDIATES", ""), ""),
        "SMTP": smtp,
        "SMS": sms,
        "PKCS11": _pkcs11(env),
        # The operators' console, and the client networks allowed to reach it (all when empty).
        "OPS": env.get("CERTCENTER_OPS", "") == "1",
        "OPS_ALLOW": [ipaddress.ip_network(item.strip(), strict=False)
                      for item in env.get("CERTCENTER_OPS_ALLOW", "").split(",") if item.strip()],
        "TESTING": env.get("TESTING") == "1" or bool((overrides or {}).get("TESTING")),
        # Cookies: sent only over HTTPS (browsers treat 127.0.0.1 as secure too), never to
        # scripts, never on cross-site posts.
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "cc_session",
        "PERMANENT_SESSION_LIFETIME": 1800,
        "MAX_CONTENT_LENGTH": 256 * 1024,
        "WTF_CSRF_TIME_LIMIT": 3600,
        # Static files are sent streamed, and Flask-Compress leaves gzip out of its streaming
        # algorithms by default: a gzip-only client got htmx uncompressed. Both lists say gzip.
        "COMPRESS_ALGORITHM": ["br", "gzip"],
        "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],
        "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript", "application/javascript",
                               "application/x-pem-file", "image/svg+xml"],
        "COMPRESS_MIN_SIZE": 256,
        "BABEL_DEFAULT_LOCALE": DEFAULT_LANGUAGE,
        "BABEL_DEFAULT_TIMEZONE": "Asia/Seoul",
        "BABEL_TRANSLATION_DIRECTORIES": str(TRANSLATIONS_DIR),
    }


def _pkcs11(env) -> dict:
    """The token that holds the issuing CA and OCSP signer keys, when one is configured."""
    module = env.get("CERTCENTER_PKCS11_MODULE", "")
    if not module:
        return {}
    pin = env.get("CERTCENTER_PKCS11_PIN")
    if pin is None and env.get("CERTCENTER_PKCS11_PIN_FILE"):
        pin = Path(env["CERTCENTER_PKCS11_PIN_FILE"]).read_text(encoding="utf-8").strip()
    return {"module": module, "token": env.get("CERTCENTER_PKCS11_TOKEN", "certcenter"),
            "pin": pin or ""}


def select_language() -> str:
    chosen = request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def create_app(overrides: dict | None = None) -> Flask:
    config = load_config(overrides)
    app = Flask(__name__, instance_path=str(config["INSTANCE"]))
    app.config.update(config)
    app.config.update({k: v for k, v in (overrides or {}).items() if k.isupper()})

    settings.configure(settings.Settings(
        instance=app.config["INSTANCE"], base_url=app.config["BASE_URL"],
        master_key=app.config["MASTER_KEY"], ca_passphrase=app.config["CA_PASSPHRASE"],
        ca_org=app.config["CA_ORG"], bank_code=app.config["BANK_CODE"],
        policy_arc=app.config["POLICY_ARC"], demo=app.config["DEMO"],
        support_phone=app.config["SUPPORT_PHONE"], smtp=app.config["SMTP"],
        sms=app.config["SMS"], crl_hours=app.config["CRL_HOURS"],
        fetch_intermediates=app.config["FETCH_INTERMEDIATES"], pkcs11=app.config["PKCS11"]))

    if app.config["TRUSTED_PROXIES"]:
        # Behind N reverse proxies, the client is the address the Nth proxy saw: attempt
        # limits per client count that address, not the proxy's.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    open_database(app.config["DATABASE_URL"])
    with db.connection_context():
        upgrade()
        ca_store.adopt_folder()
        trust.adopt_folder()
        status.publish_lost_changes()

    Babel(app, locale_selector=select_language)
    CSRFProtect(app)
    Compress(app)
    _static_versions(app)

    @app.before_request
    def _connect():
        # One connection per worker thread, kept between requests: opening one costs more
        # than answering an OCSP request from the cache. Peewee keeps it thread-local, and
        # it closes with its thread.
        db.connect(reuse_if_open=True)

    every, pages = response_headers(app.config["BASE_URL"])

    @app.after_request
    def _headers(response):
        for name, value in every + pages:
            response.headers[name] = value
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    from views import register
    register(app)
    # Outermost: OCSP questions with a stored answer never reach Flask. An OCSP answer is
    # not a page and is never compressed, so it goes without the page headers and
    # Flask-Compress's Vary: each header is a few microseconds of gunicorn's time.
    from views.ocsp_stored import StoredOcsp
    app.wsgi_app = StoredOcsp(app.wsgi_app, every)
    return app


def response_headers(base_url: str) -> tuple[list, list]:
    """The headers every response carries, and those every page also carries."""
    every = [("X-Content-Type-Options", "nosniff")]
    if base_url.startswith("https://"):
        every.append(("Strict-Transport-Security", "max-age=31536000"))
    pages = [("Content-Security-Policy", CSP), ("Referrer-Policy", "same-origin"),
             ("X-Frame-Options", "DENY"),
             ("Permissions-Policy", "camera=(), microphone=(), geolocation=()")]
    return every, pages


def _static_versions(app: Flask) -> None:
    """Static URLs carry a hash of the file, so browsers may cache them for a year."""
    versions: dict[str, str] = {}

    def asset(filename: str) -> str:
        from flask import url_for
        if filename not in versions or app.debug:
            path = Path(app.static_folder) / filename
            versions[filename] = (hashlib.sha256(path.read_bytes()).hexdigest()[:12]
                                  if path.exists() else "0")
        return url_for("static", filename=filename, v=versions[filename])

    app.jinja_env.globals["asset"] = asset
    app.get_send_file_max_age = lambda _name: ONE_YEAR
