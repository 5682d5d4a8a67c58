"""Domain errors: a stable message id the view turns into a translated sentence."""


class DomainError(Exception):
    """A rule said no. `code` names the message; `field` names the form field it is about;
    `params` fill the message; `status` is the HTTP status a view should answer with."""

    def __init__(self, code: str, field: str | None = None, status: int = 400, **params):
        super().__init__(code)
        self.code = code
        self.field = field
        self.status = status
        self.params = params
