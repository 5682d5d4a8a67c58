"""The one exception type of the pki package, carrying a stable code for the caller to translate,
and the first check of every reader of untrusted bytes."""


class PkiError(ValueError):
    """Bad input to a pki function.

    `code` is a short stable id (e.g. "csr_weak_key") that services map to a message;
    `detail` is optional English context for logs and tests, never shown as the user message.
    """

    def __init__(self, code: str, detail=None):
        self.code = code
        self.detail = detail
        super().__init__(code if detail is None else f"{code}: {detail}")


def bounded_bytes(data, max_bytes: int, refuse) -> bytes:
    """`data` as bytes when it is bytes of 1 to `max_bytes`; else the exception `refuse(detail)`
    makes, raised before any parser sees it."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise refuse("request is not bytes")
    data = bytes(data)
    if not data:
        raise refuse("empty request")
    if len(data) > max_bytes:
        raise refuse(f"request of {len(data)} bytes is over {max_bytes}")
    return data
