"""Sample round trip and strict validation, reason codes, sinks.from_url."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes import ConfigError
from probes.samples import MAX_FEATURES, MAX_VECTOR_LEN, REASONS, Sample, SampleError
from probes.sinks import from_url


def _valid() -> dict[str, object]:
    return Sample.new("digits", "v3", {"predicted_class": "3", "confidence": 0.9, "emb": (0.1, 0.2)},
                      inputs={"mean_pixel": 0.4}, latency_s=0.01).to_dict()


def test_round_trip_and_json_safe() -> None:
    d = _valid()
    assert d["outputs"]["emb"] == [0.1, 0.2]  # type: ignore[index]
    s = Sample.from_dict(d)
    assert s.outputs["emb"] == (0.1, 0.2) and s.inputs["mean_pixel"] == 0.4
    assert Sample.from_dict(s.to_dict()) == s


def test_sample_ids_are_unique() -> None:
    assert len({Sample.new("m", "v", {}).sample_id for _ in range(1000)}) == 1000


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda d: d.pop("model"), "missing_field"),
    (lambda d: d.update(extra=1), "unknown_field"),
    (lambda d: d.update(model=3), "wrong_type"),
    (lambda d: d.update(version=""), "empty"),
    (lambda d: d.update(timestamp=math.nan), "not_finite"),
    (lambda d: d.update(timestamp=True), "wrong_type"),
    (lambda d: d.update(outputs={"x": math.inf}), "not_finite"),
    (lambda d: d.update(outputs={"x": {"nested": 1}}), "wrong_type"),
    (lambda d: d.update(outputs=[1, 2]), "wrong_type"),
    (lambda d: d.update(outputs={f"f{i}": 1.0 for i in range(MAX_FEATURES + 1)}), "too_large"),
    (lambda d: d.update(outputs={"v": [0.0] * (MAX_VECTOR_LEN + 1)}), "too_large"),
    (lambda d: d.update(outputs={"s": "x" * 10_000}), "too_large"),
    (lambda d: d.update(latency_s=-1.0), "wrong_type"),
])
def test_invalid_samples_raise_with_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    d = _valid()
    mutate(d)
    with pytest.raises(SampleError) as e:
        Sample.from_dict(d)
    assert e.value.reason == reason and e.value.reason in REASONS
    assert e.value.message


def test_not_a_mapping() -> None:
    with pytest.raises(SampleError) as e:
        Sample.from_dict([1, 2])
    assert e.value.reason == "not_a_mapping"


features = st.dictionaries(
    st.text(min_size=1, max_size=20),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
              st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5).map(tuple)),
    max_size=10,
)


@given(outputs=features, inputs=features)
def test_round_trip_property(outputs, inputs) -> None:  # type: ignore[no-untyped-def]
    s = Sample.new("m", "v", outputs, inputs=inputs)
    assert Sample.from_dict(s.to_dict()) == s


def test_from_url_rejects_unknown_scheme_with_hint() -> None:
    with pytest.raises(ConfigError, match="kafka://host:port/topic"):
        from_url("ftp://x")
    with pytest.raises(ConfigError):
        from_url("")
