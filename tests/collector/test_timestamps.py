"""A sample's timestamp must be unix seconds in a sane range: +-1e300 (or a clock years
ahead) is refused per sample with the reason `bad_timestamp`, the rest of the batch kept."""

from __future__ import annotations

import time

import pytest

from collector import Collector, WindowStore
from probes.samples import MAX_FUTURE_S, Sample, SampleError


def sample(sid: str, ts: float) -> dict[str, object]:
    return {"model": "m", "version": "v", "sample_id": sid, "timestamp": ts,
            "outputs": {"x": 0.5}}


@pytest.mark.parametrize("ts", [1e300, -1e300, -1.0, time.time() + 2 * MAX_FUTURE_S])
def test_an_out_of_range_timestamp_is_refused_alone(ts: float) -> None:
    store = WindowStore(None)
    collector = Collector(store)
    good = [sample(f"ok{i}", time.time() - i) for i in range(3)]
    as_sample = Sample("m", "v", "obj", ts, {"x": 0.5})  # the in-process path, no from_dict
    report = collector.ingest([*good, sample("bad", ts), as_sample])
    assert report.accepted == 3
    assert dict(report.rejected) == {"bad_timestamp": 2}
    assert store.values("m", "v", "x") == [0.5] * 3
    with pytest.raises(SampleError) as e:
        Sample.from_dict(sample("bad", ts))
    assert e.value.reason == "bad_timestamp" and "unix seconds" in e.value.message


def test_a_little_clock_skew_is_accepted() -> None:
    report = Collector(WindowStore(None)).ingest(
        [sample("skewed", time.time() + MAX_FUTURE_S / 2), sample("epoch", 0.0)])
    assert report.accepted == 2 and not report.rejected
