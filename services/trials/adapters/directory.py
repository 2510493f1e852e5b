"""Namespaces and roles belong to checkout: what changes state (starting or
reactivating a trial) asks checkout's API, with the caller's own token, so
checkout decides what the caller may see and do at that moment. Reads answer
from trials' own read model instead (services/trials/usecases/directory.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3

from services.common.errors import Unavailable
from services.common.logs import request_id_var
from services.trials.domain.rules import Namespace

DIRECTORY_DOWN = Unavailable("directory_unavailable", "Namespace directory unavailable",
                             "We could not look up the namespace right now; nothing was changed. "
                             "Try again in a moment.", retry_after=5)


class NamespaceDirectory(Protocol):
    def lookup(self, namespace_id: int, bearer_token: str) -> Namespace | None: ...


@dataclass(frozen=True)
class _Reply:
    status_code: int
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


class CheckoutDirectory:
    # Kept-alive connections to checkout, more than gunicorn's threads per process
    # (THREADS, 8 by default), so no request waits for or discards a connection.
    POOL_SIZE = 32

    def __init__(self, checkout_url: str, timeout: float = 3.0) -> None:
        self._base = checkout_url.rstrip("/")
        self._timeout = timeout
        # urllib3 rather than requests: every trial start makes this call, and
        # requests' per-call work (environment, proxies, hooks) doubled its client CPU.
        # No retries, as requests' default: a failure is a 503 the caller retries.
        self._http = urllib3.PoolManager(maxsize=self.POOL_SIZE, retries=urllib3.Retry(0, read=False))

    def _get(self, path: str, bearer_token: str) -> _Reply:
        try:
            headers = {"Authorization": f"Bearer {bearer_token}"}
            if request_id := request_id_var.get():
                headers["X-Request-Id"] = request_id  # one id across both services' logs
            response = self._http.request("GET", f"{self._base}{path}", headers=headers,
                                          timeout=self._timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise DIRECTORY_DOWN from exc
        return _Reply(response.status, response.data)

    def lookup(self, namespace_id: int, bearer_token: str) -> Namespace | None:
        """The namespace as the token's owner sees it; None if unknown or not theirs."""
        response = self._get(f"/namespaces/{namespace_id}", bearer_token)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DIRECTORY_DOWN
        body = response.json()
        return Namespace(id=body["id"], path=body["path"], kind=body["kind"],
                         is_top_level=body["parent_id"] is None, plan=body["plan"], role=body["role"],
                         billable_members=body["billable_members"],
                         addons_purchased=tuple(body["addons_purchased"]))
