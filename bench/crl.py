"""CRL generation time: CertCenter's pki.crl.build_crl_der (and services' publish path) against
`openssl ca -gencrl`, for 10,000 and 100,000 revoked entries; then the partitioned CRLs.

Run by hand from the repository root (never in CI, never by pytest):

    .venv/bin/python bench/crl.py [--sizes 10000 100000] [--repeat 3] [--no-publish]

  certcenter  pki.crl.build_crl_der(issuing cert, issuing key, entries, …), over a prepared
              list of RevokedEntry (reasons mixed; key-compromise entries carry an invalidity
              date). The issuing key is the instance's, loaded with cryptography from its
              encrypted PKCS#8 file.
  publish     services.status.publish_crl() in an app context: reads the revoked rows from
              the instance's SQLite database, builds and signs, stores the DER (the database
              is filled with that many revoked certificate rows first, each in its partition,
              serial mod 16, as issuance puts them, and every partition noted as changed, so
              no partition CRL is current: every entry is encoded from its row).
  current     the same once every partition's CRL is current (what `jobs run` leaves): the
              full CRL takes their entries as signed there.
  openssl     `openssl ca -gencrl` over an index.txt with the same serials, reasons and times,
              the same issuing certificate and (decrypted) key, SHA-256, cRLNumber and
              authorityKeyIdentifier, timed with perf_counter around subprocess.run.

Every figure is the best of --repeat runs, in seconds. ratio = certcenter / openssl.

Partitions (with publish): one more certificate is revoked in a partition (its row and its
notes, as a status change leaves them), then services.status.publish_crl(partition) is timed:
what a status change re-signs. openssl ca -gencrl runs over that partition's entries for the
ratio. revoke: services.status.revoke_certificate of a valid certificate row in that
partition, the whole change as a request makes it (row, audit, notes, the partition's CRL,
OCSP answers, the customer's notification). Bytes: what a relying party downloads to check
one certificate, the full CRL against its partition's CRL (mean and largest of the 16).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import clean_up, flask, instance_env, make_instance, openssl_serial, openssl_time
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.crl import RevokedEntry, build_crl_der

# CertCenter reason -> openssl index.txt reason (privilegeWithdrawn has no index.txt name,
# so the mix leaves it out). key-compromise entries carry an invalidity date on both sides
# (openssl: "keyTime,<GeneralizedTime>").
REASONS = {"key-compromise": "keyTime",
           "affiliation-changed": "affiliationChanged", "superseded": "superseded",
           "cessation-of-operation": "cessationOfOperation",
           "certificate-hold": "certificateHold"}
PARTITIONS = 16          # ca init's default, which the bench's instance has
MIX = ["superseded"] * 4 + ["key-compromise", "affiliation-changed", "cessation-of-operation",
                            "certificate-hold", "unspecified"]


def make_entries(count: int, seed: int = 1) -> list[RevokedEntry]:
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    serials: set[int] = set()
    while len(serials) < count:          # CertCenter's serials: 159 random bits, 40 hex digits
        serials.add(rng.getrandbits(159) | 1 << 156)
    entries = []
    for i, serial in enumerate(sorted(serials, key=lambda _s: rng.random())):
        at = now - dt.timedelta(seconds=rng.randrange(1, 300 * 86400))
        reason = MIX[i % len(MIX)]
        entries.append(RevokedEntry(serial, at, reason,
                                    at if reason == "key-compromise" else None))
    return entries


def best(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


# -- openssl ca -gencrl --------------------------------------------------------------------

OPENSSL_CNF = """\
[ca]
default_ca = bench

[bench]
dir              = .
database         = index.txt
crlnumber        = crlnumber
certificate      = issuing.pem
private_key      = issuing.key
default_md       = sha256
default_crl_days = 1
crl_extensions   = crl_ext

[crl_ext]
authorityKeyIdentifier = keyid:always
"""


def write_index(path: Path, entries: list[RevokedEntry], not_after: dt.datetime) -> None:
    expiry = openssl_time(not_after)
    with path.open("w", encoding="ascii") as out:
        for n, e in enumerate(entries):
            # No reason at all for "unspecified": CertCenter leaves the reasonCode out then
            # (RFC 5280 5.3.1), while openssl would write reasonCode unspecified.
            revinfo = openssl_time(e.revoked_at) + ("" if e.reason == "unspecified"
                                                    else "," + REASONS[e.reason])
            if e.reason == "key-compromise":
                revinfo += "," + e.invalidity_date.strftime("%Y%m%d%H%M%SZ")
            out.write(f"R\t{expiry}\t{revinfo}\t{openssl_serial(e.serial)}\tunknown\t"
                      f"/O=Bench/CN=revoked {n}\n")
    path.with_name(path.name + ".attr").write_text("unique_subject = no\n")


def openssl_gencrl(folder: Path) -> bytes:
    done = subprocess.run(["openssl", "ca", "-config", "openssl.cnf", "-gencrl", "-out",
                           "crl.pem", "-batch"], cwd=folder, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"openssl ca -gencrl failed:\n{done.stderr.decode(errors='replace')}")
    return (folder / "crl.pem").read_bytes()


def same_content(ours: x509.CertificateRevocationList,
                 theirs: x509.CertificateRevocationList) -> str:
    """A quick check that both CRLs list the same serials with the same reasons."""
    def table(crl):
        out = {}
        for r in crl:
            try:
                reason = r.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = None
            out[r.serial_number] = reason
        return out
    a, b = table(ours), table(theirs)
    if a == b:
        return "same serials and reasons"
    return f"DIFFER: {len(a)} vs {len(b)} entries, {sum(a.get(k) != v for k, v in b.items())} differ"


# -- services.status.publish_crl -----------------------------------------------------------

def fill_database(app, entries: list[RevokedEntry], done: int) -> None:
    """Revoked certificate rows for entries[done:], owned by the demo customer."""
    from models import Certificate, Customer, UnpublishedChange, db
    from services import clock
    customer = Customer.get(Customer.code == "P0000001")
    now = clock.now()
    rows = [{"serial": format(e.serial, "040x"), "customer": customer.id,
             "cert_type": "personal-banking", "status": "suspended"
             if e.reason == "certificate-hold" else "revoked", "subject": f"CN=revoked {n}",
             "not_before": now - dt.timedelta(days=1), "not_after": now + dt.timedelta(days=365),
             "der": b"", "key_generated_here": True, "revoked_at": clock.naive(e.revoked_at),
             "revocation_reason": e.reason, "crl_partition": e.serial % PARTITIONS,
             "created_at": now}
            for n, e in enumerate(entries[done:], start=done)]
    with db.atomic():
        for start in range(0, len(rows), 2000):
            Certificate.insert_many(rows[start:start + 2000]).execute()
        # As status changes leave them: no partition's CRL has the new rows yet.
        UnpublishedChange.insert_many([{"serial": rows[0]["serial"], "changed_at": now,
                                        "crl_partition": n} for n in range(PARTITIONS)]).execute()


def certificate_row(partition: int, serial: int, revoked: bool):
    """One more certificate row in `partition`, revoked (and noted as a status change notes
    it) or valid."""
    from models import Certificate, Customer, db
    from services import clock, status
    now = clock.now()
    with db.atomic():
        record = Certificate.create(
            serial=format(serial, "040x"), customer=Customer.get(Customer.code == "P0000001"),
            cert_type="personal-general", status="revoked" if revoked else "valid",
            subject="CN=changed", not_before=now - dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=365), der=b"", key_generated_here=True,
            revoked_at=now if revoked else None,
            revocation_reason="superseded" if revoked else None, status_changed_at=now,
            crl_partition=partition, created_at=now)
        if revoked:
            status.note_change(record)
    return record


def revocation_times(args, partition: int, serial: int) -> list[float]:
    """Seconds each of --repeat revocations took, of valid certificates in `partition`."""
    from services import ca_store, status
    times = []
    for n in range(args.repeat):
        record = certificate_row(partition, serial + PARTITIONS * n, revoked=False)
        start = time.perf_counter()
        status.revoke_certificate(record, "superseded", actor="system:bench")
        times.append(time.perf_counter() - start)
    # The OCSP signatures' count, now: at exit the instance folder is gone.
    ca_store.write_signature_counts()
    return times


def partition_figures(args, ossl: Path, issuing_cert, entries: list[RevokedEntry]) -> tuple:
    """(partition, its entries, publish time, openssl time, full CRL bytes, partition bytes
    mean, partition bytes max, full publish time with every partition current, revocation
    times) after one change in the partition of entries[0]."""
    from services import status
    partition = entries[0].serial % PARTITIONS
    fresh = entries[0].serial + PARTITIONS * len(entries)          # new serials there
    certificate_row(partition, fresh, revoked=True)
    t_partition = best(args.repeat, lambda: status.publish_crl(partition))
    sizes = [len(bytes(status.publish_crl(n).der)) for n in range(PARTITIONS)]
    t_current = best(args.repeat, status.publish_crl)
    full = len(bytes(status.latest_crl().der))
    revocations = revocation_times(args, partition, fresh + PARTITIONS)
    status.publish_crl()              # the revocations' entries too, for the next size's check
    own = [e for e in entries if e.serial % PARTITIONS == partition]
    write_index(ossl / "index.txt", own, issuing_cert.not_valid_after_utc)
    (ossl / "crlnumber").write_text("07\n")
    t_openssl = best(args.repeat, lambda: openssl_gencrl(ossl))
    return (partition, status.latest_crl(partition).entries, t_partition, t_openssl, full,
            sum(sizes) // len(sizes), max(sizes), t_current, revocations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-publish", action="store_true",
                        help="skip timing services.status.publish_crl")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        raise SystemExit("openssl not found")
    sizes = sorted(args.sizes)

    tmp = Path(tempfile.mkdtemp(prefix="certcenter-bench-crl-"))
    try:
        print(f"Setting up an instance in {tmp} …", flush=True)
        inst = make_instance(tmp / "instance")
        issuing_cert, issuing_key = inst.issuing_cert, inst.key("issuing")
        ossl = tmp / "openssl"
        ossl.mkdir()
        (ossl / "openssl.cnf").write_text(OPENSSL_CNF)
        (ossl / "issuing.pem").write_bytes(issuing_cert.public_bytes(serialization.Encoding.PEM))
        inst.write_plain_key("issuing", ossl / "issuing.key")
        all_entries = make_entries(sizes[-1])

        app = None
        if not args.no_publish:
            flask(inst.folder, "demo", "seed")
            os.environ.update(instance_env(inst.folder))
            from app import create_app
            app = create_app()

        now = dt.datetime.now(dt.UTC)
        rows, partitions, filled = [], [], 0
        for size in sizes:
            entries = all_entries[:size]
            print(f"{size:,} entries …", flush=True)

            def ours(entries=entries):
                return build_crl_der(issuing_cert, issuing_key, entries, 7, now,
                                     now + dt.timedelta(days=1))
            t_ours = best(args.repeat, ours)
            der = ours()

            t_publish = None
            if app is not None:
                from models import db
                from services import status
                with app.app_context(), db.connection_context():
                    fill_database(app, all_entries[:size], filled)
                    filled = size
                    t_publish = best(args.repeat, status.publish_crl)
                    published = status.latest_crl()
                    # + each earlier size's change and revocations
                    if published.entries != size + len(partitions) * (1 + args.repeat):
                        raise SystemExit(f"publish_crl listed {published.entries}, not {size}")
                    partitions.append(partition_figures(args, ossl, issuing_cert, entries))

            write_index(ossl / "index.txt", entries, issuing_cert.not_valid_after_utc)
            (ossl / "crlnumber").write_text("07\n")
            t_openssl = best(args.repeat, lambda: openssl_gencrl(ossl))
            theirs = x509.load_pem_x509_crl(openssl_gencrl(ossl))
            check = same_content(x509.load_der_x509_crl(der), theirs)
            rows.append((size, t_ours, t_publish, t_openssl, len(der),
                         len(theirs.public_bytes(serialization.Encoding.DER)), check))

        print()
        print(f"CRL generation, RSA-{issuing_key.key_size} issuing key, SHA-256, best of "
              f"{args.repeat} (seconds); {os.cpu_count()} CPUs")
        header = (f"{'entries':>8}{'certcenter':>12}{'publish':>10}{'openssl':>10}"
                  f"{'ratio':>8}{'publish/openssl':>17}{'DER bytes (ours/openssl)':>27}  check")
        print(header)
        for size, t_ours, t_publish, t_openssl, n_ours, n_theirs, check in rows:
            publish = f"{t_publish:.3f}" if t_publish is not None else "-"
            publish_ratio = f"{t_publish / t_openssl:.2f}" if t_publish is not None else "-"
            print(f"{size:>8,}{t_ours:>12.3f}{publish:>10}{t_openssl:>10.3f}"
                  f"{t_ours / t_openssl:>8.2f}{publish_ratio:>17}"
                  f"{f'{n_ours:,} / {n_theirs:,}':>27}  {check}")
        print("ratio = certcenter (build_crl_der) / openssl ca -gencrl; "
              "publish/openssl = services.status.publish_crl() / openssl ca -gencrl")
        if partitions:
            print()
            print("Full publish, services.status.publish_crl(), best of "
                  f"{args.repeat} (seconds): from the rows (no partition CRL current) and with "
                  "every partition's CRL current")
            print(f"{'entries':>8}{'from rows':>11}{'current':>10}{'openssl':>10}"
                  f"{'rows/openssl':>14}{'current/openssl':>17}")
            for (size, _ours, t_publish, t_openssl, *_rest), figures in zip(
                    rows, partitions, strict=True):
                t_current = figures[7]
                print(f"{size:>8,}{t_publish:>11.3f}{t_current:>10.3f}{t_openssl:>10.3f}"
                      f"{t_publish / t_openssl:>14.2f}{t_current / t_openssl:>17.2f}")
            print()
            print(f"Partitioned CRLs ({PARTITIONS} partitions): one partition published after "
                  f"one change, best of {args.repeat} (seconds); a revocation in that "
                  f"partition, as a request makes it ({args.repeat} runs, milliseconds); bytes "
                  "a relying party downloads per check")
            print(f"{'entries':>8}{'partition':>11}{'its entries':>13}{'publish':>10}"
                  f"{'openssl':>10}{'ratio':>8}{'revoke ms':>16}{'full CRL':>12}"
                  f"{'partition mean/max':>22}{'full/mean':>11}")
            for size, figures in zip(sizes, partitions, strict=True):
                n, own, t_part, t_openssl, full, mean, largest, _current, revocations = figures
                revoke = " ".join(f"{t * 1000:.0f}" for t in revocations)
                print(f"{size:>8,}{n:>11}{own:>13,}{t_part:>10.3f}{t_openssl:>10.3f}"
                      f"{t_part / t_openssl:>8.2f}{revoke:>16}{full:>12,}"
                      f"{f'{mean:,} / {largest:,}':>22}{full / mean:>11.1f}")
            print("ratio = services.status.publish_crl(partition) / openssl ca -gencrl over "
                  "the partition's entries; revoke = services.status.revoke_certificate, each")
    finally:
        clean_up(tmp, args.keep)


if __name__ == "__main__":
    main()
