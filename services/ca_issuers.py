"""A certificate's issuer, fetched from the caIssuers URL in its authorityInfoAccess, for when
neither the upload nor the operator supplied it. Used only when the operator allows it with
CERTCENTER_FETCH_INTERMEDIATES=1: the URL comes from a customer's file, so the server makes a
request wherever that file says. Hence http only (as RFC 5280 publishes caIssuers), no
redirects, a small size cap, a short deadline, and public addresses only unless the operator
also allows private networks (=private): a customer's file must not aim the server at the
bank's own network. What comes back is only a candidate: services.trust still validates the
whole path."""
import http.client
import ipaddress
import logging
import socket
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AuthorityInformationAccessOID

from services import settings

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024     # a CA certificate is 1-2 KB; a PKCS#7 bundle of a few, under 16 KB
DEADLINE = 3.0            # seconds: the socket timeout, and the limit for the whole body


def urls(cert: x509.Certificate) -> list[str]:
    """The certificate's http caIssuers URLs (ldap and https ones are skipped)."""
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except Exception:     # none, or an extension that does not parse
        return []
    found = [d.access_location.value for d in access
             if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
             and isinstance(d.access_location, x509.UniformResourceIdentifier)]
    return [url for url in found if _is_http(url)]


def _is_http(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.scheme.lower() == "http" and bool(parts.hostname) and parts.port != 0
    except ValueError:    # a malformed host or port
        return False


def _address(host: str, port: int) -> str | None:
    """The address to connect to, or None when it is not a public one (and private networks
    are not allowed). The connection goes to this address, so a second DNS answer cannot
    change where the request goes after the check."""
    address = ipaddress.ip_address(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
    if address.is_global or settings.current().fetch_intermediates == "private":
        return str(address)
    log.warning("caIssuers host %s is at a non-public address %s: not fetched", host, address)
    return None


def _get(url: str) -> bytes | None:
    """The body of a 200 answer to GET `url`, within MAX_BYTES and DEADLINE; else None."""
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + DEADLINE
    try:
        address = _address(parts.hostname or "", parts.port or 80)
        if address is None:
            return None
        connection = http.client.HTTPConnection(address, parts.port or 80, timeout=DEADLINE)
        try:
            connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                                headers={"Host": parts.netloc})
            response = connection.getresponse()   # http.client never follows a redirect
            if response.status != 200:
                log.warning("caIssuers %s answered %s", url, response.status)
                return None
            body = b""
            while chunk := response.read1(16 * 1024):
                body += chunk
                if len(body) > MAX_BYTES or time.monotonic() > deadline:
                    log.warning("caIssuers %s: over %d bytes or %.0f s", url, MAX_BYTES, DEADLINE)
                    return None
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as error:
        log.warning("caIssuers %s not fetched: %s", url, error)
        return None
    return body


def parse(data: bytes) -> list[x509.Certificate]:
    """The certificates in `data`: one DER certificate, PEM certificates, or a PKCS#7
    certs-only bundle (.p7c), DER or PEM; [] for anything else."""
    loaders = (lambda d: [x509.load_der_x509_certificate(d)], x509.load_pem_x509_certificates,
               pkcs7.load_der_pkcs7_certificates, pkcs7.load_pem_pkcs7_certificates)
    for load in loaders:
        try:
            certs = load(data)
            for cert in certs:
                cert.subject.rfc4514_string()     # cryptography parses lazily: fail here
            return certs
        except Exception:  # each loader raises its own errors on what it does not read
            continue
    return []


def fetch(cert: x509.Certificate) -> list[x509.Certificate]:
    """The certificates published at `cert`'s first http caIssuers URL (one request)."""
    found = urls(cert)
    body = _get(found[0]) if found else None
    certs = parse(body) if body else []
    if certs:
        log.info("caIssuers %s: %d certificate(s) for %s", found[0], len(certs),
                 cert.issuer.rfc4514_string())
    return certs
