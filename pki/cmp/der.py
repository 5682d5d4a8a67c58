"""The exact bytes a CMP client protected, cut from its message rather than re-encoded.

pyasn1 returns decoded values, not where they came from. The MAC or signature of a PKIMessage
covers SEQUENCE { header, body } (RFC 4210 5.1.3) and a signature proof of possession covers the
CertRequest (RFC 4211 4.1), so those bytes are sliced from what arrived: a client that encoded
something unusually still gets its own bytes checked. Definite lengths only, as DER requires.
"""


def _header(data: bytes, at: int) -> tuple[int, int]:
    """(offset of the content, its length) of the TLV starting at `at`."""
    pos = at + 1
    if data[at] & 0x1F == 0x1F:                       # high tag number: base-128 octets follow
        while data[pos] & 0x80:
            pos += 1
        pos += 1
    first = data[pos]
    pos += 1
    if first < 0x80:
        return pos, first
    count = first & 0x7F
    if count == 0 or count > 4:                       # indefinite (BER) or absurdly long
        raise ValueError("not a DER length")
    length = int.from_bytes(data[pos:pos + count], "big")
    return pos + count, length


def elements(content: bytes) -> list[bytes]:
    """The whole TLVs (tag, length and value) that make up `content`, in order."""
    found, at = [], 0
    try:
        while at < len(content):
            start, length = _header(content, at)
            end = start + length
            if end > len(content):
                raise ValueError("a length runs past the end")
            found.append(content[at:end])
            at = end
    except IndexError:
        raise ValueError("truncated TLV") from None
    return found


def value(tlv: bytes) -> bytes:
    """The value octets of `tlv`, which must be exactly one whole TLV."""
    if len(elements(tlv)) != 1:
        raise ValueError("not exactly one TLV")
    start, _ = _header(tlv, 0)
    return tlv[start:]
