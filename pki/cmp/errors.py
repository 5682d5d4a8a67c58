"""The error every CMP function raises: a PkiError that also carries the PKIFailureInfo bits
(RFC 4210 5.2.3) the `error` or rejecting reply must name."""

from pyasn1_alt_modules import rfc9810

from ..errors import PkiError

# PKIFailureInfo's bit names in bit order (RFC 4210 5.2.3, RFC 9810 5.2.3): badAlg, badMessageCheck, …
FAILURE_BITS = tuple(name for name, _ in sorted(rfc9810.PKIFailureInfo.namedValues.items(), key=lambda item: item[1]))

class CmpError(PkiError):
    """A CMP message refused: `code` is a stable id ("cmp_bad_mac", …), `fail_info` the set of
    PKIFailureInfo bit names for the reply, `detail` English context for logs.

    `header` is the request's parsed header when the refusal came after it was read (so the
    `error` reply can echo the transaction id and nonce), else None."""

    def __init__(self, code: str, fail_info: str, detail=None, header=None):
        if fail_info not in FAILURE_BITS:
            raise ValueError(f"unknown PKIFailureInfo bit {fail_info!r}")
        super().__init__(code, detail)
        self.fail_info = frozenset({fail_info})
        self.header = header
