from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.common.clock import FixedClock, OffsetClock


def test_offset_clock_is_shared_through_its_file(tmp_path: Path) -> None:
    path = str(tmp_path / "clock.json")
    writer, reader = OffsetClock(path), OffsetClock(path)
    assert abs(reader.now() - datetime.now(UTC)) < timedelta(seconds=5)
    for day in range(1, 31):  # many moves within one file-system tick are all seen
        writer.advance(timedelta(days=1))
        assert abs(reader.now() - datetime.now(UTC) - timedelta(days=day)) < timedelta(seconds=5)


def test_fixed_clock_needs_an_aware_start() -> None:
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 1, 1))
