"""A model benchwatch does not ship, through suite build, baseline build and bench: a
scikit-learn classifier on 30 tabular features exported with skl2onnx (output 0 the labels,
output 1 the probabilities, as a ZipMap list of dicts or a tensor), a suite built from its CSV
and Parquet data, the onnxruntime backend, the ORT-session probe, and an HTTP endpoint that
speaks its own JSON and has no GET /info (a stdlib server in a thread, serving the real ONNX
model), mapped by request template and response path or by an adapter."""

from __future__ import annotations

import csv
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchwatch.cli import main
from benchwatch.errors import UsageError

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

QUICK = ["--queries", "200", "--warmup", "20", "--offline-samples", "500", "--no-server",
         "--no-robustness", "--no-progress", "--energy", "off"]


@dataclass(frozen=True)
class OwnModel:
    onnx_zipmap: Path  # skl2onnx's default: probabilities as a list of {label: p} dicts
    onnx_tensor: Path  # options={"zipmap": False}: probabilities as a float tensor
    csv: Path  # 30 feature columns and a text label, the held-out rows
    x_test: np.ndarray
    y_test: np.ndarray  # the model's classes: 0 malignant, 1 benign
    proba: np.ndarray  # scikit-learn's own predict_proba on x_test
    accuracy: float


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> OwnModel:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = tmp_path_factory.mktemp("own")
    data = load_breast_cancer()
    x, y = data.data.astype(np.float32), data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[:400], y[:400])
    zipmap, tensor = d / "bc.onnx", d / "bc-tensor.onnx"
    zipmap.write_bytes(skl2onnx.to_onnx(model, x[:1]).SerializeToString())
    tensor.write_bytes(skl2onnx.to_onnx(model, x[:1], options={
        LogisticRegression: {"zipmap": False}}).SerializeToString())
    x_test, y_test = x[400:], y[400:]
    path = d / "data.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([n.replace(" ", "_") for n in data.feature_names] + ["diagnosis"])
        for row, t in zip(x_test, y_test, strict=True):
            w.writerow([repr(float(v)) for v in row] + [data.target_names[t]])
    return OwnModel(zipmap, tensor, path, x_test, y_test, model.predict_proba(x_test),
                    float((model.predict(x_test) == y_test).mean()))


def build_suite(own: OwnModel, out: Path, *extra: str) -> Path:
    code = main(["suite", "build", "--from", str(own.csv), "--label", "diagnosis",
                 "--model", "bc", "--version", "v1", "-o", str(out),
                 "--classes", "malignant,benign", *extra])
    assert code == 0
    return out / "bc.json"


def test_suite_build_from_csv_and_parquet(own: OwnModel, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from benchwatch.bench.suites import load_suite

    suite = load_suite(build_suite(own, tmp_path / "csv"))
    assert len(suite) == len(own.y_test) and suite.input_shape == (30,)
    assert suite.metadata["class_labels"] == ["malignant", "benign"]
    assert suite.metadata["model"] == "bc" and suite.metadata["version"] == "v1"
    np.testing.assert_array_equal(suite.expected, own.y_test)  # index k = probability column k
    np.testing.assert_allclose(suite.inputs, own.x_test)
    # Parquet with numeric labels: sorted numerically, no --classes needed
    table = pa.table({**{f"f{i}": own.x_test[:, i] for i in range(30)},
                      "y": own.y_test.astype(np.int64)})
    pq.write_table(table, tmp_path / "data.parquet")
    assert main(["suite", "build", "--from", str(tmp_path / "data.parquet"), "--label", "y",
                 "--model", "bc", "--version", "v1", "-o", str(tmp_path / "pq"),
                 "--name", "bc-pq"]) == 0
    pq_suite = load_suite(tmp_path / "pq" / "bc-pq.json")
    assert pq_suite.metadata["class_labels"] == ["0", "1"]
    np.testing.assert_array_equal(pq_suite.expected, own.y_test)


def test_suite_build_bad_input_is_one_line_and_exit_2(own: OwnModel, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,x\n3,oops,z\n")
    assert main(["suite", "build", "--from", str(bad), "--label", "y", "--model", "m",
                 "--version", "v", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'b'" in err and "row 2" in err
    assert main(["suite", "build", "--from", str(own.csv), "--label", "nope", "--model", "m",
                 "--version", "v", "-o", str(tmp_path)]) == 2
    assert "no label column 'nope'" in capsys.readouterr().err
    assert main(["suite", "build", "--from", str(own.csv), "--label", "diagnosis", "--model",
                 "m", "--version", "v", "-o", str(tmp_path), "--classes", "malignant"]) == 2
    assert "benign" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["zipmap", "tensor"])
def test_onnxruntime_backend_reads_the_probabilities(own: OwnModel, kind: str) -> None:
    from benchwatch.bench.backends import OnnxRuntimeBackend

    b = OnnxRuntimeBackend(own.onnx_zipmap if kind == "zipmap" else own.onnx_tensor, "bc", "v1")
    assert b.info.num_outputs == (None if kind == "zipmap" else 2)
    np.testing.assert_allclose(b.predict(own.x_test), own.proba, atol=1e-5)


def test_bench_on_a_skl2onnx_model(own: OwnModel, tmp_path: Path) -> None:
    from drift.baseline import Baseline

    suite = build_suite(own, tmp_path / "suite")
    assert main(["bench", "--model", str(own.onnx_zipmap), "--suite", str(suite), "--name", "bc",
                 "--version", "v1", "-o", str(tmp_path / "runs"), *QUICK]) == 0
    (run,) = (tmp_path / "runs").glob("bc-*")
    doc = json.loads((run / "results.json").read_text())
    assert doc["runs"][0]["accuracy"]["accuracy"] == pytest.approx(own.accuracy)
    b = Baseline.load(run / "baseline-onnxruntime.json")
    assert (b.model, b.version) == ("bc", "v1")
    assert b.features["predicted_class"].kind == "categorical"


def test_baseline_build_types_predicted_class_as_bench_does(tmp_path: Path) -> None:
    """A reference CSV whose predicted_class holds numbers: categorical, as in bench baselines
    (the probe sends "0"/"1"); 1, 1.0 and "1" are one class."""
    from drift.baseline import Baseline

    ref = tmp_path / "ref.csv"
    rows = ["predicted_class,confidence,mean_radius,code"] + [
        f"{c},{0.6 + 0.01 * (i % 30)},{10 + i % 7},{i % 3}" for i, c in
        enumerate(["0", "1.0", "1"] * 100)]
    ref.write_text("\n".join(rows) + "\n")
    assert main(["baseline", "build", "--from", str(ref), "--model", "bc", "--version", "v1",
                 "-o", str(tmp_path / "b.json")]) == 0
    b = Baseline.load(tmp_path / "b.json")
    kinds = {n: f.kind for n, f in b.features.items()}
    assert kinds == {"predicted_class": "categorical", "confidence": "numeric",
                     "mean_radius": "numeric", "code": "numeric"}
    assert sorted(b.features["predicted_class"].categories) == ["0", "1"]


def test_ort_session_probe_reads_the_probabilities(own: OwnModel) -> None:
    from probes import probe
    from probes.state import Registry

    for path in (own.onnx_zipmap, own.onnx_tensor):
        reg = Registry()
        sess = probe(model="bc", version="v1", registry=reg)(ort.InferenceSession(str(path)))
        label, _ = sess.run(None, {"X": own.x_test})
        np.testing.assert_array_equal(label, own.proba.argmax(1))
        t = reg.state("bc", "v1").snapshot().totals
        n = len(own.y_test)
        assert sum(t.ok) == 1 and sum(t.classes.values()) == n
        assert sum(t.conf) == n and t.conf_sum == pytest.approx(own.proba.max(1).sum(), rel=1e-4)


# ---- an endpoint with its own JSON and no /info -------------------------------------------
class _Endpoint(BaseHTTPRequestHandler):
    """POST /score {"features": [[30 numbers], ...]} -> {"label": [...], "probabilities":
    [[p0, p1], ...]}; 422 for any other body (FastAPI's answer); no GET /info."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK wait
    session: Any = None

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._send(404, b'{"detail": "Not Found"}')

    def do_POST(self) -> None:  # noqa: N802
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rows = doc.get("features") if isinstance(doc, dict) else None
        if self.path != "/score" or not isinstance(rows, list) or not rows or len(rows[0]) != 30:
            self._send(422, b'{"detail": "features: expected rows of 30 numbers"}')
            return
        label, proba = self.session.run(None, {"X": np.asarray(rows, dtype=np.float32)})
        self._send(200, json.dumps({"label": label.tolist(),
                                    "probabilities": proba.tolist()}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint(own: OwnModel) -> Iterator[str]:
    handler = type("Handler", (_Endpoint,), {
        "session": ort.InferenceSession(str(own.onnx_tensor))})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_http_bench_with_a_json_mapping(own: OwnModel, endpoint: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from drift.baseline import Baseline

    suite = build_suite(own, tmp_path / "suite")
    mapping = ["--predict-path", "/score", "--request-template", '{"features": "$inputs"}',
               "--response-scores", "probabilities"]
    base = ["bench", "--backend", "http", "--url", endpoint, "-o", str(tmp_path / "runs"), *QUICK]
    # no /info and no --name/--version: refused before measuring, never "unknown/unversioned"
    assert main([*base, "--suite", str(suite), *mapping]) == 2
    err = capsys.readouterr().err
    assert "--name and --version" in err and "GET /info" in err
    # the default suite (digits, 64 numbers a row) against this endpoint: one clear line
    assert main([*base, "--name", "bc", "--version", "v1", *mapping]) == 2
    err = capsys.readouterr().err
    assert "did not take a row of suite 'digits'" in err and "benchwatch suite build" in err
    assert "HTTP 422" in err and len(err.strip().splitlines()) == 1
    assert main([*base, "--suite", str(suite), "--name", "bc", "--version", "v1", *mapping]) == 0
    err = capsys.readouterr().err
    assert "http single-stream 200/200" in err  # status lines without a terminal
    (run,) = (tmp_path / "runs").glob("bc-*")
    doc = json.loads((run / "results.json").read_text())
    assert doc["runs"][0]["accuracy"]["accuracy"] == pytest.approx(own.accuracy)
    b = Baseline.load(run / "baseline-http.json")
    assert (b.model, b.version) == ("bc", "v1")


def test_http_bench_with_labels_only_and_with_an_adapter(own: OwnModel, endpoint: str,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    suite = build_suite(own, tmp_path / "suite")
    base = ["bench", "--backend", "http", "--url", endpoint, "--suite", str(suite),
            "--name", "bc", "--version", "v1", "--predict-path", "/score", *QUICK]
    # one row per request, labels only (one-hot over the suite's classes)
    assert main([*base, "-o", str(tmp_path / "labels"), "--request-template",
                 '{"features": ["$input"]}', "--response-labels", "label.0"]) == 0
    (run,) = (tmp_path / "labels").glob("bc-*")
    acc = json.loads((run / "results.json").read_text())["runs"][0]["accuracy"]["accuracy"]
    assert acc == pytest.approx(own.accuracy)
    # the user's own client code
    (tmp_path / "my_adapter.py").write_text(
        "def predict(batch, post):\n"
        "    return post({'features': batch.tolist()})['probabilities']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main([*base, "-o", str(tmp_path / "adapter"), "--adapter", "my_adapter:predict"]) == 0
    (run,) = (tmp_path / "adapter").glob("bc-*")
    acc = json.loads((run / "results.json").read_text())["runs"][0]["accuracy"]["accuracy"]
    assert acc == pytest.approx(own.accuracy)
    sys.modules.pop("my_adapter", None)


def test_in_process_callable_api(own: OwnModel, tmp_path: Path) -> None:
    from benchwatch.bench import bench_callable
    from benchwatch.bench.suites import load_suite
    from drift.baseline import Baseline

    session = ort.InferenceSession(str(own.onnx_tensor))
    suite = load_suite(build_suite(own, tmp_path / "suite"))
    result = bench_callable(lambda batch: session.run(None, {"X": batch})[1], suite,
                            model="bc", version="v1", out=tmp_path / "runs", queries=200,
                            warmup=20, offline_samples=500, server=False, rates=[100])
    assert result.accuracy is not None and result.accuracy.accuracy == pytest.approx(own.accuracy)
    assert result.single_stream is not None and result.single_stream.summary.n == 200
    (run,) = (tmp_path / "runs").glob("bc-*")
    b = Baseline.load(run / "baseline-callable.json")
    assert (b.model, b.version) == ("bc", "v1")
    assert any(f.point == "model_call" for f in b.figures)
    # a baseline at the load production serves, at the point the latency alert reads
    at_rate = b.figure("latency_p99_s", "model_call", rate_qps=100)
    assert at_rate is not None and at_rate.scenario == "server_100qps", at_rate
    assert at_rate.rate_qps is not None and 70 < at_rate.rate_qps < 130
    with pytest.raises(UsageError, match="--energy must be"):
        bench_callable(lambda batch: batch, suite, model="bc", version="v1", energy="rapl")


def test_http_bench_robustness_through_the_mapping(own: OwnModel, endpoint: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The robustness pass through the user's endpoint and its JSON mapping: the same seeded
    corrupted rows as in process, so the same accuracy per corruption and severity and the
    same flip rate as ONNX Runtime on the same file; progress even without a terminal; the
    figures in the baseline."""
    from benchwatch.bench import robustness
    from benchwatch.bench.backends import OnnxRuntimeBackend
    from benchwatch.bench.suites import load_suite
    from drift.baseline import Baseline

    suite = build_suite(own, tmp_path / "suite")
    assert main(["bench", "--backend", "http", "--url", endpoint, "--suite", str(suite),
                 "--name", "bc", "--version", "v1", "--predict-path", "/score",
                 "--request-template", '{"features": "$inputs"}', "--response-scores",
                 "probabilities", "-o", str(tmp_path / "runs"),
                 *(a for a in QUICK if a != "--no-robustness")]) == 0
    assert "http robustness 2873/2873 (100%)" in capsys.readouterr().err  # 17 passes x 169 rows
    (run,) = (tmp_path / "runs").glob("bc-*")
    (card,) = json.loads((run / "results.json").read_text())["scorecard"]
    local = robustness.measure(OnnxRuntimeBackend(own.onnx_tensor).predict,
                               load_suite(suite), seed=0)
    assert card["robustness"]["accuracy"] == {c: list(a) for c, a in local.accuracy.items()}
    assert card["flip_rate"] == local.flip_rate
    assert card["robustness"]["flip_queries"] == 5 * len(own.y_test)
    figures = {f.name for f in Baseline.load(run / "baseline-http.json").figures}
    assert {"corruption_accuracy", "mean_corruption_error", "flip_rate"} <= figures


def test_a_failed_robustness_pass_keeps_the_run(own: OwnModel, endpoint: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An adapter that takes only the suite's own rows: every scenario passes, the robustness
    pass (perturbed rows) fails. The run and its baseline are written without robustness, one
    line says why, exit 3 (stopped early)."""
    suite = build_suite(own, tmp_path / "suite")
    np.save(tmp_path / "rows.npy", own.x_test)
    (tmp_path / "suite_rows_only.py").write_text(
        "import numpy as np\n"
        f"KNOWN = {{tuple(r) for r in np.load({str(tmp_path / 'rows.npy')!r})}}\n"
        "def predict(batch, post):\n"
        "    if any(tuple(r) not in KNOWN for r in batch):\n"
        "        raise ValueError('a row that is not in the suite')\n"
        "    return post({'features': batch.tolist()})['probabilities']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["bench", "--backend", "http", "--url", endpoint, "--suite", str(suite),
                 "--name", "bc", "--version", "v1", "--predict-path", "/score",
                 "--adapter", "suite_rows_only:predict", "-o", str(tmp_path / "runs"),
                 *(a for a in QUICK if a != "--no-robustness")])
    sys.modules.pop("suite_rows_only", None)
    assert code == 3
    err = capsys.readouterr().err
    assert "http robustness: stopped (" in err and "a row that is not in the suite" in err
    assert "stopped early (http robustness:" in err.splitlines()[-1]  # the exit's one line
    (run,) = (tmp_path / "runs").glob("bc-*")
    doc = json.loads((run / "results.json").read_text())
    assert doc["runs"][0]["accuracy"]["accuracy"] == pytest.approx(own.accuracy)
    assert doc["scorecard"][0]["robustness"] is None
    assert (run / "baseline-http.json").is_file()


def test_a_model_file_without_a_version_is_refused_before_measuring(
        own: OwnModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = build_suite(own, tmp_path / "suite")
    assert main(["bench", "--model", str(own.onnx_tensor), "--suite", str(suite),
                 "-o", str(tmp_path / "runs"), *QUICK]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--version" in err and "bc-tensor.onnx" in err
    assert not (tmp_path / "runs").exists()  # nothing measured, nothing written
