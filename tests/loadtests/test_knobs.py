"""The profiles' plain parts: who gets which population entry, how answers are read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests import knobs


def test_each_entry_goes_to_one_user_and_processes_split_the_list(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "population.json"
    path.write_text(json.dumps({"free": [{"user_id": i} for i in range(7)], "premium": []}))
    pool = knobs.Pool("free", path)
    taken = [pool.take() for _ in range(8)]
    assert [p["user_id"] for p in taken if p] == list(range(7)) and taken[-1] is None
    assert knobs.Pool("premium", path).take() is None
    assert knobs.Pool("analyst", path).take() is None  # a kind the file does not have
    monkeypatch.setenv("LOADTEST_PARTITION", "1/3")
    second = knobs.Pool("free", path)
    assert [second.take()["user_id"] for _ in range(2)] == [1, 4]  # type: ignore[index]


def test_problem_codes_from_our_answers_and_from_stripe() -> None:
    assert knobs.problem_code({"code": "card_declined", "status": 402}) == "card_declined"
    assert knobs.problem_code({"error": {"code": "card_declined", "message": "..."}}) == "card_declined"
    assert knobs.problem_code({"id": 1}) is None
    assert knobs.problem_code(None) is None and knobs.problem_code([1]) is None


def test_think_time_and_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADTEST_WAIT", "0.5-2")
    assert knobs.think_time() == (0.5, 2.0)
    monkeypatch.setenv("LOADTEST_WAIT", "1")
    assert knobs.think_time() == (1.0, 1.0)
    monkeypatch.setenv("LOADTEST_3DS_SHARE", "1.5")
    with pytest.raises(ValueError, match="between 0 and 1"):
        knobs.share("LOADTEST_3DS_SHARE", 0.15)


def test_experiment_keys_come_from_the_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPERIMENT_KEYS", raising=False)
    assert knobs.experiment_keys() == ["default-seats", "duo-pro-upsell", "smb-discount-prompt",
                                       "ultimate-trial-length"]
    monkeypatch.setenv("EXPERIMENT_KEYS", "a, b")
    assert knobs.experiment_keys() == ["a", "b"]
