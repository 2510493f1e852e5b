"""Checkout's tables. Only the checkout service writes them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from funnel.exposures import ExposureMixin
from funnel.telemetry import FunnelEventMixin
from messaging.inbox import InboxMixin
from persistence.db import BigIntPK, UTCDateTime
from services.checkout.domain.directory import GROUP_DESTROY, MEMBER_REMOVE
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.common.outbox import OutboxMixin
from services.common.sweeps import SweepFailureMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class FunnelEventRow(FunnelEventMixin, Base):
    pass


class ExposureRow(ExposureMixin, Base):
    pass


class SweepFailure(SweepFailureMixin, Base):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Namespace(Base):
    __tablename__ = "namespaces"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # "group" or "user"
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("namespaces.id"))
    plan: Mapped[str] = mapped_column(String(32), default="free")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    members: Mapped[list[Membership]] = relationship(back_populates="namespace")

    @property
    def is_top_level(self) -> bool:
        return self.parent_id is None


class Membership(Base):
    __tablename__ = "memberships"

    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # owner, maintainer, developer, reporter, guest
    billable: Mapped[bool] = mapped_column(Boolean, default=True)

    namespace: Mapped[Namespace] = relationship(back_populates="members")


class DirectoryGroup(Base):
    """What the platform said last about a group (its system hooks), whether
    `namespaces` has it yet or not: a subgroup heard of before its parent waits
    here until the parent comes. `changed_at` and `last_event` tell a late hook
    from a new one; a destroyed group keeps its row, so it never comes back."""

    __tablename__ = "directory_groups"

    group_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(255))  # the full path: "acme/backend"
    parent_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # group_create was heard: only it says where the group sits (a rename may come first).
    created: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the platform's time
    last_event: Mapped[str] = mapped_column(String(32))

    @property
    def destroyed(self) -> bool:
        return self.last_event == GROUP_DESTROY


class DirectoryMember(Base):
    """What the platform said last about one membership, whether its group is in
    `namespaces` yet or not. A removal keeps the row, so a late add is known as late."""

    __tablename__ = "directory_members"

    group_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    role: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_event: Mapped[str] = mapped_column(String(32))

    @property
    def removed(self) -> bool:
        return self.last_event == MEMBER_REMOVE


class BillingAccount(Base):
    __tablename__ = "billing_accounts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    company: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    country: Mapped[str] = mapped_column(String(2))
    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str] = mapped_column(String(20))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    payment_methods: Mapped[list[PaymentMethod]] = relationship(
        back_populates="account", order_by="PaymentMethod.id")

    @property
    def default_payment_method(self) -> PaymentMethod | None:
        return next((pm for pm in self.payment_methods if pm.is_default), None)

    @property
    def cards(self) -> list[PaymentMethod]:
        """The saved cards, without those removed."""
        return [pm for pm in self.payment_methods if pm.removed_at is None]


class PaymentMethod(Base):
    """A card saved at Stripe. Only Stripe's ids and display details are kept."""

    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    billing_account_id: Mapped[int] = mapped_column(ForeignKey("billing_accounts.id"), index=True)
    stripe_payment_method_id: Mapped[str] = mapped_column(String(64), unique=True)
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # "2026-12" once the owner was told this card expires that month.
    expiry_notice_for: Mapped[str | None] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Removed by its owner (and detached at Stripe); the row stays for the orders it paid.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    account: Mapped[BillingAccount] = relationship(back_populates="payment_methods")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # At most one purchase in flight per namespace, whatever idempotency key
        # each came with: two Owners clicking Buy can not both be charged.
        Index("uq_orders_open_per_namespace", "namespace_id", unique=True,
              sqlite_where=text("status IN ('pending', 'requires_action')"),
              postgresql_where=text("status IN ('pending', 'requires_action')")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    billing_account_id: Mapped[int] = mapped_column(ForeignKey("billing_accounts.id"), index=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), index=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    plan: Mapped[str] = mapped_column(String(32))
    seats: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount_total: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    catalog_version: Mapped[str] = mapped_column(String(32))
    discount_code: Mapped[str | None] = mapped_column(String(64))
    term_start: Mapped[date] = mapped_column(Date)
    term_end: Mapped[date] = mapped_column(Date)
    # An OrderStatus; which may follow which is services/checkout/domain/orders.py.
    status: Mapped[str] = mapped_column(String(20), index=True)
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    # Set for an upgrade: the active subscription this order moves to a higher plan.
    upgrades_subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", use_alter=True, name="fk_orders_upgrades_subscription_id"))
    upgrade_from_plan: Mapped[str | None] = mapped_column(String(32))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    refunded: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the card was charged (the total once a charge succeeded; 0 before)
    # and what was given back, in cents: a refund keeps the charge on record.
    amount_charged: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The subscription this order paid for: the one it created, or the one it upgraded.
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", use_alter=True, name="fk_orders_subscription_id"), index=True)
    traffic: Mapped[str] = mapped_column(String(16), default="real")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # purchase, upgrade or expansion (seats, an add-on or packs for what the namespace has)
    kind: Mapped[str] = mapped_column(String(16), default="purchase", server_default="purchase")
    # An expansion: the active subscription it was priced against (None: packs without one).
    expands_subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", use_alter=True, name="fk_orders_expands_subscription_id"))
    heading: Mapped[str | None] = mapped_column(String(300))  # what an expansion buys, in words
    # The next renewal's quote as an expansion's receipt states it (a statement, like a reminder's).
    renewal_quote: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        Index("uq_subscriptions_active_per_namespace", "namespace_id", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), index=True)
    billing_account_id: Mapped[int] = mapped_column(ForeignKey("billing_accounts.id"), index=True)
    plan: Mapped[str] = mapped_column(String(32))
    seats: Mapped[int] = mapped_column(Integer)
    term_start: Mapped[date] = mapped_column(Date)
    term_end: Mapped[date] = mapped_column(Date, index=True)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why automatic renewal is off (data/portal.toml's reasons); None while it is on.
    auto_renew_off_reason: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.ACTIVE)
    first_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    # Storage packs bought for this subscription: they end and renew with its term.
    storage_packs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    addons: Mapped[list[SubscriptionAddOn]] = relationship(
        back_populates="subscription", order_by="SubscriptionAddOn.sku")


class SubscriptionAddOn(Base):
    __tablename__ = "subscription_addons"
    __table_args__ = (UniqueConstraint("subscription_id", "sku"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    sku: Mapped[str] = mapped_column(String(32))
    seats: Mapped[int] = mapped_column(Integer)

    subscription: Mapped[Subscription] = relationship(back_populates="addons")


class PackPurchase(Base):
    """Packs an expansion bought: compute minutes (never expire, never renew) and
    storage (until `expires_on`; a subscription's storage follows its term instead)."""

    __tablename__ = "pack_purchases"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    sku: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)  # packs
    units: Mapped[int] = mapped_column(BigInteger)  # minutes or GiB
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    expires_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyRecord(Base):
    """The first response to a (user, Idempotency-Key) pair, replayed for 24 h."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    # in_progress; retry (the payment's fate is unknown: the same request must
    # come again and resume `order_id`); done (the response below is final)
    state: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StripeEvent(Base):
    """Webhook inbox: each Stripe event stored once, by its id."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(100))


class DiscountCampaign(Base):
    """An offer and its rules. `redeemed_count` is only ever raised by a
    conditional UPDATE in the transaction that completes the order."""

    __tablename__ = "discount_campaigns"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # shared (one code) or bulk (single-use codes)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    discount_type: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(Integer)
    applies_to: Mapped[list[str]] = mapped_column(JSON)
    first_term_only: Mapped[bool] = mapped_column(Boolean, default=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    redeemed_count: Mapped[int] = mapped_column(Integer, default=0)
    once_per_namespace: Mapped[bool] = mapped_column(Boolean, default=True)
    once_per_billing_account: Mapped[bool] = mapped_column(Boolean, default=False)
    new_customers_only: Mapped[bool] = mapped_column(Boolean, default=False)
    min_seats: Mapped[int | None] = mapped_column(Integer)
    max_seats: Mapped[int | None] = mapped_column(Integer)
    min_amount: Mapped[int | None] = mapped_column(BigInteger)
    card_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DiscountCode(Base):
    __tablename__ = "discount_codes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("discount_campaigns.id"), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # normalised (upper case)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)  # 1 for bulk codes
    redeemed_count: Mapped[int] = mapped_column(Integer, default=0)


class DiscountRedemption(Base):
    """One use of a code by an order. The nullable keys carry the namespace or
    billing account only when the campaign allows one use per namespace or per
    account, so the unique constraints enforce exactly those rules."""

    __tablename__ = "discount_redemptions"
    __table_args__ = (
        UniqueConstraint("campaign_id", "namespace_key"),
        UniqueConstraint("campaign_id", "account_key"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("discount_campaigns.id"), index=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("discount_codes.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    namespace_id: Mapped[int] = mapped_column(BigInteger, index=True)
    billing_account_id: Mapped[int] = mapped_column(BigInteger, index=True)
    namespace_key: Mapped[int | None] = mapped_column(BigInteger)
    account_key: Mapped[int | None] = mapped_column(BigInteger)
    discount_amount: Mapped[int] = mapped_column(BigInteger)
    order_total: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InboxEvent(InboxMixin, Base):
    pass


class NamespaceTrial(Base):
    """Checkout's copy of a namespace's trials, kept from the trials service's
    events (never read from its tables). `last_event_at` makes late or
    repeated deliveries harmless."""

    __tablename__ = "namespace_trials"
    __table_args__ = (UniqueConstraint("namespace_id", "kind"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    grants_plan: Mapped[str | None] = mapped_column(String(32))
    grants_addon: Mapped[str | None] = mapped_column(String(32))
    seats: Mapped[int | None] = mapped_column(Integer)
    seat_holder: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=0)  # the trial's change counter
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RenewalNotice(Base):
    """A renewal reminder checkout has announced (notifications sends it). The
    quote it stated is kept, so the renewal can say what changed since."""

    __tablename__ = "renewal_notices"
    __table_args__ = (UniqueConstraint("subscription_id", "renewal_date", "days_before"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    renewal_date: Mapped[date] = mapped_column(Date)
    days_before: Mapped[int] = mapped_column(Integer)
    quote: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Renewal(Base):
    """One renewal of one subscription's term: charged at most once, retried
    while dunning lasts. Unique per subscription and renewal date."""

    __tablename__ = "renewals"
    __table_args__ = (UniqueConstraint("subscription_id", "renewal_date"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    renewal_date: Mapped[date] = mapped_column(Date)
    # due -> succeeded | retrying -> ... -> failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_on: Mapped[date | None] = mapped_column(Date, index=True)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    quote: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    changes: Mapped[list[str] | None] = mapped_column(JSON)
    payment_intent_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SeatHolding(Base):
    """One member holding a billable seat in a namespace, from `took_at` until
    `left_at` (the platform's times; None: still). Written with the membership
    it follows (usecases/seats.py); seats in use and the max used in any window
    are read from these rows."""

    __tablename__ = "seat_holdings"
    __table_args__ = (
        # One open holding per member: a member holds at most one seat.
        Index("uq_seat_holdings_open", "namespace_id", "user_id", unique=True,
              sqlite_where=text("left_at IS NULL"), postgresql_where=text("left_at IS NULL")),
        Index("ix_seat_holdings_namespace_left", "namespace_id", "left_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(16))
    took_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NamespaceSeatSettings(Base):
    """A namespace's seat settings: Owners block seat overages; admins exclude
    it from quarterly reconciliation (it trues up at renewal instead)."""

    __tablename__ = "namespace_seat_settings"

    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), primary_key=True)
    block_overages: Mapped[bool] = mapped_column(Boolean, default=False)
    reconciliation_excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SeatSettingChange(Base):
    """The audit of every change to a namespace's seat settings: who, when, why."""

    __tablename__ = "seat_setting_changes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(BigInteger, index=True)
    setting: Mapped[str] = mapped_column(String(32))
    value: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SeatReconciliation(Base):
    """One quarter of one subscription's term, reconciled at most once (unique
    per subscription, term and quarter). due -> clear | excluded | noticed;
    noticed -> charged | covered (seats bought meanwhile) | superseded (the
    term renewed first) | retrying -> ... -> failed."""

    __tablename__ = "seat_reconciliations"
    __table_args__ = (UniqueConstraint("subscription_id", "term_start", "quarter"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    term_start: Mapped[date] = mapped_column(Date)
    quarter: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    max_seats_used: Mapped[int | None] = mapped_column(Integer)
    seats_before: Mapped[int | None] = mapped_column(Integer)
    overage_seats: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    charge_on: Mapped[date | None] = mapped_column(Date, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payment_intent_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DuoAssignment(Base):
    """A member assigned a seat of a Duo add-on (purchased or granted by a trial)."""

    __tablename__ = "duo_assignments"
    __table_args__ = (UniqueConstraint("namespace_id", "sku", "user_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), index=True)
    sku: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(BigInteger)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BillingManager(Base):
    """Someone an Owner let manage a namespace's billing (cards, orders, renewal)."""

    __tablename__ = "billing_managers"

    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, index=True)
    email: Mapped[str] = mapped_column(String(254))
    invited_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BillingInvitation(Base):
    """An invitation to manage a namespace's billing. Only the SHA-256 of the
    link's token is kept; `accepted_at` (set once, by a conditional UPDATE)
    makes the link single-use."""

    __tablename__ = "billing_invitations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_by: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BillingAuditEntry(Base):
    """Who changed what about a namespace's billing, and when: append-only.
    `reason` is a column of its own so reasons can be counted in SQL."""

    __tablename__ = "billing_audit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    subscription_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    actor_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(48), index=True)
    reason: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ScheduledChange(Base):
    """A change an Owner or billing manager scheduled for a subscription's next
    renewal: fewer seats, a lower plan, add-ons dropped. At most one open per
    subscription and renewal date; applied by the renewal, or canceled."""

    __tablename__ = "scheduled_changes"
    __table_args__ = (
        Index("uq_scheduled_changes_open", "subscription_id", "renewal_date", unique=True,
              sqlite_where=text("applied_at IS NULL AND canceled_at IS NULL"),
              postgresql_where=text("applied_at IS NULL AND canceled_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    renewal_date: Mapped[date] = mapped_column(Date)
    seats: Mapped[int | None] = mapped_column(Integer)
    plan: Mapped[str | None] = mapped_column(String(32))
    drop_addons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
