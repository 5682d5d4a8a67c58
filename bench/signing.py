"""Signing time per certificate, CRL and OCSP response, on each signer backend: the encrypted
PKCS#8 file and a PKCS#11 token (SoftHSM2, in a temporary folder). Run by hand:

    .venv/bin/python bench/signing.py [--repeat 200]

  certificate  Signer.certificate(tbs): the path issuance takes after lint (sign the linted
               TBSCertificate, assemble, check the signature).
  crl          pki.crl.build_crl with 1,000 entries, signed.
  ocsp         pki.ocsp.build_response for one certificate, signed by the delegated responder.
  openssl      `openssl speed rsa2048` in the same run: one bare RSA-2048 signature, the floor
               every row above stands on. Ratios are openssl's time over ours (1.0 = as fast).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def best_per_call(repeat: int, job) -> float:
    """Median seconds per call over `repeat` calls (after one warm-up)."""
    job()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def openssl_sign_seconds() -> float:
    run = subprocess.run(["openssl", "speed", "-seconds", "2", "rsa2048"], capture_output=True,
                         text=True, check=True)
    line = next(x for x in run.stdout.splitlines() if re.match(r"\s*rsa\s+2048", x))
    return float(line.split()[3].rstrip("s"))    # "rsa 2048 bits 0.000299s 0.000010s sign/s …"


def softhsm_token(folder: Path):
    from pki.signer import Pkcs11Token
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench",
                    "--so-pin", "5678", "--pin", "1234"], check=True, capture_output=True)
    return Pkcs11Token(MODULE, "bench", "1234")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    from pki import ca
    from pki.signer import FileSigner

    now = dt.datetime.now(dt.UTC)
    root_cert, root = ca.create_root("Bench", now)
    with tempfile.TemporaryDirectory() as tmp:
        backends = {"file": FileSigner.generate(),
                    "pkcs11": softhsm_token(Path(tmp)).generate("bench")}
        floor = openssl_sign_seconds()
        print(f"openssl speed rsa2048: {floor * 1e3:.3f} ms per signature\n")
        print(f"{'backend':8} {'what':12} {'ms':>8} {'openssl/ours':>13}")
        for name, signer in backends.items():
            for what, job in jobs(signer, root_cert, root, now).items():
                seconds = best_per_call(args.repeat, job)
                print(f"{name:8} {what:12} {seconds * 1e3:8.3f} {floor / seconds:13.2f}")


def jobs(signer, root_cert, root, now) -> dict:
    """What each backend is timed on, for an issuing CA (and responder) holding `signer`."""
    from cryptography.hazmat.primitives import hashes

    from pki import ca, crl, lint, ocsp, profile, serials
    from pki.signer import FileSigner

    issuing, _ = ca.create_issuing("Bench", root_cert, root, profile.DEFAULT_POLICY_ARC, now,
                                   public_key=signer.public_key())
    responder, _ = ca.create_signer("ocsp", "Bench", issuing, signer, now,
                                         public_key=signer.public_key())
    request = profile.EndEntityRequest(
        cert_type=profile.CERT_TYPES["personal-banking"], holder_name="홍길동",
        unique_digits="0012345678901234", bank_code="BENCH", ca_org="Bench",
        public_key=FileSigner.generate().public_key(), not_before=now,
        not_after=profile.validity_end(now), serial=serials.random_serial(),
        policy_arc=profile.DEFAULT_POLICY_ARC, urls=profile.urls_for("http://bench.example/"),
        identify_data=None)
    tbs = lint.require_clean(profile.end_entity_builder(request, issuing))
    entries = [crl.RevokedEntry(serials.random_serial(), now, "key-compromise")
               for _ in range(1000)]
    name_hash, key_hash = ocsp.issuer_hashes(issuing, hashes.SHA1())
    question = ocsp.OcspQuestion(name_hash, key_hash, request.serial, hashes.SHA1(), None)
    return {
        "certificate": lambda: signer.certificate(tbs),
        "crl": lambda: crl.build_crl(issuing, signer, entries, 1, now, now + dt.timedelta(days=1)),
        "ocsp": lambda: ocsp.build_response(question, ocsp.CertStatus("good"), responder, signer,
                                            now, now + dt.timedelta(hours=12)),
    }

if __name__ == "__main__":
    main()
