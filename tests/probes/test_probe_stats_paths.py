"""The fast paths of the output statistics give the same figures as the plain ones.

Small outputs go row by row through plain Python, larger batches through the vectorized path;
the sampled summaries come from `summarize_output`. These tests pin them to each other (and to
a direct numpy reference), so a speed-up cannot quietly change a statistic.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from probes import probe
from probes.state import ProbeState, Registry
from probes.stats import _classifier_batch, _classifier_row, record_output
from probes.summarize import summarize_output


def _figures(st: ProbeState) -> tuple[Any, ...]:
    t = st.snapshot().totals
    return dict(sorted(t.classes.items())), list(t.conf), t.conf_sum, list(t.ent), t.ent_sum, dict(t.invalid)


def _batches() -> list[np.ndarray[Any, Any]]:
    rng = np.random.default_rng(7)
    out = []
    for trial in range(120):
        n, k = int(rng.integers(1, 150)), int(rng.integers(2, 40))
        a = rng.normal(scale=[0.1, 1.0, 5.0, 40.0][trial % 4], size=(n, k))
        if trial % 3 == 0:  # probabilities, some batches mixed with logits
            a = np.exp(a) / np.exp(a).sum(1, keepdims=True)
            if trial % 2:
                a[: n // 2] = rng.normal(size=(n // 2, k))
        if trial % 5 == 0:
            a[rng.integers(0, n, 3), 0] = [np.nan, np.inf, -np.inf]
        if trial % 11 == 0:
            a[0] = 0.0
            a[0, 1] = 1.0  # one-hot probabilities: entropy exactly 0
        out.append(a.astype(np.float32) if trial % 7 == 0 else a)
    out.append(np.full((20, 10), np.nan))  # every row unusable
    return out


@pytest.mark.parametrize("i", range(121))
def test_batch_path_equals_row_path(i: int) -> None:
    a = _batches()[i]
    by_row, batched = ProbeState("m", "v"), ProbeState("m", "v")
    for r in a.tolist():
        _classifier_row(by_row, by_row.local.shard, r)
    _classifier_batch(batched, batched.local.shard, a)
    cls_r, conf_r, conf_sum_r, ent_r, ent_sum_r, inv_r = _figures(by_row)
    cls_b, conf_b, conf_sum_b, ent_b, ent_sum_b, inv_b = _figures(batched)
    assert (cls_r, conf_r, ent_r, inv_r) == (cls_b, conf_b, ent_b, inv_b)
    assert conf_sum_b == pytest.approx(conf_sum_r, rel=1e-12, abs=1e-12)
    assert ent_sum_b == pytest.approx(ent_sum_r, rel=1e-9, abs=1e-9)


def test_statistics_match_a_numpy_reference_and_the_sampled_summaries() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 3, 4, 5, 64, 300):  # both sides of the row/batch switch
        logits = rng.normal(scale=3.0, size=(n, 10)).astype(np.float32)
        st = ProbeState("m", "v")
        record_output(st, st.local.shard, logits, "auto")
        x = logits.astype(np.float64)
        p = np.exp(x - x.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        ent = -(p * np.log(p)).sum(1)
        t = st.snapshot().totals
        assert t.conf_sum == pytest.approx(p.max(1).sum(), rel=1e-9)
        assert t.ent_sum == pytest.approx(ent.sum(), rel=1e-9)
        assert sum(t.classes.values()) == n and sum(t.conf) == n and sum(t.ent) == n
        assert t.classes == {str(c): int(m) for c, m in enumerate(np.bincount(x.argmax(1))) if m}
        rows = summarize_output(logits)
        assert [r["predicted_class"] for r in rows] == [str(c) for c in x.argmax(1)]
        assert [r["confidence"] for r in rows] == pytest.approx(p.max(1).tolist(), rel=1e-9)
        assert [r["entropy"] for r in rows] == pytest.approx(ent.tolist(), rel=1e-7, abs=1e-12)


def test_summaries_of_non_finite_and_overflowing_rows() -> None:
    rows = summarize_output(np.array([[np.nan, 1.0, 2.0], [-np.inf, 0.0, 1.0], [1e308, 1e308, 0.0]]))
    assert rows[0] == rows[1] == {"predicted_class": None, "confidence": None, "entropy": None}
    assert rows[2]["predicted_class"] == "0" and rows[2]["confidence"] == pytest.approx(0.5)


class _Queue:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def offer(self, samples: list[Any]) -> bool:
        self.got.extend(samples)
        return True


def test_sampled_call_summarizes_only_the_rows_it_keeps() -> None:
    reg = Registry()
    q = _Queue()
    reg.sample_queue, reg.sample_rate = q, 1.0
    out = np.random.default_rng(0).normal(size=(1000, 10))
    f = probe(model="m", version="v", registry=reg, inputs=lambda x: {"n": float(len(x))})(lambda x: out)
    f(out)
    assert len(q.got) == 64
    assert [s.outputs for s in q.got] == summarize_output(out[:64])
    assert all(dict(s.inputs) == {"n": 1000.0} for s in q.got)
    ids = [s.sample_id for s in q.got]
    assert len(set(ids)) == 64
    for i in ids:  # uuid4().hex's format
        u = uuid.UUID(hex=i)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and u.hex == i
    assert reg.faults.counts()["sampling"] == 0
    st = reg.state("m", "v").snapshot().totals
    assert sum(st.classes.values()) == 1000  # statistics still count every row


@pytest.mark.parametrize("i", range(0, 121, 3))
def test_vectorized_summaries_equal_row_summaries(i: int) -> None:
    from probes.summarize import _classify_row, _classify_rows

    a = _batches()[i]
    vec, by_row = _classify_rows(a), [_classify_row(r) for r in a.tolist()]
    assert [r["predicted_class"] for r in vec] == [r["predicted_class"] for r in by_row]
    for v, r in zip(vec, by_row, strict=True):
        if r["confidence"] is None:
            assert v == r
        else:
            assert v["confidence"] == pytest.approx(r["confidence"], rel=1e-12)
            assert v["entropy"] == pytest.approx(r["entropy"], rel=1e-9, abs=1e-12)


def test_torch_outputs_keep_their_kind() -> None:
    torch = pytest.importorskip("torch")
    st = ProbeState("m", "v")
    record_output(st, st.local.shard, torch.tensor([3, 1, 3]), "auto")  # integer 1-D: labels
    assert st.snapshot().totals.classes == {"3": 2, "1": 1}
    logits = torch.tensor([[0.0, 5.0, 1.0]], dtype=torch.bfloat16)  # no numpy dtype: as float32
    assert summarize_output(logits)[0]["predicted_class"] == "1"
    x = torch.tensor([[0.1, 0.2, 0.7]], dtype=torch.float64)
    assert summarize_output(x)[0]["confidence"] == 0.7  # float64 kept: no rounding to float32


# ---- bounded work on huge outputs (probes.stats.MAX_STAT_VALUES) ----

def test_outputs_up_to_the_cap_are_read_whole() -> None:
    from probes.stats import MAX_STAT_VALUES

    a = np.random.default_rng(5).normal(size=(MAX_STAT_VALUES // 10, 10))
    whole, full = ProbeState("m", "v"), ProbeState("m", "v")
    record_output(whole, whole.local.shard, a, "auto")
    _classifier_batch(full, full.local.shard, a)
    assert _figures(whole) == _figures(full)


def test_apportion_keeps_totals_exact_and_proportional() -> None:
    from probes.stats import _apportion

    rng = np.random.default_rng(2)
    for _ in range(200):
        counts = rng.integers(0, 50, int(rng.integers(1, 30))).tolist()
        c = sum(counts)
        total = c * int(rng.integers(1, 1000)) + int(rng.integers(0, 7))
        got = _apportion(counts, total)
        assert sum(got) == (total if c else 0)
        for x, g in zip(counts, got, strict=True):
            assert abs(g - x * total / c if c else g) < 1  # each within one of its exact share


def test_huge_classifier_batch_is_subsampled_with_exact_totals() -> None:
    rng = np.random.default_rng(11)
    n = 200_000
    cls = rng.integers(0, 10, n)
    logits = rng.normal(size=(n, 10))
    logits[np.arange(n), cls] += 3.0
    logits[::97, 0] = np.nan  # ~1% unusable rows, also spread evenly
    st, ref = ProbeState("m", "v"), ProbeState("m", "v")
    record_output(st, st.local.shard, logits, "auto")
    _classifier_batch(ref, ref.local.shard, logits)  # the whole batch, for reference
    t, r = st.snapshot().totals, ref.snapshot().totals
    assert sum(t.classes.values()) + t.invalid["not_finite"] == n  # every row accounted for
    assert sum(t.conf) == sum(t.ent) == sum(t.classes.values())
    assert t.invalid["not_finite"] == pytest.approx(r.invalid["not_finite"], rel=0.2)
    for c in r.classes:  # class shares and means as the whole batch's, within sampling error
        assert t.classes[c] / n == pytest.approx(r.classes[c] / n, abs=0.02)
    assert t.conf_sum / sum(t.conf) == pytest.approx(r.conf_sum / sum(r.conf), abs=0.02)
    assert t.ent_sum / sum(t.ent) == pytest.approx(r.ent_sum / sum(r.ent), abs=0.03)


def test_huge_regression_and_labels_are_subsampled_with_exact_counts() -> None:
    rng = np.random.default_rng(4)
    values = rng.lognormal(size=(300_000, 3))
    values[5, 1] = np.inf
    st = ProbeState("m", "v")
    record_output(st, st.local.shard, values, "regression")
    t = st.snapshot().totals
    assert sorted(t.values) == ["value_0", "value_1", "value_2"]
    counted = sum(sum(c) for c, _ in t.values.values()) + t.invalid.get("not_finite", 0)
    assert counted == values.size
    for i in range(3):
        counts, total = t.values[f"value_{i}"]
        assert total / sum(counts) == pytest.approx(np.exp(0.5), rel=0.05)
    labels = rng.integers(0, 5, 1_000_003)
    lt = ProbeState("m", "v")
    record_output(lt, lt.local.shard, labels, "auto")
    got = lt.snapshot().totals.classes
    assert sum(got.values()) == labels.size and sorted(got) == ["0", "1", "2", "3", "4"]
    assert all(abs(m / labels.size - 0.2) < 0.02 for m in got.values())


def _vectorized_and_plain_loop(a: np.ndarray) -> tuple[Any, Any]:
    """Totals of a regression output recorded at once and value by value."""
    from probes.stats import _value

    vec, loop = ProbeState("m", "v"), ProbeState("m", "v")
    record_output(vec, vec.local.shard, a, "regression")
    for r in a.tolist():
        for i, x in enumerate(r):
            _value(loop, loop.local.shard, f"value_{i}", x)
    tv, tl = vec.snapshot().totals, loop.snapshot().totals
    return tv, tl


def test_vectorized_regression_equals_the_plain_loop() -> None:
    rng = np.random.default_rng(8)
    a = rng.normal(scale=100.0, size=(500, 4))
    a[3, 2] = np.nan
    a[7, 0] = -np.inf
    tv, tl = _vectorized_and_plain_loop(a)
    assert tv.invalid == tl.invalid == {"not_finite": 2}
    assert {k: c for k, (c, _) in tv.values.items()} == {k: c for k, (c, _) in tl.values.items()}
    for k, (_, s) in tl.values.items():
        assert tv.values[k][1] == pytest.approx(s, rel=1e-9)


def test_huge_torch_output_is_subsampled_before_the_host_copy() -> None:
    torch = pytest.importorskip("torch")
    st = ProbeState("m", "v")
    record_output(st, st.local.shard, torch.rand(2_000_000), "auto")
    (counts, total), = st.snapshot().totals.values.values()
    assert sum(counts) == 2_000_000 and total / 2_000_000 == pytest.approx(0.5, abs=0.02)


# ---- wide rows (a language model's vocabulary): bounded work per call, exact counts ----

VOCAB = 152_064  # one row of Qwen2's vocabulary: wider than MAX_STAT_VALUES, within MAX_ROW_VALUES


class _Clock:
    """A fake monotonic clock for the wide-row budget (probes.stats._clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    import probes.stats

    c = _Clock()
    monkeypatch.setattr(probes.stats, "_clock", c)
    return c


@pytest.fixture
def numbers_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the arrays the statistics reduce (every reduction goes through _record_array
    or the numpy fast paths): the work done, counted instead of timed."""
    import probes.stats as stats

    read: list[int] = []
    depth = [0]
    for name in ("_record_array", "_classifier_batch", "_classifier_row"):
        real = getattr(stats, name)

        def counting(st: Any, sh: Any, a: Any, *rest: Any, real: Any = real) -> Any:
            if not depth[0]:  # the outermost reduction only: _record_array calls the others
                read.append(len(a) if isinstance(a, list) else int(a.size))
            depth[0] += 1
            try:
                return real(st, sh, a, *rest)
            finally:
                depth[0] -= 1

        monkeypatch.setattr(stats, name, counting)
    return read


def _vocab_logits(n: int = 1, width: int = VOCAB, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).normal(scale=2.0, size=(n, width)).astype(np.float32)


def test_a_wide_row_is_read_once_per_interval_and_every_call_is_counted(clock: _Clock) -> None:
    from probes.stats import TOO_WIDE, WIDE_ROW_INTERVAL_S

    st = ProbeState("m", "v")
    outs = [_vocab_logits(seed=i) for i in range(7)]
    read = []
    for i, dt in enumerate([0.0, 0.2, 0.5, 0.35, 0.4, 0.7, 0.1]):  # at 0, .2, .7, 1.05, 1.45, 2.15, 2.25
        clock.now += dt * WIDE_ROW_INTERVAL_S
        before = sum(st.snapshot().totals.classes.values())
        record_output(st, st.local.shard, outs[i], "auto")
        if sum(st.snapshot().totals.classes.values()) > before:
            read.append(i)
    assert read == [0, 3, 5]  # the first call of each interval (the clock reads intervals)
    t = st.snapshot().totals
    assert t.invalid == {TOO_WIDE: 4}  # the calls not read: counted, not lost
    assert sum(t.classes.values()) + t.invalid[TOO_WIDE] == len(outs)
    assert sum(t.conf) == sum(t.ent) == 3
    # what was read is exact: the whole row, as a direct numpy reference computes it
    x = np.concatenate([outs[i] for i in read]).astype(np.float64)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert t.classes == {str(c): int(m) for c, m in enumerate(np.bincount(x.argmax(1))) if m}
    assert t.conf_sum == pytest.approx(p.max(1).sum(), rel=1e-9)
    assert t.ent_sum == pytest.approx(-(p * np.log(p)).sum(), rel=1e-9)


def test_a_row_wider_than_max_row_values_is_never_read(clock: _Clock, numbers_read: list[int]) -> None:
    """1 x 1 000 000 scores: every call is a new turn of the budget, still no value is read on
    the serving thread (counting the work rather than timing it), and every call is counted."""
    from probes.stats import TOO_WIDE

    out = _vocab_logits(width=1_000_000)
    outs: list[Any] = [out, out[0], out.tolist()]  # 2-D, 1-D scores (one classifier row), a list
    torch = None
    try:
        import torch
    except ImportError:
        pass
    if torch is not None:
        outs.append(torch.from_numpy(out))
    for a in outs:
        st = ProbeState("m", "v")
        for _ in range(20):
            clock.now += 10.0
            record_output(st, st.local.shard, a, "classifier" if isinstance(a, list) or a.ndim == 1 else "auto")
        t = st.snapshot().totals
        assert t.invalid == {TOO_WIDE: 20} and t.classes == {} and sum(t.conf) == 0
    assert numbers_read == []


def test_wide_rows_cost_a_shape_check_between_turns(clock: _Clock, numbers_read: list[int]) -> None:
    """The documented budget, as work: MAX_STAT_VALUES numbers per call at most, except one
    row of at most MAX_ROW_VALUES on the first call of each WIDE_ROW_INTERVAL_S."""
    from probes.stats import MAX_ROW_VALUES, WIDE_ROW_INTERVAL_S

    st = ProbeState("m", "v")
    out = _vocab_logits(n=8)
    calls = 1000
    for _ in range(calls):  # 1000 calls over 10 intervals
        clock.now += 10 * WIDE_ROW_INTERVAL_S / calls
        record_output(st, st.local.shard, out, "auto")
    assert len(numbers_read) == 10 and set(numbers_read) == {VOCAB} and VOCAB <= MAX_ROW_VALUES
    t = st.snapshot().totals
    assert sum(t.classes.values()) == 10 * 8  # each read row stands for the output's 8 rows
    assert t.invalid["too_wide"] == (calls - 10) * 8
    assert sum(t.classes.values()) + t.invalid["too_wide"] == calls * 8


def test_one_row_of_scores_is_read_whole_not_column_subsampled(clock: _Clock) -> None:
    """A 1-D float output with outputs="classifier" is one row: its top-1 class needs every
    column (a column subsample would miss it)."""
    row = np.zeros(50_000)
    row[31_337] = 9.0
    st = ProbeState("m", "v")
    record_output(st, st.local.shard, row, "classifier")
    assert st.snapshot().totals.classes == {"31337": 1}


def test_wide_regression_rows_share_an_overflow_histogram(clock: _Clock) -> None:
    rng = np.random.default_rng(9)
    a = rng.normal(scale=10.0, size=(40, 300))
    a[2, 250] = np.nan
    tv, tl = _vectorized_and_plain_loop(a)
    assert tv.invalid == tl.invalid == {"not_finite": 1}
    assert {k: c for k, (c, _) in tv.values.items()} == {k: c for k, (c, _) in tl.values.items()}
    assert "_overflow" in tv.values  # past the 100 names kept per model version
    for k, (_, s) in tl.values.items():
        assert tv.values[k][1] == pytest.approx(s, rel=1e-9)
    wide = rng.normal(size=(1, 20_000))  # one regression row wider than MAX_STAT_VALUES
    st = ProbeState("m", "v")
    record_output(st, st.local.shard, wide, "regression")  # a turn: read, every value counted
    record_output(st, st.local.shard, wide, "regression")  # same instant: counted as too_wide
    t = st.snapshot().totals
    assert sum(sum(c) for c, _ in t.values.values()) == 20_000 and t.invalid == {"too_wide": 20_000}


def test_probed_wide_outputs_are_counted_exactly_and_summarized_on_turns(clock: _Clock) -> None:
    reg = Registry()
    out = _vocab_logits()
    f = probe(model="llm", version="v", registry=reg)(lambda: out)
    for _ in range(50):
        assert f() is out
    clock.now += 5.0
    f()
    t = reg.state("llm", "v").snapshot().totals
    assert sum(t.ok) == 51 and reg.faults.counts()["output_stats"] == 0
    assert sum(t.classes.values()) == 2 and t.invalid == {"too_wide": 49}


class _SnapshotQueue(_Queue):
    """Takes snapshots like the real queue (offer_snapshot) and counts drops by reason."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: list[tuple[Any, ...]] = []
        self.dropped: dict[str, int] = {}

    def offer_snapshot(self, *entry: Any) -> bool:
        self.snapshots.append(entry)
        return True

    def count_dropped(self, reason: str, n: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


def test_sampled_snapshots_bound_columns_as_well_as_rows() -> None:
    from probes.sampling import MAX_SAMPLE_ROWS, build_samples
    from probes.summarize import MAX_ROW_VALUES

    reg = Registry()
    q = _SnapshotQueue()
    reg.sample_queue, reg.sample_rate = q, 1.0
    cases: list[tuple[Any, str, int]] = [  # output, outputs=, rows copied (0: dropped as too_wide)
        (_vocab_logits(n=3), "auto", 1),  # one vocabulary row fits, a second would not
        (_vocab_logits(n=200, width=10_000), "auto", MAX_ROW_VALUES // 10_000),
        (_vocab_logits(n=200, width=10), "auto", MAX_SAMPLE_ROWS),  # narrow: 64 rows as before
        (_vocab_logits(n=2, width=1_000_000), "auto", 0),
        (_vocab_logits(width=1_000_000)[0], "classifier", 0),  # 1-D scores: one too-wide row
    ]
    for out, spec, rows in cases:
        q.snapshots.clear()
        probe(model="m", version=f"s-{spec}", registry=reg, outputs=spec)(lambda out=out: out)()
        if not rows:
            assert q.snapshots == []  # nothing copied
            continue
        (entry,) = q.snapshots
        n, nbytes, data = entry[0], entry[1], entry[6]
        assert n == rows and data.shape[0] == rows and nbytes == data.nbytes <= MAX_ROW_VALUES * 4
        samples = build_samples(entry)
        assert [s.outputs for s in samples] == summarize_output(out[:rows])
    assert q.dropped == {"too_wide": 3}  # 2 rows + 1 row, the samples they would have become
    assert reg.faults.counts()["sampling"] == 0


def test_real_queue_counts_too_wide_samples_as_dropped() -> None:
    from probes.sampling import SampleQueue
    from probes.state import Faults

    class Sink:
        def __init__(self) -> None:
            self.got: list[Any] = []

        def send(self, batch: Any) -> None:
            self.got.extend(batch)

        def close(self) -> None:
            pass

    sink = Sink()
    q = SampleQueue(sink, Faults(), flush_interval_s=3600.0)
    try:
        reg = Registry()
        reg.sample_queue, reg.sample_rate = q, 1.0
        wide, vocab = _vocab_logits(n=4, width=300_000), _vocab_logits()
        f = probe(model="m", version="v", registry=reg)(lambda x: x)
        f(wide)
        f(vocab)
        q.flush()
        assert q.dropped == {"queue_full": 0, "sink_error": 0, "too_wide": 4}
        (s,) = sink.got
        assert s.outputs["predicted_class"] == str(int(vocab.argmax()))
    finally:
        q.close()
