"""Namespaces and roles belong to checkout: trials asks checkout's API, with
the caller's own token, so checkout decides what the caller may see."""

from __future__ import annotations

from typing import Protocol

import requests

from services.common.logs import request_id_var
from services.common.problems import Problem
from services.trials.domain.rules import Namespace

DIRECTORY_DOWN = Problem(503, "directory_unavailable", "Namespace directory unavailable",
                         "We could not look up the namespace right now; nothing was changed. "
                         "Try again in a moment.", headers={"Retry-After": "5"})


class NamespaceDirectory(Protocol):
    def lookup(self, namespace_id: int, bearer_token: str) -> Namespace | None: ...


class CheckoutDirectory:
    def __init__(self, checkout_url: str, timeout: float = 3.0) -> None:
        self._base = checkout_url.rstrip("/")
        self._timeout = timeout
        self._http = requests.Session()

    def lookup(self, namespace_id: int, bearer_token: str) -> Namespace | None:
        """The namespace as the token's owner sees it; None if unknown or not theirs."""
        try:
            headers = {"Authorization": f"Bearer {bearer_token}"}
            if request_id := request_id_var.get():
                headers["X-Request-Id"] = request_id  # one id across both services' logs
            response = self._http.get(f"{self._base}/namespaces/{namespace_id}", timeout=self._timeout,
                                      headers=headers)
        except requests.RequestException as exc:
            raise DIRECTORY_DOWN from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DIRECTORY_DOWN
        body = response.json()
        return Namespace(id=body["id"], path=body["path"], kind=body["kind"],
                         is_top_level=body["parent_id"] is None, plan=body["plan"], role=body["role"],
                         billable_members=body["billable_members"],
                         addons_purchased=tuple(body["addons_purchased"]))
