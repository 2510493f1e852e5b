"""The payment gateway: checkout's only door to Stripe.

One interface, one real implementation (Stripe's SDK, pointed at localstripe
offline). Card numbers never pass through here: the browser confirms the
SetupIntent with Stripe.js, and we read back only ids, brand, last4 and expiry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import requests
import stripe
from urllib3.exceptions import NewConnectionError

from services.checkout.adapters.stripe_metrics import timed_stripe_call

log = logging.getLogger(__name__)


class PaymentProviderUnavailable(Exception):
    """Stripe could not be reached or failed on its side.

    `maybe_applied` is False only when the request provably never reached
    Stripe (the connection was refused or timed out while connecting). A read
    timeout or a 5xx may hide a charge that happened: the caller must not
    forget such a request, but repeat it with the same idempotency key.
    """

    def __init__(self, reason: str, *, maybe_applied: bool = True) -> None:
        super().__init__(reason)
        self.maybe_applied = maybe_applied


class PaymentRejected(Exception):
    """Stripe refused the request as invalid for this object (not a card decline)."""


class PaymentObjectMissing(PaymentRejected):
    """Stripe has no object with an id we sent ("No such customer", "No such
    payment_method", a 404): it was deleted, or a test-mode Stripe forgot it."""


@dataclass(frozen=True)
class CardDetails:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class SetupIntentResult:
    id: str
    status: str  # succeeded, requires_action, requires_payment_method, canceled, ...
    customer_id: str | None
    client_secret: str
    card: CardDetails | None


@dataclass(frozen=True)
class ChargeResult:
    status: str  # succeeded, requires_action, declined, processing
    payment_intent_id: str | None
    client_secret: str | None = None
    decline_code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class CustomerDetails:
    email: str
    name: str
    country: str
    line1: str
    line2: str | None
    city: str
    state: str | None
    postal_code: str

    def as_params(self) -> dict[str, Any]:
        address = {"country": self.country, "line1": self.line1, "city": self.city,
                   "postal_code": self.postal_code}
        if self.line2:
            address["line2"] = self.line2
        if self.state:
            address["state"] = self.state
        return {"email": self.email, "name": self.name, "address": address}


class PaymentGateway(Protocol):
    def upsert_customer(self, customer_id: str | None, details: CustomerDetails,
                        metadata: dict[str, str], idempotency_key: str) -> str: ...
    def create_setup_intent(self, customer_id: str, metadata: dict[str, str]) -> SetupIntentResult: ...
    def get_setup_intent(self, setup_intent_id: str) -> SetupIntentResult: ...
    def charge(self, *, customer_id: str, payment_method_id: str, amount: int, currency: str,
               idempotency_key: str, description: str, metadata: dict[str, str]) -> ChargeResult: ...
    def get_payment_intent(self, payment_intent_id: str) -> ChargeResult: ...
    def refund(self, payment_intent_id: str, idempotency_key: str, amount: int | None = None) -> str: ...
    def detach_payment_method(self, payment_method_id: str) -> None: ...
    def cancel(self, payment_intent_id: str) -> None: ...
    def construct_event(self, payload: bytes, signature: str | None) -> dict[str, Any]: ...
    def ping(self) -> None: ...


class StripeGateway:
    def __init__(self, api_key: str, api_base: str | None, webhook_secret: str,
                 timeout: float = 10.0) -> None:
        base = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(
            api_key, base_addresses=base,  # type: ignore[arg-type]
            http_client=stripe.RequestsClient(timeout=timeout), max_network_retries=1,
        )
        self._webhook_secret = webhook_secret

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        operation = f"{type(getattr(fn, '__self__', fn)).__name__.removesuffix('Service')}.{fn.__name__}"
        try:
            return timed_stripe_call(operation, lambda: fn(*args, **kwargs))
        except stripe.APIConnectionError as exc:
            raise PaymentProviderUnavailable(
                "stripe unreachable", maybe_applied=not _never_sent(exc)) from exc
        except stripe.RateLimitError as exc:  # refused before doing anything
            raise PaymentProviderUnavailable("stripe rate limit", maybe_applied=False) from exc
        except stripe.IdempotencyError as exc:
            # Same key, other parameters: a bug of ours, never a reason to charge again.
            log.error("stripe idempotency conflict: %s", exc.user_message)
            raise PaymentRejected("idempotency conflict at the payment provider") from exc
        except stripe.APIError as exc:  # Stripe's 5xx
            raise PaymentProviderUnavailable(f"stripe api error {exc.http_status}") from exc
        except stripe.AuthenticationError as exc:
            log.error("stripe rejected our API key")
            raise PaymentProviderUnavailable("stripe authentication failed",
                                             maybe_applied=False) from exc
        except stripe.InvalidRequestError as exc:
            reason = exc.user_message or str(exc)
            if exc.http_status == 404 or exc.code == "resource_missing":
                raise PaymentObjectMissing(f"{operation}: {reason}") from exc
            raise PaymentRejected(reason) from exc

    def upsert_customer(self, customer_id: str | None, details: CustomerDetails,
                        metadata: dict[str, str], idempotency_key: str) -> str:
        params = {**details.as_params(), "metadata": metadata}
        if customer_id:
            self._call(self._client.v1.customers.update, customer_id, params=params)
            return customer_id
        # The key makes two concurrent first setups share one customer at Stripe.
        customer = self._call(self._client.v1.customers.create, params=params,
                              options={"idempotency_key": idempotency_key})
        return str(customer.id)

    def create_setup_intent(self, customer_id: str, metadata: dict[str, str]) -> SetupIntentResult:
        intent = self._call(self._client.v1.setup_intents.create, params={
            "customer": customer_id, "usage": "off_session", "payment_method_types": ["card"],
            "metadata": metadata,
        })
        return SetupIntentResult(intent.id, intent.status, customer_id, intent.client_secret, None)

    def get_setup_intent(self, setup_intent_id: str) -> SetupIntentResult:
        intent = self._call(self._client.v1.setup_intents.retrieve, setup_intent_id)
        card = None
        pm_id = _id_of(getattr(intent, "payment_method", None))
        if intent.status == "succeeded" and pm_id:
            pm = self._call(self._client.v1.payment_methods.retrieve, pm_id)
            c = pm.card
            card = CardDetails(pm.id, str(c.brand), str(c.last4), int(c.exp_month), int(c.exp_year))
        return SetupIntentResult(intent.id, intent.status, _id_of(getattr(intent, "customer", None)),
                                 intent.client_secret, card)

    def charge(self, *, customer_id: str, payment_method_id: str, amount: int, currency: str,
               idempotency_key: str, description: str, metadata: dict[str, str]) -> ChargeResult:
        params = {
            "amount": amount, "currency": currency, "customer": customer_id,
            "payment_method": payment_method_id, "confirm": True, "off_session": True,
            # localstripe has no `description`; the metadata carries it for both.
            "metadata": {**metadata, "description": description},
        }
        try:
            intent = self._call(self._client.v1.payment_intents.create, params=params,
                                options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            error = exc.error
            intent_id = _id_of(getattr(error, "payment_intent", None)) if error else None
            charge_id = _id_of(getattr(error, "charge", None)) if error else None
            if intent_id is None and charge_id:
                # localstripe names only the failed charge; the charge names its intent,
                # so a declined order still records the attempt it made. A failed look-up
                # must not turn a plain decline into something else.
                try:
                    intent_id = _id_of(self._call(self._client.v1.charges.retrieve, charge_id).payment_intent)
                except (PaymentProviderUnavailable, PaymentRejected):
                    intent_id = None
            code = (getattr(error, "decline_code", None) or exc.code or "card_declined")
            if code == "authentication_required" and intent_id:
                # Real Stripe refuses off-session 3DS with an error that carries the intent.
                intent = self._call(self._client.v1.payment_intents.retrieve, intent_id)
                return ChargeResult("requires_action", intent.id, intent.client_secret)
            return ChargeResult("declined", intent_id, None, str(code),
                                exc.user_message or "Your card was declined.")
        return _charge_result(intent)

    def get_payment_intent(self, payment_intent_id: str) -> ChargeResult:
        return _charge_result(self._call(self._client.v1.payment_intents.retrieve, payment_intent_id))

    def refund(self, payment_intent_id: str, idempotency_key: str, amount: int | None = None) -> str:
        """Give back `amount` cents of the intent's charge (all of it when None)."""
        params: dict[str, Any] = {"payment_intent": payment_intent_id}
        if amount is not None:
            params["amount"] = amount
        refund = self._call(self._client.v1.refunds.create, params=params,
                            options={"idempotency_key": idempotency_key})
        return str(refund.id)

    def detach_payment_method(self, payment_method_id: str) -> None:
        """The card leaves its customer at Stripe: it can never be charged again."""
        self._call(self._client.v1.payment_methods.detach, payment_method_id)

    def cancel(self, payment_intent_id: str) -> None:
        self._call(self._client.v1.payment_intents.cancel, payment_intent_id)

    def construct_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        event = stripe.Webhook.construct_event(payload, signature, self._webhook_secret, tolerance=300)
        return dict(event.to_dict())

    def ping(self) -> None:
        self._call(self._client.v1.customers.list, params={"limit": 1})


def _never_sent(exc: BaseException) -> bool:
    """True when the connection itself failed, so Stripe never saw the request."""
    cause: BaseException | None = exc.__cause__
    while cause is not None:
        if isinstance(cause, (requests.exceptions.ConnectTimeout, NewConnectionError)):
            return True
        if isinstance(cause, requests.exceptions.ConnectionError) and cause.args and \
                isinstance(getattr(cause.args[0], "reason", None), NewConnectionError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _id_of(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(getattr(value, "id", "")) or None


def _charge_result(intent: Any) -> ChargeResult:
    status = intent.status
    if status == "requires_payment_method":
        error = getattr(intent, "last_payment_error", None)
        code = getattr(error, "code", None) if error else None
        message = getattr(error, "message", None) if error else None
        return ChargeResult("declined", intent.id, None, code or "card_declined",
                            message or "Your card was declined.")
    if status in ("succeeded", "requires_action", "processing", "canceled"):
        return ChargeResult(status, intent.id, intent.client_secret)
    return ChargeResult(status, intent.id, intent.client_secret)
