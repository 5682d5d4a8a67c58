"""The second-factor step, wherever one stands: signing in (views.verify) and before a
sensitive change (changing the authenticator app or automatic renewal in views.mycerts;
revoking, suspending or resuming in views.certstatus). One page (second_factor.html): the
code from the authenticator app, or from a text message, with a button to get a text message
instead or a new code. Every code is checked by the one service function,
services.verification.check_second_factor, under the same attempt limits and with the same
messages; what the step protects runs only once the code is accepted.

A use of the step names the flow answers its method is kept in, the button that ends it, and
the endpoints that take the code and send a text message; its views keep their own routes,
decide whether the flow is under way, and say what happens next."""
from collections.abc import Callable

from flask import Response, url_for

from services import verification
from services.errors import DomainError
from views import FlowAnswers, error_list, go, page
from views.forms import CodeForm


class SecondFactorStep:
    def __init__(self, key: str, button: str, code_endpoint: str, sms_endpoint: str):
        self.answers = FlowAnswers(key)
        self.button = button
        self.code_endpoint = code_endpoint
        self.sms_endpoint = sms_endpoint

    def method(self) -> str | None:
        """"totp" or "sms" once the step is asked for in this flow; None before."""
        return self.answers.get().get("method")

    def ask(self, customer, method: str | None = None) -> str:
        """Start the step: by the method the customer chose, else by their authenticator app
        if they have one, else by a text message sent now. Raises what the service raises
        (nothing is kept then), for the page that asked to show."""
        resent = method == "sms" and self.method() == "sms"
        method = verification.ask_second_factor(customer, method)
        self.answers.save(method=method, resent=resent)
        return method

    def code(self, customer, then: Callable[[], Response], **values) -> Response:
        """The code page (`values` are its endpoints' URL arguments); a posted code is checked,
        and when it is right `then` does what the step protects and answers. A DomainError
        from either is shown on the code page."""
        form = CodeForm()
        if form.validate_on_submit():
            try:
                verification.check_second_factor(customer, self.method(), form.code.data)
                return then()
            except DomainError as error:
                return self.page(customer, form, error, **values)
        return self.page(customer, form, **values)

    def send_sms(self, customer, **values) -> Response:
        """A text message instead of the authenticator app, or a new code; then the code page
        again (which says when the code is a new one)."""
        try:
            self.ask(customer, "sms")
        except DomainError as error:
            return self.page(customer, CodeForm(), error, **values)
        return go(self.code_endpoint, **values)

    def page(self, customer, form, error: DomainError | None = None, **values) -> Response:
        resent = self.answers.get().get("resent", False)
        if resent:
            self.answers.save(resent=False)          # said once
        return page("second_factor.html", status=error.status if error else None,
                    errors=error_list(error, "code") if error else None, form=form,
                    method=self.method(), phone=customer.phone, button=self.button,
                    resent=resent, code_url=url_for(self.code_endpoint, **values),
                    sms_url=url_for(self.sms_endpoint, **values))
