"""Where one worker's time goes on a pre-signed OCSP answer: the whole WSGI request, in
process, through the lean path (views/ocsp_stored.py) and, for comparison, through Flask,
with a per-step breakdown and a cProfile listing of the lean path.

Run by hand from the repository root (never in CI, never by pytest):

    .venv/bin/python bench/profile_ocsp.py [--requests 3000] [--top 25]

Same setup as bench/ocsp.py (temporary instance, a valid certificate, a SHA-1 CertID request
without nonce), no network and no server: each request is one call of the Flask WSGI app with
a minimal environ, so the figures are the application's own CPU time per request, without
gunicorn's or the kernel's share.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import flask, instance_env, issue, make_instance
from ocsp import build_request


def per_call(function, n: int) -> float:
    """Microseconds per call, best of 3 rounds of n calls."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            function()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def by_library(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own (tottime) seconds grouped by where the code lives."""
    root = str(Path(__file__).resolve().parent.parent) + os.sep
    groups: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        if "sqlite3" in name:
            group = "sqlite3 (connect, execute, close)"
        elif "peewee" in filename:
            group = "peewee"
        elif f"{os.sep}werkzeug{os.sep}" in filename:
            group = "werkzeug"
        elif f"{os.sep}flask" in filename:
            group = "flask + flask extensions"
        elif filename.startswith(root) and f"{os.sep}bench{os.sep}" not in filename:
            group = "certcenter (app, views, services, pki)"
        elif "cryptography" in filename or "load_der" in name:
            group = "cryptography"
        else:
            group = "other (stdlib, builtins, harness)"
        groups[group] = groups.get(group, 0.0) + tottime
    return sorted(groups.items(), key=lambda item: -item[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", type=Path, help="also write the raw cProfile stats here "
                        "(for snakeviz, or pstats)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="certcenter-bench-prof-"))
    try:
        inst = make_instance(tmp / "instance")
        flask(inst.folder, "demo", "seed")
        cert = issue(inst, tmp / "cert")
        der = build_request(cert, inst.issuing_cert)
        os.environ.update(instance_env(inst.folder))

        from app import create_app
        from models import db
        from pki import ocsp as pki_ocsp
        from services import ca_store, status
        app = create_app()

        def environ() -> dict:
            return {"REQUEST_METHOD": "POST", "PATH_INFO": "/ocsp", "SCRIPT_NAME": "",
                    "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                    "SERVER_PROTOCOL": "HTTP/1.0", "REMOTE_ADDR": "127.0.0.1",
                    "HTTP_HOST": "127.0.0.1", "CONTENT_TYPE": "application/ocsp-request",
                    "CONTENT_LENGTH": str(len(der)), "wsgi.input": io.BytesIO(der),
                    "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
                    "wsgi.multithread": False, "wsgi.multiprocess": True,
                    "wsgi.run_once": False, "wsgi.version": (1, 0)}

        statuses = []

        def call(wsgi_app):
            def request():
                body = wsgi_app(environ(), lambda s, h, e=None: statuses.append(s))
                b"".join(body)
                getattr(body, "close", lambda: None)()
            return request

        request = call(app)
        through_flask = call(app.wsgi_app.app)       # the Flask app inside the lean path
        request()
        assert statuses[-1].startswith("200"), statuses[-1]

        n = args.requests
        question = pki_ocsp.parse_request(der)
        steps = {"whole WSGI request (lean path)": per_call(request, n)}
        with db.connection_context():
            steps["  pki.ocsp.parse_request"] = per_call(lambda: pki_ocsp.parse_request(der), n)
            steps["  status.stored_ocsp_answer (SELECT)"] = per_call(
                lambda: status.stored_ocsp_answer(question), n)
            steps["    ca_store.ocsp_signer_id (1 stat)"] = per_call(ca_store.ocsp_signer_id, n)
        steps["the same answer through Flask (view)"] = per_call(through_flask, n)

        print(f"Per pre-signed OCSP answer, one process, best of 3 x {n} (microseconds):")
        for name, micros in steps.items():
            print(f"  {name:<48}{micros:>9.0f}")
        whole = steps["whole WSGI request (lean path)"]
        print(f"  => at most {1e6 / whole:,.0f} requests/s per worker before any HTTP server "
              f"or TCP cost")

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            request()
        profiler.disable()
        if args.dump:
            profiler.dump_stats(args.dump)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        groups = by_library(stats)
        total = sum(seconds for _group, seconds in groups)
        print(f"\ncProfile of {n} requests, own time by library ({total:.2f} s profiled):")
        for group, seconds in groups:
            print(f"  {group:<42}{seconds:>7.3f} s {seconds / total * 100:>5.1f} %")
        print()
        stats.strip_dirs()
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
