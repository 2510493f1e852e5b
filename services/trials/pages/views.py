"""The trials page: an Owner's namespaces, the trials each can start (or why
not), and the trials running. static/trials.js starts a trial through the JSON
API with the session cookie and the CSRF token."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, render_template

from identity.auth import Principal
from services.common.pages import page
from services.common.web import request_uow
from services.trials.runtime import Trials, current
from services.trials.usecases import trials

blp = Blueprint("trials_pages", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/trials")


@blp.get("/trials")
@page
def trials_page(principal: Principal) -> str:
    app = current()
    groups: list[dict[str, Any]] = []
    for ns in trials.owned_namespaces(app, request_uow(), principal):
        verdicts, listed = trials.overview(app, request_uow(), principal, ns.namespace_id)
        running = {t["kind"]: t for t in listed if t["status"] == "active"}
        groups.append({"namespace": ns, "trials": [
            {**v.__dict__, "name": app.rules.kinds[v.kind].name, "active": running.get(v.kind),
             "buy_url": buy_url(app, v.kind, ns.namespace_id)}
            for v in verdicts]})
    return render_template("trials/trials.html", groups=groups)


def buy_url(app: Trials, kind: str, namespace_id: int) -> str:
    """Checkout's page that buys what the trial gives: its plan (or the upgrade to it), or its add-on."""
    query: dict[str, str | int] = {"namespace_id": namespace_id}
    trial = app.rules.kinds[kind]
    if trial.grants_addon:
        query |= {"mode": "add-duo", "sku": trial.grants_addon}
    elif trial.grants_plan:
        query |= {"plan": trial.grants_plan}
    return f"{app.ctx.settings.checkout_pages_url}/checkout?{urlencode(query)}"
