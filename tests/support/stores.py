"""A window store file with damaged pages, for the tests that a damaged store is refused."""

from __future__ import annotations

from pathlib import Path

from collector import Collector, WindowStore
from probes.samples import Sample

PAGE = 4096  # SQLite's default page size, which WindowStore keeps


def damaged_store(path: Path) -> Path:
    """A real store (500 samples) whose every page after the first (the schema) is overwritten."""
    store = WindowStore(path)
    Collector(store).ingest([Sample("m", "v", f"s{i}", 1.7e9, {"x": float(i)})
                             for i in range(500)])
    store.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * PAGE
    data[PAGE:] = b"\xa5" * (len(data) - PAGE)
    path.write_bytes(bytes(data))
    return path
