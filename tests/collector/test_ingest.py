"""Collector: validation per reason, no partial writes, never raises on bad items."""

from __future__ import annotations

import math
from typing import Any

from collector import Collector, InProcessSink, WindowStore
from probes.samples import Sample


def good(i: int, model: str = "digits", **outputs: Any) -> dict[str, Any]:
    return {"model": model, "version": "v3", "sample_id": f"id{i}", "timestamp": 1.0 + i,
            "outputs": outputs or {"confidence": 0.9, "predicted_class": "3"}}


def make(accept: Any = None, schema: Any = None) -> tuple[WindowStore, Collector]:
    store = WindowStore(None)
    kwargs: dict[str, Any] = {}
    if accept:
        kwargs["accept"] = accept
    if schema:
        kwargs["schema"] = schema
    return store, Collector(store, **kwargs)


def test_bad_items_are_counted_per_reason_and_good_ones_in_the_batch_stored() -> None:
    store, col = make(accept=lambda m, v: m == "digits",
                      schema=lambda m, v: ["confidence", "predicted_class"])
    batch: list[Any] = [
        good(1),
        {**good(2), "model": "other"},  # unknown model
        good(3, confidence=0.5),  # lacks predicted_class
        good(4, confidence=math.nan, predicted_class="1"),  # NaN
        good(5, confidence="high", predicted_class=1),  # strings and numbers are both legal
        {**good(6), "timestamp": "yesterday"},
        {k: v for k, v in good(7).items() if k != "sample_id"},
        "not a sample",
        42,
        None,
        good(8),
    ]
    report = col.ingest(batch)
    assert report.accepted == 3  # 1, 5 (string/number features are both legal) and 8
    assert report.duplicates == 0
    assert dict(report.rejected) == {
        "unknown_model": 1, "missing_feature": 1, "not_finite": 1, "wrong_type": 1,
        "not_a_mapping": 3, "missing_field": 1}, report
    assert store.values("digits", "v3", "confidence") == [0.9, "high", 0.9]
    assert ("other", "v3", "confidence") not in store.keys()
    assert col.totals().rejected_total == 8


def test_a_rejected_sample_writes_nothing_at_all() -> None:
    store, col = make()
    report = col.ingest([good(1, a=1.0, b=math.inf)])
    assert report.accepted == 0 and report.rejected == {"not_finite": 1}
    assert store.keys() == []


def test_duplicates_within_and_across_batches() -> None:
    store, col = make()
    assert col.ingest([good(1), good(1), good(2)]).duplicates == 1
    report = col.ingest([good(1), good(3)])
    assert (report.accepted, report.duplicates) == (1, 1)
    assert len(store.values("digits", "v3", "confidence")) == 3
    totals = col.totals()
    assert (totals.accepted, totals.duplicates) == (3, 2)
    col.reset()
    assert col.totals().accepted == 0


def test_sample_objects_are_validated_too() -> None:
    store, col = make()
    bad = Sample("digits", "v3", "nan-one", 1.0, {"confidence": math.nan})
    vec = Sample("digits", "v3", "vec", 1.0, {"embedding": (0.1, 0.2)}, {"confidence": 0.5})
    report = col.ingest([bad, vec])
    assert report.accepted == 1 and report.rejected == {"not_finite": 1}
    # inputs share the namespace; an input named like an output is kept apart
    assert store.features("digits", "v3") == ["confidence", "embedding"]
    clash = Sample("digits", "v3", "clash", 1.0, {"confidence": 0.1}, {"confidence": 0.7})
    col.ingest([clash])
    assert store.values("digits", "v3", "input.confidence") == [0.7]


def test_a_raising_accept_callback_rejects_instead_of_crashing() -> None:
    def accept(m: str, v: str) -> bool:
        raise RuntimeError("boom")

    _, col = make(accept=accept)
    assert col.ingest([good(1)]).rejected == {"unknown_model": 1}


def test_not_iterable_input_is_counted_not_raised() -> None:
    _, col = make()
    assert col.ingest(7).rejected == {"wrong_type": 1}  # type: ignore[arg-type]


def test_in_process_sink_is_a_probe_sink() -> None:
    from probes.samples import Sink

    store, col = make()
    sink = InProcessSink(col)
    assert isinstance(sink, Sink)
    sink.send([Sample.new("digits", "v3", {"confidence": 0.4})])
    assert sink.last_report is not None and sink.last_report.accepted == 1
    assert store.values("digits", "v3", "confidence") == [0.4]
    sink.close()
