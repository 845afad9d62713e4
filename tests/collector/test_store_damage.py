"""A window store file that is damaged or empty is never used silently: a corrupt page is a
clear error naming the file and what to do, a 0-byte file is said in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from collector import Collector, CollectorConfigError, WindowStore
from probes.samples import Sample
from tests.support.stores import damaged_store


def test_a_damaged_page_is_a_clear_error_at_open(tmp_path: Path) -> None:
    path = damaged_store(tmp_path / "windows.db")
    with pytest.raises(CollectorConfigError) as e:
        WindowStore(path)
    text = str(e.value)
    assert str(path) in text and "move it aside" in text and "--state" in text
    assert "\n" not in text


def test_a_zero_byte_store_is_said_in_the_log_and_starts_new(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "windows.db"
    path.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="collector.windows"):
        store = WindowStore(path)
    try:
        assert any("is empty (0 bytes)" in r.getMessage() and str(path) in r.getMessage()
                   for r in caplog.records)
        assert Collector(store).ingest([Sample("m", "v", "a", 1.7e9, {"x": 1.0})]).accepted == 1
    finally:
        store.close()


def test_a_good_store_opens_without_a_warning(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "windows.db"
    WindowStore(path).close()
    with caplog.at_level(logging.WARNING, logger="collector.windows"):
        WindowStore(path).close()
    assert not caplog.records
