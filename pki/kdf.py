"""Password key derivations as certificate files ask for them, priced before any of them runs.

A file chooses its own iteration counts, salts and key lengths, so an upload chooses how much CPU
opening it costs. Readers add every derivation a file needs to a Budget first; one over a cap
raises PkiError("kdf_over_cap") before the first derivation, whatever its algorithm.
"""

import hashlib

from .errors import PkiError

# Real files use 2048 to 600,000; one derivation at the cap costs about a second of one core.
MAX_ITERATIONS = 1_000_000
MAX_SALT_BYTES = 64
MAX_KEY_BYTES = 64  # HMAC-SHA512's key, the longest any scheme read here needs
# Our own .p12 needs 2 x 600,000 plus its MAC; hundreds of contents at the cap must not add up.
MAX_TOTAL_ITERATIONS = 2_500_000


class Budget:
    """The derivations one file needs: each checked against the caps, all against the total."""

    def __init__(self, damaged: str):
        self.damaged = damaged  # the error code for a count no writer produces (zero, negative)
        self.total = 0

    def charge(self, iterations: int, salt_bytes: int, key_bytes: int, times: int = 1) -> None:
        if iterations < 1:
            raise PkiError(self.damaged, f"iteration count {iterations}")
        if iterations > MAX_ITERATIONS:
            raise PkiError("kdf_over_cap", f"iteration count {iterations}")
        if salt_bytes > MAX_SALT_BYTES:
            raise PkiError("kdf_over_cap", f"salt of {salt_bytes} bytes")
        if key_bytes > MAX_KEY_BYTES:
            raise PkiError("kdf_over_cap", f"key of {key_bytes} bytes")
        self.total += iterations * times
        if self.total > MAX_TOTAL_ITERATIONS:
            raise PkiError("kdf_over_cap", f"{self.total} iterations in all")


def pkcs12_kdf(hash_name: str, password: bytes, salt: bytes, iterations: int, purpose: int, size: int) -> bytes:
    """The PKCS#12 key derivation (RFC 7292 appendix B.2); purpose 1 is a key, 2 an IV, 3 a MAC key."""
    new = getattr(hashlib, hash_name)
    u, v = new().digest_size, new().block_size

    def fill(b: bytes) -> bytes:  # b repeated to the next whole number of v-byte blocks
        n = v * -(-len(b) // v)
        return (b * -(-n // len(b)))[:n] if b else b""

    d = bytes([purpose]) * v
    i = bytearray(fill(salt) + fill(password))
    out = b""
    while len(out) < size:
        a = new(d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = new(a).digest()
        out += a
        b = int.from_bytes((a * (-(-v // u)))[:v], "big")
        for j in range(0, len(i), v):
            block = (int.from_bytes(i[j:j + v], "big") + b + 1) % (1 << (8 * v))
            i[j:j + v] = block.to_bytes(v, "big")
    return out[:size]
