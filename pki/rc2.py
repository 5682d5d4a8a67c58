"""RC2-CBC decryption (RFC 2268), for the certificates in legacy .p12 files.

`openssl pkcs12 -legacy` and Windows encrypt certificates with pbeWithSHAAnd40BitRC2-CBC, whose
40 effective key bits cryptography's RC2 (128-bit keys only) cannot express. Only decryption of a
few kilobytes is needed, so plain Python is fast enough.
"""

_PI = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad")


def _expand(key: bytes, effective_bits: int) -> list[int]:
    """The 64 16-bit subkeys (RFC 2268 section 2)."""
    t = len(key)
    lb = list(key) + [0] * (128 - t)
    for i in range(t, 128):
        lb[i] = _PI[(lb[i - 1] + lb[i - t]) & 0xFF]
    t8 = (effective_bits + 7) // 8
    tm = 0xFF % (1 << (8 + effective_bits - 8 * t8))
    lb[128 - t8] = _PI[lb[128 - t8] & tm]
    for i in range(127 - t8, -1, -1):
        lb[i] = _PI[lb[i + 1] ^ lb[i + t8]]
    return [lb[2 * i] | lb[2 * i + 1] << 8 for i in range(64)]


def _decrypt_block(k: list[int], block: bytes) -> bytes:
    r = [int.from_bytes(block[i:i + 2], "little") for i in range(0, 8, 2)]
    j = 63
    for round_ in range(16, 0, -1):
        for i in (3, 2, 1, 0):  # r-mixing (section 4.1), undone
            r[i] = ((r[i] >> (1, 2, 3, 5)[i]) | (r[i] << (16 - (1, 2, 3, 5)[i]))) & 0xFFFF
            r[i] = (r[i] - k[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & 0xFFFF
            j -= 1
        if round_ in (12, 6):  # r-mashing after the 5th and 11th undone rounds
            for i in (3, 2, 1, 0):
                r[i] = (r[i] - k[r[i - 1] & 63]) & 0xFFFF
    return b"".join(w.to_bytes(2, "little") for w in r)


def cbc_decrypt(key: bytes, effective_bits: int, iv: bytes, ciphertext: bytes) -> bytes:
    """The padded plaintext; `ciphertext` is a whole number of 8-byte blocks."""
    k = _expand(key, effective_bits)
    out, previous = bytearray(), iv
    for n in range(0, len(ciphertext), 8):
        block = ciphertext[n:n + 8]
        out += bytes(a ^ b for a, b in zip(_decrypt_block(k, block), previous, strict=True))
        previous = block
    return bytes(out)
