"""Starting, reading and ending trials.

Starting is idempotent per namespace and kind: the unique constraint decides
between racing requests, and the loser answers with the winner's trial.
Expiry and conversion are conditional UPDATEs (`WHERE status = 'active'`), so
each happens exactly once however many sweeps or deliveries overlap.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from contracts import events
from funnel.telemetry import Step
from identity.auth import Principal
from services.common.errors import Conflict, Forbidden, Invalid, not_found
from services.common.service import ServiceUnitOfWork
from services.common.sweeps import Sweep
from services.trials.adapters.models import DirectoryNamespace, Trial, TrialAudit
from services.trials.domain import rules as R
from services.trials.runtime import Trials, UowFactory
from services.trials.usecases import directory
from services.trials.usecases.directory import Membership

ULTIMATE, DUO_PRO = "ultimate", "duo_pro"
# Flags (experiments/payload.json) that change what trials does.
TRIAL_LENGTH_FLAG = "ultimate-trial-days"
DUO_UPSELL_FLAG = "duo-pro-upsell"
MAX_TRIAL_DAYS = 90  # a payload typo must not hand out a year of Ultimate
TRIAL_EXPIRY = "trial_expiry"  # the sweep's name in sweep_failures, the logs and /metrics


def trial_view(trial: Trial, now: datetime, rules: R.TrialRules) -> dict[str, Any]:
    left = (trial.ends_at - now).total_seconds() / 86400
    past = R.PastTrial(trial.kind, R.TrialStatus(trial.status), trial.ends_at)
    return {
        "id": trial.id, "namespace_id": trial.namespace_id, "namespace_path": trial.namespace_path,
        "kind": trial.kind, "name": rules.kinds[trial.kind].name, "status": trial.status,
        "started_at": trial.started_at, "ends_at": trial.ends_at,
        "days_left": max(0, int(-(-left // 1))) if trial.status == "active" else 0,
        "seats": trial.seats, "plan_before": trial.plan_before, "extended": trial.extended,
        "reactivated": trial.reactivated, "recently_expired": R.recently_expired(rules, past, now),
    }


def _event(app: Trials, trial: Trial, now: datetime, **extra: Any) -> events.TrialChanged:
    """A trial change for others; bumps the trial's version so order can't be mistaken."""
    kind = app.rules.kinds[trial.kind]
    trial.version = (trial.version or 0) + 1
    return {"version": trial.version, "trial_id": trial.id, "namespace_id": trial.namespace_id,
            "occurred_at": now.isoformat(),
            "grants_plan": kind.grants_plan, "grants_addon": kind.grants_addon,
            "namespace_path": trial.namespace_path, "kind": trial.kind, "status": trial.status,
            "ends_at": trial.ends_at.isoformat(), "plan_before": trial.plan_before, "seats": trial.seats,
            "user_id": trial.started_by, "email": trial.started_by_email, **extra}


def _namespace(app: Trials, namespace_id: int, token: str) -> R.Namespace:
    """The namespace as checkout says it now, with the caller's own token: what
    changes state (`start`, `reactivate`) asks this, never the read model, so a
    stale read model can show a wrong verdict for a moment but never grant a
    trial checkout would refuse."""
    ns = app.directory.lookup(namespace_id, token)
    if ns is None:
        raise not_found("namespace", namespace_id)
    return ns


def _known(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> R.Namespace:
    """The namespace from trials' read model (usecases/directory.py), as checkout
    would show it to the caller (404 to a non-member but an admin), with no call
    to checkout: what only reads answers from it, at most STALENESS_BOUND behind."""
    ns = directory.lookup(uow.session, namespace_id, principal.user_id, principal.is_admin)
    if ns is None:
        raise not_found("namespace", namespace_id)
    return ns


def owned_namespaces(app: Trials, uow: ServiceUnitOfWork, principal: Principal) -> list[Membership]:
    """The namespaces whose trials the caller can start (as Owner), from the read model."""
    with uow:
        return [m for m in directory.memberships(uow.session, principal.user_id) if m.role == "owner"]


# Built once, not per eligibility check: building a select() costs about what running it does.
_HISTORY = select(Trial).where(Trial.namespace_id == bindparam("ns"))
_LISTED = _HISTORY.order_by(Trial.started_at)
# The read model's namespace, the caller's role and the namespace's trials: one row per trial.
_ELIGIBILITY = (directory.NAMESPACE_AND_ROLE.add_columns(Trial.kind.label("trial_kind"),
                                                         Trial.status.label("trial_status"),
                                                         Trial.ends_at.label("trial_ends_at"))
                .outerjoin(Trial, Trial.namespace_id == DirectoryNamespace.id))


def _past(rows: Iterable[Trial]) -> dict[str, R.PastTrial]:
    return {t.kind: R.PastTrial(t.kind, R.TrialStatus(t.status), t.ends_at) for t in rows}


def _history(uow: ServiceUnitOfWork, namespace_id: int) -> dict[str, R.PastTrial]:
    return _past(uow.session.scalars(_HISTORY, {"ns": namespace_id}))


def _attributes(principal: Principal, ns: R.Namespace) -> dict[str, Any]:
    """What flag targeting may use: the same names in every service."""
    return {"id": str(principal.user_id), "namespace_id": str(ns.id), "plan": ns.plan,
            "billable_members": ns.billable_members}


def _verdict(app: Trials, uow: ServiceUnitOfWork, principal: Principal, ns: R.Namespace,
             history: dict[str, R.PastTrial], kind: str) -> R.Verdict:
    """The rules' verdict, with the Ultimate-on-Premium length from its experiment.

    The flag is evaluated only where the length is shown (an eligible Premium
    namespace), so only people who see a length are counted as exposed."""
    decision = R.verdict(app.rules, kind, ns, history)
    if not decision.eligible or kind != ULTIMATE or ns.plan != "premium":
        return decision
    days = uow.flag(TRIAL_LENGTH_FLAG, _attributes(principal, ns))
    if isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= MAX_TRIAL_DAYS:
        return R.verdict(app.rules, kind, ns, history, duration_override=days)
    return decision


def upsell(app: Trials, uow: ServiceUnitOfWork, principal: Principal, ns: R.Namespace,
           duo: R.Verdict) -> dict[str, Any] | None:
    """After an Ultimate trial starts: offer the Duo Pro trial (verdict `duo`), if
    its experiment says so."""
    if not duo.eligible or not uow.flag(DUO_UPSELL_FLAG, _attributes(principal, ns)):
        return None
    name = app.rules.kinds[DUO_PRO].name
    return {"kind": DUO_PRO, "name": name, "duration_days": duo.duration_days,
            "message": f"Try {name} free for {duo.duration_days} days alongside your Ultimate trial."}


def _checked(app: Trials, uow: ServiceUnitOfWork, principal: Principal, ns: R.Namespace,
             history: dict[str, R.PastTrial]) -> list[R.Verdict]:
    """Every kind's verdict, recorded as one eligibility check (a funnel step)."""
    verdicts = [_verdict(app, uow, principal, ns, history, kind) for kind in app.rules.kinds]
    uow.track(Step.TRIAL_ELIGIBILITY_CHECKED, user_id=principal.user_id, namespace_id=ns.id,
              outcomes={v.kind: v.reason or "eligible" for v in verdicts}, plan=ns.plan)
    return verdicts


def eligibility(app: Trials, uow: ServiceUnitOfWork, principal: Principal,
                namespace_id: int) -> list[R.Verdict]:
    """Every kind's verdict from the read model and the trials table, in one
    statement: no call to checkout."""
    with uow:
        uow.telemetry_only()
        rows = uow.session.execute(_ELIGIBILITY, {"ns": namespace_id, "user": principal.user_id}).all()
        ns = directory.seen(rows[0] if rows else None, principal.is_admin)
        if ns is None:
            raise not_found("namespace", namespace_id)
        history = {r.trial_kind: R.PastTrial(r.trial_kind, R.TrialStatus(r.trial_status), r.trial_ends_at)
                   for r in rows if r.trial_kind is not None}
        verdicts = _checked(app, uow, principal, ns, history)
        uow.commit()
        return verdicts


def overview(app: Trials, uow: ServiceUnitOfWork, principal: Principal,
             namespace_id: int) -> tuple[list[R.Verdict], list[dict[str, Any]]]:
    """What the trials page shows of a namespace: `eligibility`'s verdicts (recorded
    the same way) and `list_for`'s trials, from one read of the read model and one
    of the namespace's trials, in one transaction."""
    with uow:
        uow.telemetry_only()
        ns = _known(uow, principal, namespace_id)
        rows = list(uow.session.scalars(_LISTED, {"ns": namespace_id}))
        verdicts = _checked(app, uow, principal, ns, _past(rows))
        listed = [trial_view(t, uow.now, app.rules) for t in rows]
        uow.commit()
        return verdicts, listed


def start(app: Trials, uow: ServiceUnitOfWork, principal: Principal, token: str, namespace_id: int,
          kind: str) -> tuple[bool, dict[str, Any]]:
    """(created, trial). A repeat of a start that succeeded answers with that trial."""
    if kind not in app.rules.kinds:
        raise Invalid("unknown_trial_kind", "Unknown trial kind",
                      f"Choose one of: {', '.join(app.rules.kinds)}.")
    ns = _namespace(app, namespace_id, token)
    with uow:
        history = _history(uow, namespace_id)
        existing = _active_started_by_anyone(uow, namespace_id, kind)
        if existing is not None and ns.role == "owner":
            return False, trial_view(existing, uow.now, app.rules)
        decision = _verdict(app, uow, principal, ns, history, kind)
        if not decision.eligible:
            refusal = Conflict if decision.reason in ("already_trialed", "trial_active") \
                else Forbidden if decision.reason == "not_owner" else Invalid
            raise refusal(decision.reason or "not_eligible", "Trial not available", decision.message)
        assert decision.duration_days is not None
        trial = Trial(namespace_id=ns.id, namespace_path=ns.path, kind=kind, status="active",
                      plan_before=ns.plan, seats=R.trial_seats(app.rules.kinds[kind], ns),
                      started_by=principal.user_id, started_by_email=principal.email,
                      started_at=uow.now, ends_at=R.ends_at(uow.now, decision.duration_days),
                      experiments=uow.variations(principal.user_id, ns.id))
        uow.session.add(trial)
        try:
            uow.session.flush()
        except IntegrityError:
            uow.rollback()
            winner = _active_started_by_anyone(uow, namespace_id, kind)
            if winner is None:
                raise Conflict("already_trialed", "Trial not available",
                               f"{ns.path} has had this trial.") from None
            return False, trial_view(winner, uow.now, app.rules)
        duo = R.verdict(app.rules, DUO_PRO, ns, history) if kind == ULTIMATE else None
        offer = upsell(app, uow, principal, ns, duo) if duo else None
        # Notifications decides its own mail with the same flag (same hash, same variation).
        duo_pro_eligible = bool(duo and duo.eligible)
        uow.publish("trial.started", _event(app, trial, uow.now, duration_days=decision.duration_days,
                                            seat_holder=principal.user_id,
                                            duo_pro_eligible=duo_pro_eligible))
        uow.track(Step.TRIAL_STARTED, user_id=principal.user_id, namespace_id=ns.id, kind=kind,
                  plan=ns.plan, duration_days=decision.duration_days, upsell=offer["kind"] if offer else None)
        uow.commit()
        return True, {**trial_view(trial, uow.now, app.rules), "upsell": offer}


def _active_started_by_anyone(uow: ServiceUnitOfWork, namespace_id: int, kind: str) -> Trial | None:
    return uow.session.scalar(select(Trial).where(
        Trial.namespace_id == namespace_id, Trial.kind == kind, Trial.status == "active"))


def list_for(app: Trials, uow: ServiceUnitOfWork, principal: Principal,
             namespace_id: int) -> list[dict[str, Any]]:
    with uow:
        _known(uow, principal, namespace_id)  # members only
        return [trial_view(t, uow.now, app.rules) for t in uow.session.scalars(_LISTED, {"ns": namespace_id})]


def _admin_trial(uow: ServiceUnitOfWork, principal: Principal, trial_id: int) -> Trial:
    if not principal.is_admin:
        raise Forbidden("admin_required", "Admin role required",
                        "Only support (admin role) can extend or reactivate trials.")
    trial = uow.session.scalar(select(Trial).where(Trial.id == trial_id).with_for_update())
    if trial is None:
        raise not_found("trial", trial_id)
    return trial


def _audit(uow: ServiceUnitOfWork, trial: Trial, principal: Principal, action: str, reason: str,
           before: datetime) -> None:
    uow.session.add(TrialAudit(trial_id=trial.id, action=action, actor_user_id=principal.user_id,
                               actor_email=principal.email, reason=reason, ends_at_before=before,
                               ends_at_after=trial.ends_at, at=uow.now))


def extend(app: Trials, uow: ServiceUnitOfWork, principal: Principal, trial_id: int,
           reason: str) -> dict[str, Any]:
    with uow:
        trial = _admin_trial(uow, principal, trial_id)
        refusal = R.extension_refusal(R.TrialStatus(trial.status), trial.extended, trial.reactivated)
        if refusal:
            raise Conflict(refusal[0], "Can not extend", refusal[1])
        before = trial.ends_at
        trial.ends_at = R.ends_at(trial.ends_at, app.rules.extension_days)
        trial.extended = True
        _audit(uow, trial, principal, "extended", reason, before)
        uow.publish("trial.extended", _event(app, trial, uow.now, by=principal.user_id, reason=reason))
        uow.track(Step.TRIAL_EXTENDED, user_id=trial.started_by, namespace_id=trial.namespace_id,
                  kind=trial.kind, by_support=True)
        uow.commit()
        return trial_view(trial, uow.now, app.rules)


def reactivate(app: Trials, uow: ServiceUnitOfWork, principal: Principal, token: str, trial_id: int,
               reason: str) -> dict[str, Any]:
    with uow:
        trial = _admin_trial(uow, principal, trial_id)
        namespace_id = trial.namespace_id
    ns = _namespace(app, namespace_id, token)  # the plan now, asked outside the transaction
    with uow:
        trial = _admin_trial(uow, principal, trial_id)
        refusal = R.reactivation_refusal(app.rules.kinds[trial.kind], R.TrialStatus(trial.status),
                                         trial.extended, trial.reactivated, ns.plan)
        if refusal:
            raise Conflict(refusal[0], "Can not reactivate", refusal[1])
        before = trial.ends_at
        trial.status = "active"
        trial.ends_at = R.ends_at(uow.now, app.rules.reactivation_days)
        trial.ended_at = None
        trial.reactivated = True
        _audit(uow, trial, principal, "reactivated", reason, before)
        uow.publish("trial.reactivated", _event(app, trial, uow.now, by=principal.user_id, reason=reason))
        uow.commit()
        return trial_view(trial, uow.now, app.rules)


def expire_due(app: Trials, new_uow: UowFactory) -> list[int]:
    """End every active trial whose time is up, once. Safe to run twice or in
    parallel; a trial that fails is retried alone later (services/common/sweeps.py)."""
    def due(uow: ServiceUnitOfWork) -> Select[Any]:
        return select(Trial.id).where(Trial.status == "active", Trial.ends_at <= uow.now)

    def expire(uow: ServiceUnitOfWork, ids: list[int]) -> list[int]:
        ended = uow.session.execute(
            update(Trial).where(Trial.id.in_(ids), Trial.status == "active")
            .values(status="expired", ended_at=uow.now).returning(Trial.id)).scalars().all()
        for trial in uow.session.scalars(select(Trial).where(Trial.id.in_(ended))):
            uow.publish("trial.expired", _event(app, trial, uow.now))
            uow.track(Step.TRIAL_EXPIRED, user_id=trial.started_by, namespace_id=trial.namespace_id,
                      kind=trial.kind, plan_before=trial.plan_before, experiments=trial.experiments)
        return list(ended)

    return Sweep(TRIAL_EXPIRY, due, expire).run(new_uow)


def convert_on_purchase(app: Trials, uow: ServiceUnitOfWork,
                        payload: events.SubscriptionChanged | events.SubscriptionExpanded) -> str:
    """A subscription bought or changed: the trials it pays for end as converted."""
    namespace_id = payload["namespace_id"]
    if "added" in payload:  # subscription.expanded: only what this order added was bought now
        bought = {a["sku"] for a in payload["added"]}
    else:
        bought = {payload.get("plan")} | {a["sku"] for a in payload.get("addons", [])}
    kinds = [k.id for k in app.rules.kinds.values()
             if (k.grants_plan and k.grants_plan in bought) or (k.grants_addon and k.grants_addon in bought)]
    if not kinds:
        return "no trial converted"
    converted = uow.session.execute(
        update(Trial).where(Trial.namespace_id == namespace_id, Trial.kind.in_(kinds),
                            Trial.status == "active")
        .values(status="converted", ended_at=uow.now).returning(Trial.id)).scalars().all()
    for trial in uow.session.scalars(select(Trial).where(Trial.id.in_(converted))):
        # An add-on trial's seat holder (who started it) keeps the seat in the bought add-on.
        holder = trial.started_by if app.rules.kinds[trial.kind].grants_addon else None
        uow.publish("trial.converted", _event(app, trial, uow.now, seat_holder=holder,
                                              subscription_id=payload.get("subscription_id")))
        uow.track(Step.TRIAL_CONVERTED, user_id=trial.started_by, namespace_id=namespace_id,
                  kind=trial.kind, plan_before=trial.plan_before, experiments=trial.experiments)
    return f"converted {len(converted)}"
