"""Kafka transport figures, side by side with the alternatives, on one local broker.

    .venv/bin/python benchmarks/kafka_throughput.py                 # full run (1-minute outage)
    .venv/bin/python benchmarks/kafka_throughput.py --quick         # 10 s outage, fewer samples

1. Producer: KafkaSink (batched, versioned JSON envelope, lz4) vs the naive alternative (one
   JSON record per sample through KafkaProducer.send): samples acknowledged per second.
2. End to end: KafkaSink in this process -> broker -> `benchwatch kafka consume` (a separate
   process, SQLite WAL window store): samples/s from the first send to the last sample stored.
3. Serving-thread cost per sampled request: a probed function with sample_rate=1 vs 0, with the
   Kafka sink and with a sink that discards (the sink runs on the drain thread, so the two
   should match); plus KafkaSink.send per sample on the drain thread.
4. Outage: 5 000 samples/s; the broker is stopped for --outage-s seconds and restarted; the time
   from the broker being back until the producer's backlog is delivered and the group has
   committed every record in the log at that moment (lag 0). Twice: with a local buffer that
   holds the whole outage (nothing dropped) and with the sink's default bound (drops, counted).

`--parts producer,e2e,serving,outage` runs a subset.

Medians of --repeats runs. The broker's JVM, the producer and the consumer compete for the same
cores: quote the figures with the machine's core count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.kafka.topics import create_topics, default_topics, describe  # noqa: E402
from probes.samples import Sample  # noqa: E402
from probes.sinks.kafka import KafkaSink  # noqa: E402


class Broker:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="benchwatch-kafka-bench-"))
        self.bootstrap = ""

    def _script(self, *args: str) -> str:
        env = {**os.environ, "KAFKA_PORT": "0"}
        out = subprocess.run([str(ROOT / "scripts" / "kafka.sh"), *args], env=env, text=True,
                             capture_output=True, check=True)
        return out.stdout

    def start(self) -> None:
        out = self._script("start", str(self.dir))
        self.bootstrap = out.strip().splitlines()[-1].split("=", 1)[1]

    def stop(self) -> None:
        self._script("stop", str(self.dir))

    def topic(self, partitions: int = 6) -> str:
        name = f"bench{time.monotonic_ns()}"
        create_topics(self.bootstrap, default_topics(name, partitions))
        return name


def make_samples(n: int, models: int = 4, seed: int = 0) -> list[Sample]:
    import random

    rng = random.Random(seed)
    return [Sample.new(f"model{i % models}", "v1",
                       {"predicted_class": str(rng.randrange(10)), "confidence": rng.random(),
                        "entropy": rng.random() * 2}, latency_s=0.002)
            for i in range(n)]


# -- 1. producer ------------------------------------------------------------------------------
def produce_ours(bootstrap: str, topic: str, samples: Sequence[Sample]) -> float:
    sink = KafkaSink(f"kafka://{bootstrap}/{topic}", buffer_size=len(samples) + 1)
    t0 = time.perf_counter()
    for i in range(0, len(samples), 256):  # the probe queue hands batches of up to 256
        sink.send(samples[i:i + 256])
    assert sink.flush(120), sink.stats()
    dt = time.perf_counter() - t0
    assert sink.stats().acked == len(samples), sink.stats()
    sink.close()
    return len(samples) / dt


def produce_naive(bootstrap: str, topic: str, samples: Sequence[Sample]) -> float:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="lz4",
                      linger_ms=20, batch_size=512 * 1024)
    t0 = time.perf_counter()
    for s in samples:
        p.send(topic, key=f"{s.model}/{s.version}".encode(), value=json.dumps(s.to_dict()).encode())
    p.flush(timeout=120)
    dt = time.perf_counter() - t0
    p.close()
    return len(samples) / dt


# -- 2. end to end ----------------------------------------------------------------------------
DECODE_ONLY = """
import json, sys, time
from kafka import KafkaConsumer, TopicPartition
from probes.sinks.kafka_wire import decode_batch
# no group: the transport ceiling needs no rebalancing (and kafka-python's can stall)
c = KafkaConsumer(bootstrap_servers=sys.argv[1], group_id=None, auto_offset_reset="earliest",
                  enable_auto_commit=False, max_poll_records=50)
c.assign([TopicPartition(sys.argv[2], p) for p in sorted(c.partitions_for_topic(sys.argv[2]))])
n = 0
while True:
    for recs in c.poll(timeout_ms=200).values():
        for r in recs:
            n += len(decode_batch(r.value)[2])
    print(json.dumps({"accepted": n, "assigned": [tp.partition for tp in c.assignment()]}),
          flush=True)
"""


def group_for(topic: str) -> str:
    """One consumer group per run: a member a killed run left behind cannot join the next."""
    return f"bench-{topic}"


def wait_shared(procs: Sequence[ConsumerProcess], partitions: int = 6, timeout_s: float = 60) -> None:
    """Until the consumers own every partition between them, each some."""
    deadline = time.monotonic() + timeout_s
    while sum(len(c.last.get("assigned", [])) for c in procs) < partitions or \
            not all(c.assigned.is_set() for c in procs):
        if time.monotonic() > deadline:
            raise TimeoutError("the consumers never shared the partitions: "
                               f"{[{k: c.last.get(k) for k in ('assigned', 'group_unowned', 'rejoins', 'restarts')} for c in procs]}")
        time.sleep(0.1)


class ConsumerProcess:
    """`benchwatch kafka consume` (SQLite windows), or a decode-only consumer (transport ceiling,
    every partition assigned by hand)."""

    def __init__(self, bootstrap: str, topic: str, state: Path, decode_only: bool = False) -> None:
        if decode_only:
            cmd = [sys.executable, "-c", DECODE_ONLY, bootstrap, topic]
        else:
            cmd = [sys.executable, "-m", "benchwatch", "--log-level", "WARNING", "kafka", "consume",
                   "--bootstrap", bootstrap, "--topic", topic, "--group", group_for(topic),
                   "--state", str(state), "--stats-interval", "0.2"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.last: dict[str, Any] = {}
        self.assigned = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.last = json.loads(line)
            except ValueError:
                continue
            if self.last.get("assigned"):
                self.assigned.set()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wait_accepted(consumers: Sequence[ConsumerProcess], n: int, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while sum(c.last.get("accepted", 0) for c in consumers) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"consumers stored {[c.last for c in consumers]} of {n}")
        time.sleep(0.01)
    return time.perf_counter()


def end_to_end(broker: Broker, samples: Sequence[Sample], consumers: int = 1,
               decode_only: bool = False) -> float:
    topic = broker.topic()
    with tempfile.TemporaryDirectory() as d:
        procs = [ConsumerProcess(broker.bootstrap, topic, Path(d) / f"w{i}.db", decode_only)
                 for i in range(consumers)]
        try:
            wait_shared(procs)
            sink = KafkaSink(f"kafka://{broker.bootstrap}/{topic}", buffer_size=len(samples) + 1)
            t0 = time.perf_counter()
            for i in range(0, len(samples), 256):
                sink.send(samples[i:i + 256])
            t1 = wait_accepted(procs, len(samples), 300)
            sink.close()
        finally:
            for c in procs:
                c.stop()
    return len(samples) / (t1 - t0)


# -- 3. serving-thread cost -------------------------------------------------------------------
class NullSink:
    def send(self, samples: Sequence[Sample]) -> None:
        pass

    def close(self) -> None:
        pass


def per_call_ns(fn: Callable[[float], Any], n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn(0.5)
    return (time.perf_counter_ns() - t0) / n


def serving_cost(bootstrap: str, topic: str, calls: int) -> dict[str, float]:
    import probes

    out: dict[str, float] = {}
    for label, sink in (("kafka", f"kafka://{bootstrap}/{topic}"), ("discard", NullSink())):
        for rate in (0.0, 1.0):
            probes.configure("bench", prometheus_port=0, gpu="off", sink=sink, sample_rate=rate,
                             queue_size=calls + 1)
            try:
                @probes.probe(model="bench", version="v1", outputs="regression")
                def predict(x: float) -> list[float]:
                    return [x]

                per_call_ns(predict, 2000)  # warm up
                out[f"{label}@{rate:g}"] = per_call_ns(predict, calls)
            finally:
                probes.shutdown()
    samples = make_samples(256)
    sink = KafkaSink(f"kafka://{bootstrap}/{topic}", buffer_size=10_000_000)
    t0 = time.perf_counter_ns()
    for _ in range(200):
        sink.send(samples)
    out["sink_send_per_sample"] = (time.perf_counter_ns() - t0) / (200 * 256)
    sink.close(timeout_s=30)
    return out


# -- 4. outage --------------------------------------------------------------------------------
def outage(broker: Broker, rate: int, outage_s: float, keep_all: bool, consumers: int = 1,
           warm_s: float = 5.0) -> dict[str, float]:
    """keep_all: a local buffer big enough for the whole outage; else the sink's default bound
    (the probe then drops, and counts, what does not fit)."""
    topic = broker.topic()
    with tempfile.TemporaryDirectory() as d:
        procs = [ConsumerProcess(broker.bootstrap, topic, Path(d) / f"w{i}.db")
                 for i in range(consumers)]
        wait_shared(procs)
        sink = KafkaSink(f"kafka://{broker.bootstrap}/{topic}",
                         **({"buffer_size": int(rate * (outage_s + 30))} if keep_all else {}),
                         delivery_timeout_s=outage_s + 120)
        stop = threading.Event()
        pool = make_samples(1000)
        sent = [0]

        def produce() -> None:  # paced at `rate`, batches every 10 ms like the probe queue
            per_tick = max(1, rate // 100)
            start = time.perf_counter()
            while not stop.is_set():
                batch = [Sample.new(s.model, s.version, s.outputs) for s in pool[:per_tick]]
                sink.send(batch)
                sent[0] += len(batch)
                wait = start + sent[0] / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            time.sleep(warm_s)
            broker.stop()
            time.sleep(outage_s)
            t_restart = time.perf_counter()
            broker.start()
            t_up = t_drained = time.perf_counter()
            # caught up = the producer's backlog is delivered, and the group has committed
            # every record that was in the log at that moment
            target: dict[int, int] | None = None
            while True:
                st = sink.stats()
                if target is None and st.buffered + st.in_flight <= rate // 50:
                    t_drained = time.perf_counter()
                    target = {r["partition"]: r["end"]
                              for r in describe(broker.bootstrap, group_for(topic), topic)["partitions"]}
                if target is not None:
                    rows = describe(broker.bootstrap, group_for(topic), topic)["partitions"]
                    if all(r["committed"] >= target[r["partition"]] for r in rows):
                        break
                if time.perf_counter() - t_up > 300:
                    raise TimeoutError(f"no catch-up after 300 s: {st}, consumers {[c.last for c in procs]}")
                time.sleep(0.1)
            t_done = time.perf_counter()
            st = sink.stats()
        finally:
            stop.set()
            thread.join()
            sink.close(timeout_s=30)
            for c in procs:
                c.stop()
    return {"broker_start_s": t_up - t_restart, "catch_up_s": t_done - t_up,
            "producer_drained_s": t_drained - t_up,
            "during_outage_samples": rate * outage_s, "dropped": st.dropped, "failed": st.failed,
            "acked": st.acked, "rate": rate}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples, 10 s outage")
    ap.add_argument("--samples", type=int, default=None, help="samples per throughput run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--outage-s", type=float, default=None, help="broker outage (default 60, quick 10)")
    ap.add_argument("--rate", type=int, default=5000, help="samples/s during the outage test")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--parts", default="producer,e2e,serving,outage",
                    help="comma-separated subset of producer,e2e,serving,outage")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    n = args.samples or (50_000 if args.quick else 200_000)
    outage_s = args.outage_s if args.outage_s is not None else (10.0 if args.quick else 60.0)
    med = statistics.median
    reps = range(args.repeats)
    broker = Broker()
    broker.start()
    figures: dict[str, Any] = {"samples": n, "repeats": args.repeats, "cpus": os.cpu_count()}
    rows: list[tuple[str, str, str]] = []
    try:
        samples = make_samples(n)
        if "producer" in parts:
            ours = med(produce_ours(broker.bootstrap, broker.topic(), samples) for _ in reps)
            naive = med(produce_naive(broker.bootstrap, broker.topic(), samples) for _ in reps)
            figures.update(producer_ours_per_s=ours, producer_naive_per_s=naive)
            rows.append(("producer: KafkaSink, batched envelope (samples/s)", f"{ours:,.0f}",
                         f"naive 1 record/sample: {naive:,.0f} (x{ours / naive:.1f})"))
        if "e2e" in parts:
            one = med(end_to_end(broker, samples) for _ in reps)
            two = med(end_to_end(broker, samples, consumers=2) for _ in reps)
            dec = med(end_to_end(broker, samples, decode_only=True) for _ in reps)
            figures.update(end_to_end_per_s=one, end_to_end_2_consumers_per_s=two,
                           end_to_end_decode_only_per_s=dec)
            rows += [
                ("end to end, probe sink -> broker -> SQLite windows (samples/s)", f"{one:,.0f}",
                 "target >= 50,000 (1 drift worker)"),
                ("  same, 2 drift workers in one group (samples/s)", f"{two:,.0f}", ""),
                ("  same, consumer decodes only, no windows: transport ceiling", f"{dec:,.0f}", ""),
            ]
        if "serving" in parts:
            costs = [serving_cost(broker.bootstrap, broker.topic(), 20_000) for _ in reps]
            c = {k: med(x[k] for x in costs) for k in costs[0]}
            figures.update({f"ns_{k}": v for k, v in c.items()})
            rows += [
                ("serving thread, sampled - unsampled, Kafka sink (us/request)",
                 f"{(c['kafka@1'] - c['kafka@0']) / 1000:.2f}",
                 f"discarding sink: {(c['discard@1'] - c['discard@0']) / 1000:.2f}; target <= 2"),
                ("probe call, unsampled / sampled, Kafka sink (us)",
                 f"{c['kafka@0'] / 1000:.2f} / {c['kafka@1'] / 1000:.2f}", ""),
                ("KafkaSink.send on the drain thread (us/sample)",
                 f"{c['sink_send_per_sample'] / 1000:.3f}", ""),
            ]
        if "outage" in parts:
            for keep_all, workers in ((True, 1), (False, 1), (True, 2)):
                o = outage(broker, args.rate, outage_s, keep_all, workers)
                label = ("buffer holds the outage" if keep_all else "default 100k-sample buffer") \
                    + f", {workers} drift worker{'s' if workers > 1 else ''}"
                figures[f"outage_{'keep_all' if keep_all else 'default_buffer'}_{workers}"] = o
                rows += [
                    (f"outage {outage_s:g} s at {o['rate']}/s, {label}: broker start (s)",
                     f"{o['broker_start_s']:.1f}", ""),
                    ("  then backlog delivered and group lag 0 (s)", f"{o['catch_up_s']:.1f}",
                     f"target <= 10 (producer backlog delivered after {o['producer_drained_s']:.1f})"),
                    ("  samples dropped / failed / acknowledged",
                     f"{o['dropped']} / {o['failed']} / {o['acked']}", ""),
                ]
    finally:
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"benchwatch Kafka transport ({n:,} samples, median of {args.repeats}, "
          f"{os.cpu_count()} CPUs shared with other work)")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>16}  {note}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
