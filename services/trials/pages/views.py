"""The trials page: an Owner's namespaces, the trials each can start (or why
not), and the trials running. static/trials.js starts a trial through the JSON
API with the session cookie and the CSRF token."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from services.common.auth import Principal
from services.common.pages import page
from services.common.sessions import caller_token
from services.common.web import request_uow
from services.trials.runtime import current
from services.trials.usecases import trials

blp = Blueprint("trials_pages", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/trials")


@blp.get("/trials")
@page
def trials_page(principal: Principal) -> str:
    app = current()
    token = caller_token()
    groups: list[dict[str, Any]] = []
    for ns in trials.owned_namespaces(app, token):
        verdicts, listed = trials.overview(app, request_uow(), principal, token, ns.namespace_id)
        running = {t["kind"]: t for t in listed if t["status"] == "active"}
        groups.append({"namespace": ns, "trials": [
            {**v.__dict__, "name": app.rules.kinds[v.kind].name, "active": running.get(v.kind)}
            for v in verdicts]})
    return render_template("trials/trials.html", groups=groups)
