"""OCSP throughput: CertCenter's POST /ocsp, served by its own server process
(`python -m ocsp_server`, granian) and under gunicorn, against `openssl ocsp`, and the first
answer after a revocation.

Run by hand from the repository root (never in CI, never by pytest):

    .venv/bin/python bench/ocsp.py [--requests 5000] [--concurrency 4] [--workers 2] [--rounds 3]

What it does:
  1. a temporary instance folder: `ca init`, `demo seed`, two `certs issue` for P0000001
     (the second replaces the first, so the first is revoked as superseded);
  2. one DER OCSP request (SHA-1 CertID, no nonce) for the valid certificate;
  3. four servers on 127.0.0.1, all up at once: `python -m ocsp_server --workers 2` (the
     recommended path: granian serving `app:create_app`, the answer pre-signed at issuance
     and served from the database); gunicorn `--workers 2` serving the same app, as a site
     without a separate OCSP process does; `openssl ocsp -index index.txt … -multi 2` for the
     same two certificates with the same (decrypted) OCSP signer; and gunicorn `--workers 2`
     serving a constant of the same length from a three-line WSGI app (the ceiling of any
     responder under gunicorn);
  4. each server's answer checked once with cryptography (signature, serial, status good;
     the revoked certificate answers "revoked"), so both do the same work;
  5. `--rounds` rounds of `ab -q -n N -c 4 -p req.der -T application/ocsp-request URL`
     against each in turn, so that the load of a shared machine falls on all of them alike;
     the median of each server's requests/s and of the per-round ratios certcenter/openssl;
  6. the certificate revoked through the service (`flask certs revoke`) while the servers
     run: the first answer after the command returns, from ocsp_server and from gunicorn,
     must say "revoked"; then one more ab run against ocsp_server, the answer rate after a
     revocation, and a last check that it still says revoked.

Requires ApacheBench (`apt-get install -y apache2-utils`), openssl, gunicorn and granian
(.venv).

`openssl ocsp -port N` (OpenSSL 3.0) takes a bare port number and listens on every interface.
So that nothing is reachable from outside, the script re-runs itself in a private network
namespace (`unshare --map-root-user --net`, no root needed) whose only interface is loopback;
all servers and ab run in there. `--no-netns` skips that (openssl then listens on all
interfaces for the length of its run). The namespace has IPv6 turned off, so that openssl
listens on IPv4 as the others do, and its ephemeral port range widened to 1024-65535 (a round
opens 20,000 connections, and the servers hold each closed one in TIME_WAIT for 60 s). Even
so, under load an ab run against openssl sometimes waits 30 s for its last answer and gives
up; such a run is run once more (see run_ab).
ab speaks HTTP/1.0 and opens a new connection per request, so connection set-up is part of
every measured request on both sides.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BIN,
    ROOT,
    clean_up,
    flask,
    free_port,
    instance_env,
    issue,
    make_instance,
    openssl_serial,
    openssl_subject,
    openssl_time,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp


def build_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    return (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
            .build().public_bytes(serialization.Encoding.DER))


def post(url: str, der: bytes, timeout: float = 10) -> bytes:
    req = urllib.request.Request(url, data=der,
                                 headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return response.read()


def check_answer(der: bytes, cert: x509.Certificate, signer: x509.Certificate,
                 expected: ocsp.OCSPCertStatus, who: str) -> None:
    """One answer, verified as a relying party would: successful, signed by the delegated
    signer, about this serial, with the expected status."""
    response = ocsp.load_der_ocsp_response(der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise SystemExit(f"{who}: response status {response.response_status}")
    signer.public_key().verify(response.signature, response.tbs_response_bytes,
                               padding.PKCS1v15(), response.signature_hash_algorithm)
    if response.serial_number != cert.serial_number:
        raise SystemExit(f"{who}: answered about serial {response.serial_number:x}")
    if response.certificate_status is not expected:
        raise SystemExit(f"{who}: status {response.certificate_status}, expected {expected}")
    if response.next_update_utc is None:
        raise SystemExit(f"{who}: no nextUpdate")


def wait_until_up(url: str, der: bytes, process: subprocess.Popen, what: str,
                  seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            post(url, der, timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not answer within {seconds:.0f} s") from None
            time.sleep(0.2)


def run_ab(url: str, request_file: Path, requests: int, concurrency: int) -> dict:
    command = ["ab", "-q", "-n", str(requests), "-c", str(concurrency), "-p", str(request_file),
               "-T", "application/ocsp-request", url]
    for attempt in (1, 2):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            break
        # Under load, `openssl ocsp -multi` sometimes leaves one connection unanswered, and ab
        # gives up on the whole run after 30 s. Run once more, and say so, rather than lose
        # every other server's figures.
        if attempt == 1 and "apr_pollset_poll" in done.stdout + done.stderr:
            print(f"  ab against {url} stalled for 30 s; running it again", flush=True)
            continue
        raise SystemExit(f"ab against {url} failed ({done.returncode}):\n{done.stdout}"
                         f"{done.stderr}")

    def field(label: str, default: str | None = None) -> str:
        match = re.search(rf"^{re.escape(label)}:\s+(\S+)", done.stdout, re.M)
        if match is None:
            if default is None:
                raise SystemExit(f"no '{label}' in ab's output:\n{done.stdout}")
            return default
        return match.group(1)

    return {"rps": float(field("Requests per second")),
            "mean_ms": float(field("Time per request")),
            "complete": int(field("Complete requests")),
            "failed": int(field("Failed requests")),
            "non2xx": int(field("Non-2xx responses", "0")),
            "length": int(field("Document Length").split()[0])}


def start(command: list[str], log: Path, env: dict | None = None, cwd: Path | None = None):
    # A process group of its own, so the whole group (gunicorn's or openssl's workers) can
    # be ended by this process id alone. Not a new session: `openssl ocsp -multi` calls
    # setpgid(0, 0), which fails for a session leader, and then exits 1.
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            cwd=cwd, process_group=0)


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def enter_netns() -> None:
    """Re-run this script in a new network namespace with only loopback, up."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise SystemExit("unshare/ip not found; run with --no-netns (openssl ocsp will then "
                         "listen on all interfaces while it runs)")
    command = ["unshare", "--map-root-user", "--net", "sh", "-c",
               'ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6'
               ' && echo "1024 65535" > /proc/sys/net/ipv4/ip_local_port_range && exec "$@"', "sh",
               sys.executable, str(Path(__file__).resolve()), "--in-netns", *sys.argv[1:]]
    sys.stdout.flush()
    os.execvp(command[0], command)


def write_index(path: Path, good: x509.Certificate, revoked: x509.Certificate) -> None:
    """openssl ca's database: V for the valid certificate, R (superseded) for the other."""
    now = time.gmtime()
    revoked_at = time.strftime("%y%m%d%H%M%SZ", now)
    lines = [
        "\t".join(["V", openssl_time(good.not_valid_after_utc), "",
                   openssl_serial(good.serial_number), "unknown", openssl_subject(good.subject)]),
        "\t".join(["R", openssl_time(revoked.not_valid_after_utc), revoked_at + ",superseded",
                   openssl_serial(revoked.serial_number), "unknown",
                   openssl_subject(revoked.subject)]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # openssl also wants the attribute file next to the index.
    path.with_name(path.name + ".attr").write_text("unique_subject = no\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=5000)
    parser.add_argument("--concurrency", "-c", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn workers and openssl ocsp -multi (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="ab runs against each server, taken in turn (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--no-netns", action="store_true",
                        help="do not isolate in a loopback-only network namespace")
    parser.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.no_netns and not args.in_netns:
        enter_netns()                                   # does not return
    for tool in ("ab", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (ab: apt-get install -y apache2-utils)")
    for tool in ("gunicorn", "granian"):
        if not (BIN / tool).exists():
            raise SystemExit(f"{BIN / tool} missing: .venv/bin/pip install -r requirements.txt")

    tmp = Path(tempfile.mkdtemp(prefix="certcenter-bench-ocsp-"))
    servers = []
    try:
        print(f"Setting up an instance in {tmp} …", flush=True)
        inst = make_instance(tmp / "instance")
        flask(inst.folder, "demo", "seed")
        revoked = issue(inst, tmp / "first")
        good = issue(inst, tmp / "second")          # replaces (revokes) the first
        request_der = build_request(good, inst.issuing_cert)
        revoked_der = build_request(revoked, inst.issuing_cert)
        request_file = tmp / "req.der"
        request_file.write_bytes(request_der)
        signer_bits = inst.ocsp_cert.public_key().key_size
        gunicorn = [str(BIN / "gunicorn"), "--workers", str(args.workers), "--log-level",
                    "warning"]

        # -- CertCenter: its own OCSP server process, and under gunicorn -----------------
        port = free_port()
        url = f"http://127.0.0.1:{port}/ocsp"
        servers.append(start([sys.executable, "-m", "ocsp_server", "--port", str(port),
                              "--workers", str(args.workers)],
                             tmp / "ocsp_server.log", env=instance_env(inst.folder), cwd=ROOT))
        port4 = free_port()
        url4 = f"http://127.0.0.1:{port4}/ocsp"
        servers.append(start([*gunicorn, "--bind", f"127.0.0.1:{port4}", "app:create_app()"],
                             tmp / "gunicorn.log", env=instance_env(inst.folder), cwd=ROOT))
        for target, process, who in ((url, servers[0], "ocsp_server"),
                                     (url4, servers[1], "gunicorn")):
            wait_until_up(target, request_der, process, who)
            check_answer(post(target, request_der), good, inst.ocsp_cert,
                         ocsp.OCSPCertStatus.GOOD, who)
            check_answer(post(target, revoked_der), revoked, inst.ocsp_cert,
                         ocsp.OCSPCertStatus.REVOKED, who)

        # -- openssl ocsp -------------------------------------------------------------------
        ca = tmp / "openssl"
        ca.mkdir()
        write_index(ca / "index.txt", good, revoked)
        (ca / "issuing.pem").write_bytes(inst.issuing_cert.public_bytes(serialization.Encoding.PEM))
        (ca / "ocsp.pem").write_bytes(inst.ocsp_cert.public_bytes(serialization.Encoding.PEM))
        inst.write_plain_key("ocsp", ca / "ocsp.key")
        port2 = free_port()
        url2 = f"http://127.0.0.1:{port2}/ocsp"
        # Same shape of answer as CertCenter's: responder by key hash, signer certificate
        # included, SHA-256 signature (nextUpdate differs: 1 hour here, 8 in CertCenter's).
        servers.append(start(["openssl", "ocsp", "-index", "index.txt",
                              "-port", str(port2), "-rsigner", "ocsp.pem",
                              "-rkey", "ocsp.key", "-CA", "issuing.pem", "-rmd", "sha256",
                              "-resp_key_id", "-nmin", "60", "-multi", str(args.workers)],
                             tmp / "openssl.log", cwd=ca))
        wait_until_up(url2, request_der, servers[-1], "openssl ocsp")
        check_answer(post(url2, request_der), good, inst.ocsp_cert, ocsp.OCSPCertStatus.GOOD,
                     "openssl")
        check_answer(post(url2, revoked_der), revoked, inst.ocsp_cert,
                     ocsp.OCSPCertStatus.REVOKED, "openssl")

        # -- the ceiling: gunicorn serving a constant ------------------------------------
        constant = post(url, request_der)
        (tmp / "constant.der").write_bytes(constant)
        (tmp / "constant_app.py").write_text(
            "BODY = open('constant.der', 'rb').read()\n\n\n"
            "def app(environ, start_response):\n"
            "    environ['wsgi.input'].read()\n"
            "    start_response('200 OK', [('Content-Type', 'application/ocsp-response'),\n"
            "                              ('Content-Length', str(len(BODY)))])\n"
            "    return [BODY]\n")
        port3 = free_port()
        url3 = f"http://127.0.0.1:{port3}/ocsp"
        servers.append(start([*gunicorn, "--bind", f"127.0.0.1:{port3}", "constant_app:app"],
                             tmp / "constant.log", cwd=tmp))
        wait_until_up(url3, request_der, servers[-1], "gunicorn (constant)")

        # -- rounds ---------------------------------------------------------------------------
        names = (f"certcenter (ocsp_server -w {args.workers})",
                 f"certcenter (gunicorn -w {args.workers})",
                 f"openssl ocsp -multi {args.workers}",
                 f"constant (gunicorn -w {args.workers})")
        targets = (url, url4, url2, url3)
        runs = {name: [] for name in names}
        for name, target in zip(names, targets, strict=True):
            print(f"{name}: {target}")
        for number in range(1, args.rounds + 1):
            print(f"round {number}/{args.rounds}: ab -n {args.requests} -c {args.concurrency} "
                  "against each …", flush=True)
            for name, target in zip(names, targets, strict=True):
                runs[name].append(run_ab(target, request_file, args.requests, args.concurrency))

        # -- a revocation while the server runs -----------------------------------------------
        serial = f"{good.serial_number:040x}"
        flask(inst.folder, "certs", "revoke", serial, "--reason", "cessation-of-operation",
              "--operator", "bench")
        for target, who in ((url, "ocsp_server"), (url4, "gunicorn")):
            check_answer(post(target, request_der), good, inst.ocsp_cert,
                         ocsp.OCSPCertStatus.REVOKED, f"{who}, first answer after revoking")
        print(f"revoked {serial}: the first answer after it says revoked; ab -n "
              f"{args.requests} -c {args.concurrency} …", flush=True)
        after = run_ab(url, request_file, args.requests, args.concurrency)
        check_answer(post(url, request_der), good, inst.ocsp_cert,
                     ocsp.OCSPCertStatus.REVOKED, "ocsp_server, after ab")

        # -- report ---------------------------------------------------------------------
        print()
        print(f"OCSP POST, 1 certificate, SHA-1 CertID, no nonce, RSA-{signer_bits} signer, "
              f"ab -n {args.requests} -c {args.concurrency} (HTTP/1.0, new connection per "
              f"request), {os.cpu_count()} CPUs, median of {args.rounds} rounds")
        print(f"{'server':<38}{'req/s':>9}{'rounds':>24}{'failed':>8}{'non-2xx':>9}{'bytes':>7}")
        rows = [(name, runs[name]) for name in names]
        rows.insert(1, ("ocsp_server, after a revocation", [after]))
        for name, results in rows:
            rates = [r["rps"] for r in results]
            print(f"{name:<38}{statistics.median(rates):>9.1f}"
                  f"{' '.join(f'{rate:.0f}' for rate in rates):>24}"
                  f"{sum(r['failed'] for r in results):>8}"
                  f"{sum(r['non2xx'] for r in results):>9}{results[0]['length']:>7}")
        for label, ours, theirs in (("ocsp_server/openssl", names[0], names[2]),
                                    ("gunicorn/openssl", names[1], names[2]),
                                    ("ocsp_server/constant", names[0], names[3])):
            ratios = [a["rps"] / b["rps"] for a, b in zip(runs[ours], runs[theirs], strict=True)]
            print(f"ratio {label}: {statistics.median(ratios):.2f} (rounds: "
                  f"{' '.join(f'{r:.2f}' for r in ratios)})")
    finally:
        for server in servers:
            stop(server)
        clean_up(tmp, args.keep)


if __name__ == "__main__":
    main()
