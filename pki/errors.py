"""The one exception type of the pki package, carrying a stable code for the caller to translate."""


class PkiError(ValueError):
    """Bad input to a pki function.

    `code` is a short stable id (e.g. "csr_weak_key") that services map to a message;
    `detail` is optional English context for logs and tests, never shown as the user message.
    """

    def __init__(self, code: str, detail=None):
        self.code = code
        self.detail = detail
        super().__init__(code if detail is None else f"{code}: {detail}")
