"""The NPKI test vector that ships in the pypinksign package (requirements-dev-nodeps.txt).

A yessign test certificate (expired 2020-03-25), its signPri.key (seedCBCWithSHA1) and the same
pair as cert.pfx (3DES/SHA-1), all under one password. They are base64 strings in pypinksign's
own test module, read here with ast rather than imported: importing it runs its test imports.
"""
import ast
import base64
import importlib.util
import tempfile
from functools import cache
from pathlib import Path

# File name in the vector folder -> the TEST_CERT entry holding it (base64; the password as bytes).
_FILES = {
    "signCert.der": "signCert",
    "signPri.key": "signPri",
    "cert.pfx": "pfx",
    "expected-plain-pkcs8.der": "plainSignPriFullB64",
    "password.txt": "signPw",
}


@cache
def entries() -> dict:
    """pypinksign's TEST_CERT entries that are plain constants."""
    spec = importlib.util.find_spec("pypinksign")
    assert spec is not None, "pypinksign is missing: make install-dev"
    source = Path(spec.submodule_search_locations[0], "test_pinkSign.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "TEST_CERT":
            return {k.value: v.value for k, v in zip(node.value.keys, node.value.values, strict=True)
                    if isinstance(v, ast.Constant)}
    raise AssertionError("TEST_CERT not found in pypinksign's test module")


@cache
def folder() -> Path:
    """A folder holding pypinksign/{signCert.der, signPri.key, cert.pfx, expected-plain-pkcs8.der,
    password.txt}, written once per test run."""
    base = Path(tempfile.mkdtemp(prefix="npki-vector-"))
    target = base / "pypinksign"
    target.mkdir()
    for name, entry in _FILES.items():
        value = entries()[entry]
        (target / name).write_bytes(value + b"\n" if name.endswith(".txt") else base64.b64decode(value))
    return base
