"""The platform's directory: groups, their members and roles, as the platform's
system hooks tell them. Checkout owns none of it and keeps a copy; this module
is the only writer of that copy (`namespaces`, `memberships`, `users`).

Hooks come late, twice and out of order, so:
- each is handled once, by its id (the inbox);
- each group and each membership keeps the platform's time of the last change
  applied (`directory_groups`, `directory_members`): an older hook is ignored,
  and a removal or a destruction stays, so a late add brings nothing back;
- what cannot be applied yet waits there: a subgroup heard of before its
  parent, a member before their group. `namespaces` and `memberships` get them
  as soon as the parent or the group arrives.

Every change is published (`directory.*`) with the platform's time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from messaging import inbox
from services.checkout.adapters.models import (
    DirectoryGroup,
    DirectoryMember,
    InboxEvent,
    Membership,
    Namespace,
    User,
)
from services.checkout.domain import directory as D
from services.checkout.usecases import duo, seats
from services.common.service import ServiceUnitOfWork

SOURCE = "platform"
NOT_OURS = "ignored: not a directory event"
# Hooks that come without an id get one from their body (uuid5 in this namespace).
_HOOK_IDS = uuid.UUID("6f1c2b1e-8a53-4c55-9d0e-6a7d1f2e9b40")
Row = TypeVar("Row", DirectoryGroup, DirectoryMember, User)


@dataclass
class Received:
    outcome: str
    events: list[str] = field(default_factory=list)  # the topics published


def hook_id(body: Mapping[str, Any]) -> str:
    """The id of a hook sent without one: the same body gets the same id, so a
    hook sent twice is a duplicate."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return str(uuid.uuid5(_HOOK_IDS, canonical))


def receive(uow: ServiceUnitOfWork, event_id: str, hook: dict[str, Any]) -> Received:
    """Apply one validated system hook, once. Hooks about anything else (the
    platform sends every kind to the same address) are answered and ignored."""
    apply = _HANDLERS.get(hook["event_name"])
    if apply is None:
        return Received(NOT_OURS)
    received = Received("")

    def handle(uow: ServiceUnitOfWork, payload: dict[str, Any]) -> str:
        return apply(_Change(uow, received.events), payload)

    envelope = {"id": event_id, "topic": hook["event_name"], "source": SOURCE,
                "occurred_at": _when(hook).isoformat(), "payload": hook}
    with uow:
        received.outcome = inbox.receive(uow, InboxEvent, envelope, {hook["event_name"]: handle})
    return received


@dataclass
class _Change:
    uow: ServiceUnitOfWork
    events: list[str]

    @property
    def session(self) -> Session:
        return self.uow.session

    def publish(self, topic: str, at: datetime, **payload: Any) -> None:
        self.uow.publish(topic, {**payload, "changed_at": at.isoformat()})
        self.events.append(topic)


def _when(hook: Mapping[str, Any]) -> datetime:
    """The platform's time of the change (a member hook's updated_at moves with its role)."""
    return hook.get("updated_at") or hook["created_at"]  # type: ignore[no-any-return]


# --- groups ------------------------------------------------------------------------
def _group_create(change: _Change, hook: dict[str, Any]) -> str:
    gid, at, name, path = hook["group_id"], _when(hook), hook["name"], hook.get("full_path") or hook["path"]
    row, new = _locked(change.session, DirectoryGroup, gid, lambda: DirectoryGroup(
        group_id=gid, name=name, path=path, parent_id=hook.get("parent_id"), created=True,
        changed_at=at, last_event=D.GROUP_CREATE))
    if row.destroyed:
        return f"ignored: group {gid} was destroyed"
    first = new or not row.created
    if not row.created:  # a rename came first; only the create says where the group sits
        row.parent_id, row.created = hook.get("parent_id"), True
    elif not new and D.is_stale(D.GROUP_CREATE, at, row.last_event, row.changed_at):
        return _stale(D.GROUP_CREATE, at, row)
    old_path, renamed = row.path, (row.name, row.path) != (name, path)
    if not D.is_stale(D.GROUP_CREATE, at, row.last_event, row.changed_at):
        row.name, row.path, row.changed_at, row.last_event = name, path, at, D.GROUP_CREATE
    waits = _sync_namespace(change, row) is None
    if first:
        change.publish("directory.group_created", at, group_id=gid, name=row.name, path=row.path,
                       parent_id=row.parent_id)
    elif renamed:
        change.publish("directory.group_renamed", at, group_id=gid, name=row.name, path=row.path,
                       old_path=old_path)
    else:
        return f"unchanged: group {gid}"
    return f"{'created' if first else 'renamed'}: group {gid} {row.path}" + (
        f" (waits for its parent group {row.parent_id})" if waits else "")


def _group_rename(change: _Change, hook: dict[str, Any]) -> str:
    gid, at, name, path = hook["group_id"], _when(hook), hook["name"], hook.get("full_path") or hook["path"]
    known = change.session.get(Namespace, gid)  # a group that predates the hooks says where it sits
    row, new = _locked(change.session, DirectoryGroup, gid, lambda: DirectoryGroup(
        group_id=gid, name=name, path=path, parent_id=known.parent_id if known else None,
        created=known is not None, changed_at=at, last_event=D.GROUP_RENAME))
    if row.destroyed:
        return f"ignored: group {gid} was destroyed"
    if not new and D.is_stale(D.GROUP_RENAME, at, row.last_event, row.changed_at):
        return _stale(D.GROUP_RENAME, at, row)
    old_path = (hook.get("old_full_path") or hook.get("old_path") or path) if new else row.path
    if not new and (row.name, row.path) == (name, path):
        row.changed_at, row.last_event = at, D.GROUP_RENAME
        return f"unchanged: group {gid}"
    row.name, row.path, row.changed_at, row.last_event = name, path, at, D.GROUP_RENAME
    _sync_namespace(change, row)
    change.publish("directory.group_renamed", at, group_id=gid, name=name, path=path, old_path=old_path)
    return f"renamed: group {gid} {old_path} -> {path}"


def _group_destroy(change: _Change, hook: dict[str, Any]) -> str:
    """Destruction is final whatever its time: the platform never reuses a group id.
    The namespace row stays (orders and subscriptions refer to it); nobody is a
    member any more, so nobody sees it or buys for it."""
    gid, at = hook["group_id"], _when(hook)
    known = change.session.get(Namespace, gid) is not None
    row, new = _locked(change.session, DirectoryGroup, gid, lambda: DirectoryGroup(
        group_id=gid, name=hook["name"], path=hook.get("full_path") or hook["path"], parent_id=None,
        created=False, changed_at=at, last_event=D.GROUP_DESTROY))
    if not new and row.destroyed:
        return f"unchanged: group {gid} was destroyed already"
    row.changed_at, row.last_event = at, D.GROUP_DESTROY
    members = list(change.session.scalars(select(Membership).where(Membership.namespace_id == gid)))
    for membership in members:
        seats.follow(change.session, gid, membership.user_id, membership.role, False, at)
    duo.forget(change.session, gid, [m.user_id for m in members])
    change.session.execute(delete(Membership).where(Membership.namespace_id == gid))
    if new and not known:
        return f"destroyed: group {gid} (never heard of before)"
    change.publish("directory.group_destroyed", at, group_id=gid, path=row.path)
    return f"destroyed: group {gid} {row.path}"


def _sync_namespace(change: _Change, row: DirectoryGroup) -> Namespace | None:
    """Bring `namespaces` in line with what the platform said, once it can be:
    None while the group waits for its parent (or was destroyed)."""
    session = change.session
    if row.destroyed or not row.created or (row.parent_id is not None and not _live(session, row.parent_id)):
        return None
    namespace = session.get(Namespace, row.group_id)
    if namespace is None:
        _make_room(session, row.path, row.group_id)
        namespace = Namespace(id=row.group_id, path=row.path, name=row.name, kind="group",
                              parent_id=row.parent_id, plan="free", created_at=change.uow.now)
        session.add(namespace)
        session.flush()
        waiting = session.scalars(select(DirectoryMember).where(DirectoryMember.group_id == row.group_id))
        for member in waiting.all():
            _sync_membership(session, namespace, member)
        children = session.scalars(select(DirectoryGroup).where(DirectoryGroup.parent_id == row.group_id))
        for child in children.all():
            if session.get(Namespace, child.group_id) is None:
                _sync_namespace(change, child)
        return namespace
    if namespace.path != row.path:
        old = namespace.path
        _make_room(session, row.path, namespace.id)
        namespace.path = row.path
        _move_descendants(session, old, row.path)
    namespace.name, namespace.parent_id = row.name, row.parent_id
    return namespace


def _live(session: Session, group_id: int) -> bool:
    """In `namespaces` and not destroyed (groups from before the hooks count)."""
    row = session.get(DirectoryGroup, group_id)
    return session.get(Namespace, group_id) is not None and (row is None or not row.destroyed)


def _make_room(session: Session, path: str, owner: int) -> None:
    """Paths are unique on the platform at any moment: a namespace holding `path`
    moved away or was destroyed, and its own hook has not come (or never will).
    It is parked at "<path>~<id>" until then."""
    holder = session.scalar(select(Namespace).where(Namespace.path == path, Namespace.id != owner))
    if holder is not None:
        suffix = f"~{holder.id}"
        holder.path = path[:255 - len(suffix)] + suffix
        session.flush()


def _move_descendants(session: Session, old: str, new: str) -> None:
    """Subgroups' full paths follow their ancestor's rename."""
    prefix = old + "/"
    for model in (Namespace, DirectoryGroup):
        rows: list[Namespace | DirectoryGroup] = list(session.scalars(
            select(model).where(model.path.startswith(prefix, autoescape=True))))
        for row in rows:
            row.path = D.moved_path(row.path, old, new) or row.path


# --- members -----------------------------------------------------------------------
def _member(event: str) -> Callable[[_Change, dict[str, Any]], str]:
    def apply(change: _Change, hook: dict[str, Any]) -> str:
        session = change.session
        gid, uid, at, role = hook["group_id"], hook["user_id"], _when(hook), D.role_of(hook["group_access"])
        # Locked: a destruction running meanwhile must not be undone by this hook.
        group = session.get(DirectoryGroup, gid, with_for_update=True)
        if group is not None and group.destroyed:
            return f"ignored: group {gid} was destroyed"
        row, new = _locked(session, DirectoryMember, (gid, uid), lambda: DirectoryMember(
            group_id=gid, user_id=uid, role=role, changed_at=at, last_event=event))
        if not new and D.is_stale(event, at, row.last_event, row.changed_at):
            return _stale(event, at, row)
        namespace = session.get(Namespace, gid) if _live(session, gid) else None
        if namespace is not None:
            membership = session.get(Membership, (gid, uid))
            before = membership.role if membership is not None else None
            if (event != D.MEMBER_REMOVE and D.is_billable(role, _plan(session, namespace))
                    and not (membership is not None and membership.billable)):
                seats.refuse_overage(session, namespace, uid)  # before anything is written
        else:
            before = None if new or row.removed else row.role
        if event != D.MEMBER_REMOVE:
            _save_user(session, uid, hook["user_email"], hook["user_name"])
        row.role, row.changed_at, row.last_event = role, at, event
        session.flush()
        if namespace is not None:
            _sync_membership(session, namespace, row)
        after = None if row.removed else role
        who = f"user {uid} in group {gid}"
        if before == after:
            return f"unchanged: {who}"
        if after is None:
            change.publish("directory.member_removed", at, group_id=gid, user_id=uid, role=before)
            return f"removed: {who}"
        billable = D.is_billable(role, _plan(session, namespace))
        if before is None:
            change.publish("directory.member_added", at, group_id=gid, user_id=uid, role=role,
                           billable=billable)
            return f"added: {who} as {role}" + ("" if namespace else " (waits for the group)")
        change.publish("directory.member_updated", at, group_id=gid, user_id=uid, role=role,
                       previous_role=before, billable=billable)
        return f"updated: {who} {before} -> {role}"
    return apply


def _sync_membership(session: Session, namespace: Namespace, member: DirectoryMember) -> None:
    current = session.get(Membership, (namespace.id, member.user_id))
    billable = not member.removed and D.is_billable(member.role, _plan(session, namespace))
    seats.follow(session, namespace.id, member.user_id, member.role, billable, member.changed_at)
    if member.removed:
        if current is not None:
            session.delete(current)
            duo.forget(session, namespace.id, [member.user_id])
        return
    if current is None:
        session.add(Membership(namespace_id=namespace.id, user_id=member.user_id, role=member.role,
                               billable=billable))
    else:
        current.role, current.billable = member.role, billable


def _plan(session: Session, namespace: Namespace | None) -> str:
    """The plan that bills `namespace`'s members: its top-level group's."""
    while namespace is not None and namespace.parent_id is not None:
        parent = session.get(Namespace, namespace.parent_id)
        if parent is None:
            break
        namespace = parent
    return namespace.plan if namespace is not None else "free"


def _save_user(session: Session, user_id: int, email: str, name: str) -> None:
    user, new = _locked(session, User, user_id,
                        lambda: User(id=user_id, email=_free_email(session, email, user_id), name=name))
    if not new and (user.email, user.name) != (email, name):
        user.email, user.name = _free_email(session, email, user_id), name


def _free_email(session: Session, email: str, user_id: int) -> str:
    """Emails are unique on the platform at any moment: another user holding this
    one changed theirs and that hook has not come yet. They get a placeholder."""
    holder = session.scalar(select(User).where(User.email == email, User.id != user_id))
    if holder is not None:
        holder.email = f"user-{holder.id}@directory.invalid"
        session.flush()
    return email


# --- shared ------------------------------------------------------------------------
def _locked(session: Session, model: type[Row], key: Any, make: Callable[[], Row]) -> tuple[Row, bool]:
    """The row at `key`, locked until commit so that concurrent hooks about the
    same group, membership or user take turns; or a new one from `make`."""
    row = session.get(model, key, with_for_update=True)
    if row is not None:
        return row, False
    try:
        # A savepoint: losing the race to insert it must not abort the transaction.
        with session.begin_nested():
            row = make()
            session.add(row)
    except IntegrityError:
        row = session.get(model, key, with_for_update=True, populate_existing=True)
        if row is None:
            raise
        return row, False
    return row, True


def _stale(event: str, at: datetime, row: DirectoryGroup | DirectoryMember) -> str:
    return f"stale: {event} at {at.isoformat()} after {row.last_event} at {row.changed_at.isoformat()}"


_HANDLERS: dict[str, Callable[[_Change, dict[str, Any]], str]] = {
    D.GROUP_CREATE: _group_create, D.GROUP_RENAME: _group_rename, D.GROUP_DESTROY: _group_destroy,
    **{event: _member(event) for event in D.MEMBER_EVENTS},
}
