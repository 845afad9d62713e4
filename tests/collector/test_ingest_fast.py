"""The exact-type fast path of `Collector.ingest` decides nothing the generic validation would
decide otherwise: same reports, same stored windows and samples, item for item."""

from __future__ import annotations

import math
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import pytest

import collector.ingest as ingest_module
from collector import Collector, WindowStore
from probes.samples import Sample


def ok(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"model": "m", "version": "v", "sample_id": "id", "timestamp": 1.5,
                         "outputs": {"x": 0.5, "c": "cat"}}
    d.update(over)
    return {k: v for k, v in d.items() if v is not ...}


ITEMS: list[Any] = [
    ok(),
    ok(timestamp=2),
    ok(timestamp=True),
    ok(timestamp=math.nan),
    ok(timestamp=math.inf),
    ok(timestamp=1e300),  # far future and before the epoch: bad_timestamp on both paths
    ok(timestamp=-1e300),
    ok(outputs={"x": math.inf}),
    ok(outputs={"x": math.nan}),
    ok(outputs={"x": True}),
    ok(outputs={"x": 3}),
    ok(outputs={"x": [1.0, 2.0]}),
    ok(outputs={"x": [1, 2.0]}),
    ok(outputs={"x": [1.0, True]}),
    ok(outputs={"x": [1.0, math.nan]}),
    ok(outputs={"x": [[1.0]]}),
    ok(outputs={"x": (1.0, 2.0)}),
    ok(outputs={"x": "s" * 256}),
    ok(outputs={"x": "s" * 257}),
    ok(outputs={"x": [0.0] * 4097}),
    ok(outputs={"": 1.0}),
    ok(outputs={"n" * 129: 1.0}),
    ok(outputs={1: 1.0}),
    ok(outputs={"x": None}),
    ok(outputs={}),
    ok(outputs=None),
    ok(outputs=[1.0]),
    ok(outputs={f"f{i}": 1.0 for i in range(257)}),
    ok(outputs=OrderedDict(x=1.0)),
    ok(inputs=0),
    ok(inputs=[]),
    ok(inputs=None),
    ok(inputs={}),
    ok(inputs={"x": 9.0, "y": 2.0}),
    ok(inputs={"y": "z"}),
    ok(latency_s=-1.0),
    ok(latency_s=math.nan),
    ok(latency_s=0.25),
    ok(latency_s=1),
    ok(latency_s=True),
    ok(schema_version=2),
    ok(model=...),
    ok(model=""),
    ok(model="m" * 129),
    ok(model=5),
    ok(sample_id="s" * 128),
    OrderedDict(ok()),
    MappingProxyType(ok()),
    [("model", "m")],
    None,
    "text",
    Sample("m", "v", "id", 1.5, {"x": 0.5}),
    Sample("m", "v", "id", 2, {"x": 0.5}),
    Sample("m", "v", "", 1.5, {"x": 0.5}),
    Sample("m", "v", "id", 1.5, {"x": math.nan}),
    Sample("m", "v", "id", 1.5, {"x": [1.0, 2.0]}),  # type: ignore[dict-item]
    Sample("m", "v", "id", 1.5, MappingProxyType({"x": (1.0,)}), {"x": 2.0}),
    Sample("m", "v", "id", 1.5, {"x": 0.5}, None),  # type: ignore[arg-type]
    Sample("m", "v", "id", 1.5, {"x": 0.5}, latency_s=-3.0),
]


def run(items: list[Any], fast: bool, monkeypatch: pytest.MonkeyPatch,
        schema: tuple[str, ...] | None = None) -> tuple[Any, ...]:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(ingest_module, "_fast_row", lambda item, latest: None)
        store = WindowStore(None)
        col = Collector(store, accept=lambda mod, ver: mod == "m",
                        schema=None if schema is None else (lambda mod, ver: schema))
        report = col.ingest(items)
        windows = {k: store.values(*k) for k in store.keys()}
        stored = store.samples(["id", "s" * 128])
        return report, windows, {k: (v.model, v.version, v.timestamp, dict(v.outputs))
                                 for k, v in stored.items()}


@pytest.mark.parametrize("index", range(len(ITEMS)))
def test_fast_path_agrees_with_generic_validation_item_by_item(
        index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [ITEMS[index]]
    assert run(items, True, monkeypatch) == run(items, False, monkeypatch)


def test_fast_path_agrees_on_a_mixed_batch_with_a_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [{**x, "sample_id": f"id{i}"} if type(x) is dict and "sample_id" in x else x
             for i, x in enumerate(ITEMS)]
    items += [ok(model="other"), ok(outputs={"c": "a"})]
    fast = run(items, True, monkeypatch, schema=("x",))
    assert fast == run(items, False, monkeypatch, schema=("x",))
    report = fast[0]
    assert report.rejected["unknown_model"] == 1 and report.rejected["missing_feature"] >= 1
