"""Batched calls carry each row's own inputs: `inputs=` returning one mapping per row (the
decorator) and `ProbeMiddleware(inputs=, outputs=)` on a FastAPI app served by a real uvicorn.
Every row's input features are tied to its output, so a sample whose inputs came from another
row is caught."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from benchwatch.services import free_port
from probes import ProbeMiddleware, Sample, configure, probe, shutdown
from probes.sampling import MAX_SAMPLE_ROWS
from probes.state import Registry
from tests.support.wait import wait_until


class ListSink:
    def __init__(self) -> None:
        self.got: list[Sample] = []
        self.lock = threading.Lock()

    def send(self, samples: Sequence[Sample]) -> None:
        with self.lock:
            self.got.extend(samples)

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    shutdown()


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """n mixed rows: column 0 is the row's class (0..9), column 1 a value derived from it."""
    cls = rng.integers(0, 10, n)
    return np.column_stack([cls, cls * 10.0 + 0.5]).astype(float)


def _sampled(reg: Registry, sink: ListSink, n: int) -> list[Sample]:
    queue = reg.sample_queue
    assert queue is not None
    wait_until(lambda: (queue.flush(), len(sink.got) >= n)[1],  # type: ignore[attr-defined]
               timeout_s=60, what=f"{n} samples")
    return list(sink.got)


def test_each_row_of_a_batch_gets_its_own_inputs() -> None:
    reg, sink = Registry(), ListSink()
    configure("rows", prometheus_port=0, gpu="off", sink=sink, sample_rate=1.0, registry=reg)

    @probe(model="tab", version="v1", registry=reg, outputs="classifier",
           inputs=lambda x: [{"cls": float(r[0]), "v": float(r[1])} for r in x])
    def predict(x: np.ndarray) -> np.ndarray:
        probs = np.full((len(x), 10), 0.01)
        probs[np.arange(len(x)), x[:, 0].astype(int)] = 0.91
        return probs

    rng = np.random.default_rng(3)
    sizes = [1, 3, 7, 16, MAX_SAMPLE_ROWS + 6]  # the last is cut to MAX_SAMPLE_ROWS rows
    for n in sizes:
        predict(_rows(rng, n))
    expected = sum(min(n, MAX_SAMPLE_ROWS) for n in sizes)
    got = _sampled(reg, sink, expected)
    assert len(got) == expected
    for s in got:
        assert s.outputs["predicted_class"] == str(int(s.inputs["cls"])), s  # type: ignore[arg-type]
        assert s.inputs["v"] == s.inputs["cls"] * 10.0 + 0.5  # type: ignore[operator]
    # the rows really were mixed: a copy of row 0's inputs would show one class per call
    assert len({s.inputs["cls"] for s in got}) == 10
    assert sum(reg.faults.counts().values()) == 0


def test_row_count_mismatch_is_a_fault_not_a_mislabelled_sample() -> None:
    reg, sink = Registry(), ListSink()
    configure("rows", prometheus_port=0, gpu="off", sink=sink, sample_rate=1.0, registry=reg)

    @probe(model="tab", version="v1", registry=reg, outputs="classifier",
           inputs=lambda x: [{"cls": float(r[0])} for r in x[:-1]])  # one row short
    def predict(x: np.ndarray) -> np.ndarray:
        return np.tile(np.linspace(0.01, 0.19, 10), (len(x), 1))

    predict(_rows(np.random.default_rng(4), 5))
    queue = reg.sample_queue
    assert queue is not None
    wait_until(lambda: (queue.flush(), reg.faults.counts().get("sampling", 0) >= 1)[1],  # type: ignore[attr-defined]
               timeout_s=60, what="a sampling fault")
    assert sink.got == []


def test_without_outputs_each_input_row_is_a_sample() -> None:
    reg, sink = Registry(), ListSink()
    configure("rows", prometheus_port=0, gpu="off", sink=sink, sample_rate=1.0, registry=reg)

    @probe(model="tab", version="v1", registry=reg, outputs=None,
           inputs=lambda rows: [{"x": float(r)} for r in rows])
    def predict(rows: list[float]) -> None:
        return None

    predict([1.0, 2.0, 3.0])
    got = _sampled(reg, sink, 3)
    assert sorted(s.inputs["x"] for s in got) == [1.0, 2.0, 3.0]  # type: ignore[type-var]


fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")


@pytest.fixture
def served() -> Iterator[tuple[str, Registry, ListSink]]:
    reg, sink = Registry(), ListSink()
    configure("asgi-rows", prometheus_port=0, gpu="off", sink=sink, sample_rate=1.0,
              registry=reg)
    app = fastapi.FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        return {"classes": [int(r[0]) for r in body["rows"]]}

    app.add_middleware(
        ProbeMiddleware, routes={"/predict": ("tab", "v1")}, registry=reg,
        inputs=lambda req: [{"cls": float(r[0]), "v": float(r[1])} for r in req["rows"]],
        outputs=lambda resp: [{"predicted_class": str(c)} for c in resp["classes"]])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    wait_until(lambda: server.started, timeout_s=60, what="uvicorn")
    yield f"http://127.0.0.1:{port}", reg, sink
    server.should_exit = True
    th.join(timeout=10)


def test_middleware_gives_each_row_its_own_inputs(served: tuple[str, Registry, ListSink]) -> None:
    url, reg, sink = served
    rng = np.random.default_rng(5)
    sizes = [1, 4, 9, 2]
    for n in sizes:
        body = json.dumps({"rows": _rows(rng, n).tolist()}).encode()
        req = urllib.request.Request(url + "/predict", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            assert r.status == 200
            assert len(json.loads(r.read())["classes"]) == n
    got = _sampled(reg, sink, sum(sizes))
    assert len(got) == sum(sizes)
    for s in got:
        assert (s.model, s.version) == ("tab", "v1")
        assert s.outputs["predicted_class"] == str(int(s.inputs["cls"])), s  # type: ignore[arg-type]
        assert s.inputs["v"] == s.inputs["cls"] * 10.0 + 0.5  # type: ignore[operator]
        assert s.latency_s is not None and s.latency_s > 0
    assert len({s.inputs["cls"] for s in got}) > 3
