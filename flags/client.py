"""Feature flags and experiment assignment: a GrowthBook SDK payload evaluated
locally with the official `growthbook` SDK.

The payload (checked by flags/payload.py) comes from a file, the services'
GROWTHBOOK_PAYLOAD_FILE (`experiments/payload.json` by default); when an API
host and a client key are configured it is refreshed from there. Either way
refreshing happens on a background thread (stale-while-revalidate): a request
only ever reads the last good payload, never waits on the network. A payload that does
not parse or validate is refused with one error log line and the last good
one stays, so a bad edit cannot switch every experiment off by accident; an
edit that removes a feature or its rule is the kill switch.

Evaluation calls the SDK's core evaluator with a context built once per
payload rather than constructing a `GrowthBook` object per call: parsing the
features is the expensive part and must not happen on the request path.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from growthbook.common_types import EvaluationContext, StackContext, UserContext
from growthbook.core import eval_feature

from flags.exposures import Exposure
from flags.payload import Payload, PayloadError, parse_payload

log = logging.getLogger(__name__)

FILE_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Evaluation:
    feature: str
    value: Any
    source: str  # the SDK's: defaultValue, force, experiment, unknownFeature, ...
    exposure: Exposure | None = None


def _exposure(feature: str, result: Any) -> Exposure | None:
    if result.source != "experiment" or result.experimentResult is None:
        return None
    outcome = result.experimentResult
    if not outcome.inExperiment or not outcome.hashUsed:
        return None
    return Exposure(experiment=result.experiment.key, variation=int(outcome.variationId),
                    variation_name=outcome.name or outcome.key, feature=feature,
                    hash_attribute=outcome.hashAttribute, hash_value=str(outcome.hashValue))


class Flags:
    """The current payload of one process, and how to refresh it."""

    def __init__(self, payload: Payload, *, source_file: Path | None = None,
                 api_host: str | None = None, client_key: str | None = None,
                 refresh_seconds: float = 60.0, timeout_seconds: float = 5.0) -> None:
        self._payload = payload
        self._source_file = source_file
        self._file_mtime = source_file.stat().st_mtime_ns if source_file and source_file.exists() else 0
        self._api_url = (f"{api_host.rstrip('/')}/api/features/{client_key}"
                         if api_host and client_key else None)
        self._refresh_seconds = refresh_seconds
        self._timeout = timeout_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> Flags:
        """Start-up: the file must be good (there is no earlier payload to fall back on)."""
        path = Path(path)
        try:
            payload = parse_payload(path.read_bytes())
        except (OSError, PayloadError) as exc:
            raise RuntimeError(f"feature flag payload {path}: {exc}") from None
        return cls(payload, source_file=path, **options)

    @classmethod
    def from_settings(cls, settings: Any) -> Flags:
        return cls.from_file(settings.growthbook_payload_file, api_host=settings.growthbook_api_host,
                             client_key=settings.growthbook_client_key,
                             refresh_seconds=settings.growthbook_refresh_seconds)

    @property
    def payload(self) -> Payload:
        return self._payload

    # --- evaluation (the request path: no I/O) ------------------------------
    def evaluate(self, feature: str, attributes: dict[str, Any]) -> Evaluation:
        context = EvaluationContext(user=UserContext(attributes=attributes),
                                    global_ctx=self._payload.global_ctx,
                                    stack=StackContext(evaluated_features=set()))
        result = eval_feature(feature, context)
        return Evaluation(feature=feature, value=result.value, source=result.source,
                          exposure=_exposure(feature, result))

    # --- refreshing (background) ------------------------------------------
    def _accept(self, raw: bytes, origin: str) -> bool:
        try:
            payload = parse_payload(raw)
        except PayloadError as exc:
            log.error("feature flag payload from %s rejected, keeping the last good one: %s", origin, exc)
            return False
        if payload.raw != self._payload.raw:
            self._payload = payload  # one reference swap: readers see the old or the new, whole
            log.info("feature flag payload updated from %s (%s)", origin, payload.version or "undated")
        return True

    def refresh_from_file(self) -> bool:
        """Reload the payload file if it changed since the last look."""
        if self._source_file is None:
            return False
        try:
            mtime = self._source_file.stat().st_mtime_ns
            if mtime == self._file_mtime:
                return False
            self._file_mtime = mtime
            raw = self._source_file.read_bytes()
        except OSError as exc:
            log.error("feature flag payload %s unreadable, keeping the last good one: %s",
                      self._source_file, exc)
            return False
        return self._accept(raw, str(self._source_file))

    def refresh_from_api(self) -> bool:
        if self._api_url is None:
            return False
        try:
            response = requests.get(self._api_url, timeout=self._timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            log.warning("GrowthBook API unreachable, keeping the last good payload: %s", exc)
            return False
        return self._accept(response.content, "the GrowthBook API")

    def _run(self) -> None:
        next_fetch = 0.0  # from the API at once, then every refresh_seconds
        while not self._stop.is_set():
            if self._api_url is None:
                self.refresh_from_file()
            elif time.monotonic() >= next_fetch:
                self.refresh_from_api()
                next_fetch = time.monotonic() + self._refresh_seconds
            self._stop.wait(FILE_POLL_SECONDS)

    def start(self) -> Flags:
        """Refresh in the background: from the API when configured, else from the file."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="flag-refresh", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
