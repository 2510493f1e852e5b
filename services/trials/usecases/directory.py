"""Trials' read model of the namespace facts eligibility needs (plan, roles,
add-ons, billable members), written only by checkout's events and read by
eligibility, the trials page and the trials list without asking checkout.

How stale it can be: an event is in checkout's outbox when the change
commits; checkout's worker relays due rows every pass (`--interval`, 1 s by
default, messaging/jobs.py) and trials applies each as it arrives. So
with both services up the read model trails checkout by at most one worker
pass plus one delivery: STALENESS_BOUND (what tests/integration/
test_trials_read_model.py holds it to), as long as the pass's other jobs
(renewal sweeps) are quick and the backlog fits one batch (100 rows; more
takes a pass per batch). While trials is down or refusing,
the relay retries with a backoff of 2 s doubling to 5 min (messaging/
relay.py), and the model catches up within one backoff of trials returning.

Order: every fact keeps the time of the change that set it. The platform's
time (`changed_at` of `directory.*`) orders a group's path and each
membership, exactly as checkout orders the platform's hooks; checkout's own
time (`changed_at` of `subscription.*`) orders the plan and add-ons. An older
or repeated event changes nothing.

Namespaces older than the subscription (or a model to rebuild) come from
`directory.namespace_snapshot`, which checkout republishes on demand
(`python -m services.checkout.snapshot`); it carries those same times, so it
never undoes a newer event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from contracts import events
from services.common.service import ServiceUnitOfWork
from services.trials.adapters.models import DirectoryMember, DirectoryNamespace
from services.trials.domain import directory as D
from services.trials.domain.rules import Namespace

# One worker pass (1 s) plus delivery and the pass's other jobs: the bound the
# convergence test asserts, with both services running.
STALENESS_BOUND = timedelta(seconds=3)
# The time of a namespace known only from a subscription event: any directory event is newer.
UNHEARD = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Membership:
    """A namespace the caller belongs to, with their role."""

    namespace_id: int
    path: str
    plan: str
    role: str


# --- reading ---------------------------------------------------------------------------
# The namespace and the caller's role in one round trip, built once (eligibility
# adds the namespace's trials to it: usecases/trials.py).
NAMESPACE_AND_ROLE = (
    select(DirectoryNamespace.id, DirectoryNamespace.path, DirectoryNamespace.kind,
           DirectoryNamespace.parent_id, DirectoryNamespace.plan, DirectoryNamespace.addons,
           DirectoryNamespace.billable_members, DirectoryMember.role)
    .outerjoin(DirectoryMember, and_(DirectoryMember.namespace_id == DirectoryNamespace.id,
                                     DirectoryMember.user_id == bindparam("user")))
    .where(DirectoryNamespace.id == bindparam("ns")))
_MEMBERSHIPS = (
    select(DirectoryNamespace.id, DirectoryNamespace.path, DirectoryNamespace.plan, DirectoryMember.role)
    .join(DirectoryMember, DirectoryMember.namespace_id == DirectoryNamespace.id)
    .where(DirectoryMember.user_id == bindparam("user"), DirectoryMember.role.is_not(None),
           DirectoryNamespace.destroyed.is_(False))
    .order_by(DirectoryNamespace.path))


def lookup(session: Session, namespace_id: int, user_id: int, is_admin: bool) -> Namespace | None:
    """The namespace as this person sees it, as checkout would answer: None if
    unknown or if they are no member (an admin sees every namespace, with no role)."""
    return seen(session.execute(NAMESPACE_AND_ROLE, {"ns": namespace_id, "user": user_id}).first(), is_admin)


def seen(row: Any, is_admin: bool) -> Namespace | None:
    """A NAMESPACE_AND_ROLE row as its reader may see it (None: unknown, or not theirs)."""
    if row is None or (row.role is None and not is_admin):
        return None
    return Namespace(id=row.id, path=row.path, kind=row.kind, is_top_level=row.parent_id is None,
                     plan=row.plan, role=row.role, billable_members=row.billable_members,
                     addons_purchased=tuple(sorted({sku for skus in row.addons.values() for sku in skus})))


def memberships(session: Session, user_id: int) -> list[Membership]:
    """The namespaces this person belongs to, by path."""
    rows = session.execute(_MEMBERSHIPS, {"user": user_id})
    return [Membership(r.id, r.path, r.plan, r.role) for r in rows]


# --- writing: checkout's events --------------------------------------------------------
def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def group_changed(uow: ServiceUnitOfWork, event: str, payload: Mapping[str, Any]) -> str:
    """directory.group_created, .group_renamed or .group_destroyed."""
    session, gid, at = uow.session, payload["group_id"], _at(payload["changed_at"])
    row = session.get(DirectoryNamespace, gid, with_for_update=True)
    if row is None:
        row = DirectoryNamespace(id=gid, path=payload["path"], kind="group",
                                 parent_id=payload.get("parent_id"), destroyed=event == D.GROUP_DESTROYED,
                                 changed_at=at, last_event=event, plan="free", addons={},
                                 billable_members=0)
        session.add(row)
        session.flush()
        _recount(session, row)
        return f"{event}: {gid} {row.path}"
    if row.destroyed:
        return f"ignored: {gid} was destroyed"
    if event == D.GROUP_CREATED:  # only the create says where a group sits, late or not
        row.parent_id = payload.get("parent_id")
    if D.is_stale(event, at, row.last_event, row.changed_at):
        _recount(session, row)
        return f"stale: {event} of {gid} at {at.isoformat()}"
    if event == D.GROUP_DESTROYED:
        row.destroyed = True
        for member in session.scalars(select(DirectoryMember).where(DirectoryMember.namespace_id == gid)):
            member.role = None  # checkout keeps no membership of a destroyed group
    elif row.path != payload["path"]:
        _move(session, row, payload["path"])
    row.changed_at, row.last_event = at, event
    _recount(session, row)
    return f"{event}: {gid} {row.path}"


def _move(session: Session, row: DirectoryNamespace, path: str) -> None:
    """A rename moves the subgroups with it: checkout publishes no event of theirs."""
    old, row.path = row.path, path
    for child in session.scalars(select(DirectoryNamespace).where(
            DirectoryNamespace.path.startswith(old + "/", autoescape=True))):
        child.path = D.moved_path(child.path, old, path) or child.path


def member_changed(uow: ServiceUnitOfWork, event: str, payload: Mapping[str, Any]) -> str:
    """directory.member_added, .member_updated or .member_removed."""
    gid, uid = payload["group_id"], payload["user_id"]
    role = None if event == D.MEMBER_REMOVED else payload["role"]
    applied = _member(uow.session, gid, uid, role, _at(payload["changed_at"]), event)
    namespace = uow.session.get(DirectoryNamespace, gid)
    if applied and namespace is not None:
        _recount(uow.session, namespace)
    return f"{event}: user {uid} in {gid}" + ("" if applied else " (stale)")


def _member(session: Session, gid: int, uid: int, role: str | None, at: datetime, event: str) -> bool:
    namespace = session.get(DirectoryNamespace, gid)
    if namespace is not None and namespace.destroyed:
        return False
    row = session.get(DirectoryMember, (gid, uid), with_for_update=True)
    if row is None:
        session.add(DirectoryMember(namespace_id=gid, user_id=uid, role=role, changed_at=at,
                                    last_event=event))
        session.flush()
        return True
    if D.is_stale(event, at, row.last_event, row.changed_at):
        return False
    row.role, row.changed_at, row.last_event = role, at, event
    return True


def plan_changed(uow: ServiceUnitOfWork, payload: Mapping[str, Any], plan: str | None) -> str:
    """A subscription.* event: the namespace's plan (None: unchanged) and the
    subscription's add-ons as checkout now has them, if newer than what is kept."""
    namespace_id = payload["namespace_id"]
    if "changed_at" not in payload:  # from before checkout stamped them: a snapshot brings it
        return "plan: no time, not applied"
    at = _at(payload["changed_at"])
    row = uow.session.get(DirectoryNamespace, namespace_id, with_for_update=True)
    if row is None:  # heard before its group_created (a tie or a retry): the group's own event fills it in
        row = DirectoryNamespace(id=namespace_id, path=payload["namespace_path"], kind="group",
                                 parent_id=None, destroyed=False, changed_at=UNHEARD,
                                 last_event=D.GROUP_CREATED, plan="free", addons={}, billable_members=0)
        uow.session.add(row)
        uow.session.flush()
    # Ties apply (of two changes stamped alike the later delivered wins): only a fixed clock ties.
    if row.plan_changed_at is not None and at < row.plan_changed_at:
        return f"plan: stale at {at.isoformat()}"
    if "addons" in payload and "subscription_id" in payload:
        skus = sorted(a["sku"] for a in payload["addons"])
        row.addons = {**row.addons, str(payload["subscription_id"]): skus}
    if plan is not None and plan != row.plan:
        row.plan = plan
        _recount_tree(uow.session, row)
    row.plan_changed_at = at
    return f"plan: {namespace_id} {row.plan}"


def snapshot(uow: ServiceUnitOfWork, payload: events.NamespaceSnapshot) -> str:
    """directory.namespace_snapshot: each fact applied unless a newer one is kept."""
    session, nid = uow.session, payload["namespace_id"]
    row = session.get(DirectoryNamespace, nid, with_for_update=True)
    at, event = _at(payload["changed_at"]), payload["last_event"]
    if row is None:
        row = DirectoryNamespace(id=nid, path=payload["path"], kind=payload["kind"],
                                 parent_id=payload["parent_id"], destroyed=payload["destroyed"],
                                 changed_at=at, last_event=event, plan="free", addons={}, billable_members=0)
        session.add(row)
        session.flush()
    elif not row.destroyed and not D.is_stale(event, at, row.last_event, row.changed_at):
        if row.path != payload["path"]:
            _move(session, row, payload["path"])
        row.kind, row.parent_id, row.destroyed = payload["kind"], payload["parent_id"], payload["destroyed"]
        row.changed_at, row.last_event = at, event
    for member in payload["members"]:
        _member(session, nid, member["user_id"], member["role"], _at(member["changed_at"]),
                member["last_event"])
    plan_at = _at(payload["plan_changed_at"])
    if row.plan_changed_at is None or plan_at >= row.plan_changed_at:
        row.plan, row.addons, row.plan_changed_at = payload["plan"], dict(payload["addons"]), plan_at
    session.flush()
    _recount_tree(session, row)
    return f"snapshot: {nid} {row.path} {row.plan}"


# --- billable members ------------------------------------------------------------------
def _top_plan(session: Session, row: DirectoryNamespace) -> str:
    """The plan that bills a namespace's members: its top-level group's."""
    seen = {row.id}
    while row.parent_id is not None:
        parent = session.get(DirectoryNamespace, row.parent_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        row = parent
    return row.plan


def _recount(session: Session, row: DirectoryNamespace) -> None:
    session.flush()
    roles = list(session.scalars(select(DirectoryMember.role).where(
        DirectoryMember.namespace_id == row.id, DirectoryMember.role.is_not(None))))
    row.billable_members = D.billable_count([r for r in roles if r], _top_plan(session, row))


def _recount_tree(session: Session, row: DirectoryNamespace) -> None:
    """A top-level plan changed: Guests take a seat or stop taking one, in its subgroups too."""
    _recount(session, row)
    for child in session.scalars(select(DirectoryNamespace).where(
            DirectoryNamespace.path.startswith(row.path + "/", autoescape=True))).all():
        _recount(session, child)
