"""The wire format, topic settings and the sink's behaviour with no broker (no Kafka needed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import Collector, WindowStore
from collector.kafka.topics import default_topics, load_specs
from probes.samples import Sample
from probes.sinks import from_url
from probes.sinks.kafka import KafkaSink, parse_kafka_url
from probes.sinks.kafka_wire import (
    MAX_DECODE_BYTES,
    MAX_DECODE_SAMPLES,
    WireError,
    decode_batch,
    encode_batch,
    record_key,
)

ROOT = Path(__file__).resolve().parents[2]


def _samples(n: int, model: str = "digits", version: str = "v3") -> list[Sample]:
    return [Sample.new(model, version, {"confidence": i / n, "predicted_class": str(i % 10)},
                       inputs={"emb": (0.5, float(i))} if i % 2 else None, latency_s=0.001 * i)
            for i in range(n)]


def test_round_trip_keeps_every_field() -> None:
    samples = _samples(50)
    model, version, dicts = decode_batch(encode_batch("digits", "v3", samples))
    assert (model, version) == ("digits", "v3")
    assert [Sample.from_dict(d) for d in dicts] == [Sample.from_dict(s.to_dict()) for s in samples]


def test_batch_is_compact_compared_with_per_sample_json() -> None:
    samples = _samples(500)
    naive = len(json.dumps([s.to_dict() for s in samples]).encode())
    assert len(encode_batch("digits", "v3", samples)) < 0.8 * naive


@pytest.mark.parametrize(("value", "reason"), [
    (b"", "not_benchwatch"),
    (b'{"m": "digits"}', "not_benchwatch"),
    (b"BW\x02{}", "unknown_version"),
    (b"BW\x01{not json", "bad_json"),
    (b"BW\x01[1, 2]", "bad_envelope"),
    (b'BW\x01{"m": 1, "v": "v", "s": []}', "bad_envelope"),
    # issue 16: the record that killed the consumer thread with a RecursionError
    (b"BW\x01" + b"[" * 100_000, "too_deep"),
    (b'BW\x01{"m": "m", "v": "v", "s": ' + b"[" * 5000 + b"]" * 5000 + b"}", "too_deep"),
    (b"BW\x01" + b" " * MAX_DECODE_BYTES, "too_large"),
    (b'BW\x01{"m": "m", "v": "v", "s": [' + b",".join([b"0"] * (MAX_DECODE_SAMPLES + 1))
     + b"]}", "too_large"),
])
def test_unreadable_records_are_rejected_with_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(WireError) as e:
        decode_batch(value)
    assert e.value.reason == reason
    if reason == "unknown_version":
        assert "version 2" in str(e.value) and "[1]" in str(e.value)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode)
       | st.recursive(st.none() | st.integers() | st.text(max_size=5),
                      lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from("mvsx"), inner, max_size=4),
                      max_leaves=30).map(lambda v: json.dumps(v).encode()))
def test_decoding_any_payload_gives_samples_or_a_wire_error(payload: bytes) -> None:
    """Whatever follows the header, decode_batch returns sample dicts that the collector
    judges one by one, or raises WireError with a reason; nothing else (the consumer
    dead-letters anything else anyway, as `undecodable`)."""
    try:
        _, _, dicts = decode_batch(b"BW\x01" + payload)
    except WireError as e:
        assert e.reason in ("too_deep", "too_large", "bad_json", "bad_envelope")
        return
    report = Collector(WindowStore(None)).ingest(dicts)
    assert report.accepted + report.duplicates + report.rejected_total == len(dicts)


def test_bad_rows_cost_one_sample_not_the_batch() -> None:
    good = encode_batch("digits", "v3", _samples(3))
    payload = json.loads(good[3:])
    payload["s"].append(["only", "three", "fields"])
    payload["s"].append(["id-nan", 1.0, None, {"confidence": float("nan")}, None])
    _, _, dicts = decode_batch(b"BW\x01" + json.dumps(payload).encode())
    report = Collector(WindowStore(None)).ingest(dicts)
    assert report.accepted == 3
    assert report.rejected_total == 2


def test_key_keeps_one_model_version_together() -> None:
    assert record_key("digits", "v3") == b"digits/v3"
    assert record_key("digits", "v3") != record_key("digits", "v4")


def test_topics_json_matches_the_code() -> None:
    from_file = load_specs(ROOT / "deploy" / "kafka" / "topics.json")
    assert from_file == default_topics()
    state = next(t for t in from_file if t.name.endswith(".window-state"))
    assert state.config["cleanup.policy"] == "compact"


@pytest.mark.parametrize("url", ["kafka://", "kafka://host:9092", "kafka://host/topic",
                                 "kafka://host:9092/a/b", "http://host:9092/topic"])
def test_bad_urls_say_what_to_write(url: str) -> None:
    with pytest.raises(ValueError, match="kafka://"):
        parse_kafka_url(url)


def test_url_with_several_brokers() -> None:
    assert parse_kafka_url("kafka://a:1,b:2/bw.samples") == (["a:1", "b:2"], "bw.samples")


def test_sink_with_no_broker_never_blocks_and_counts_drops() -> None:
    from benchwatch.services import free_port

    sink = from_url(f"kafka://127.0.0.1:{free_port()}/nowhere", buffer_size=1000)
    assert isinstance(sink, KafkaSink)
    try:
        batch = _samples(100)
        start = time.perf_counter()
        for _ in range(50):
            sink.send(batch)
        elapsed = time.perf_counter() - start
        assert elapsed < 0.05, f"send() took {elapsed:.3f}s for 5000 samples with Kafka down"
        stats = sink.stats()
        assert stats.received == 5000
        assert stats.dropped >= 4000
        assert stats.acked == 0
    finally:
        start = time.perf_counter()
        sink.close(timeout_s=1.0)
        assert time.perf_counter() - start < 5.0


def test_window_snapshot_round_trip_and_size_bound() -> None:
    from collector.kafka.snapshots import decode_snapshot, encode_snapshot, load_snapshot

    store = WindowStore(None)
    store.add([(f"s{i}", "m", "v", 1.0, {}, {"a": float(i), "b": str(i % 3), "emb": (1.0, float(i))})
               for i in range(100)])
    value, left_out = encode_snapshot(store, "m", "v", partition=3, next_offset=42)
    snap = decode_snapshot(value)
    assert (left_out, snap.partition, snap.next_offset) == ([], 3, 42)
    restored = WindowStore(None)
    load_snapshot(restored, snap)
    for feature in ("a", "b", "emb"):
        assert restored.values("m", "v", feature) == store.values("m", "v", feature)
    small, left_out = encode_snapshot(store, "m", "v", 3, 42, max_bytes=2000)
    assert left_out == ["emb"] and len(small) <= 2000
    with pytest.raises(WireError, match="unknown_version"):
        decode_snapshot(b"BWS\x09{}")
