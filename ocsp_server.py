"""The OCSP responder in a server process of its own, for a reverse proxy to route /ocsp
and /ocsp/… to. It serves the same app as gunicorn (`app:create_app`, whose lean path
answers a question about one of our certificates from its stored answer, one SELECT per
request), under granian: HTTP is parsed and answered in Rust, where gunicorn's sync worker
spends most of an OCSP request's time in Python (bench/ocsp.py, bench/README.md).
Everything else the app does, it does here too, as under gunicorn: nonces, unknown serials,
other issuers and malformed requests reach Flask in the same process.

    .venv/bin/python -m ocsp_server [--host 127.0.0.1] [--port 5001] [--workers 2]

The instance, database and secrets come from the environment, as for gunicorn.
"""
import argparse

from granian import Granian
from granian.constants import HTTPModes, Interfaces

# Threads per worker that run the app. With one, every answer waits on a hand-off between
# granian's I/O thread and that one thread: half the rate of four (bench/README.md). The
# app keeps one database connection per thread (app.py), so four per worker.
APP_THREADS = 4


def server(host: str, port: int, workers: int) -> Granian:
    return Granian("app:create_app", factory=True, interface=Interfaces.WSGI, address=host,
                   port=port, workers=workers, blocking_threads=APP_THREADS,
                   http=HTTPModes.http1, websockets=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=2,
                        help="processes (default 2: one per core of the bench machine)")
    args = parser.parse_args(argv)
    server(args.host, args.port, args.workers).serve()


if __name__ == "__main__":
    main()
