"""Inference backends the runner drives: PyTorch, ONNX Runtime, an HTTP endpoint, and null.

Every backend maps a float32 batch `(n, *input_shape)` to scores `(n, k)` as a numpy array.
Failures surface as `BackendError` with a `kind` (`unreachable`, `timeout`, `http_status`,
`malformed`, `shape`) so replays can report them and exit 3 instead of judging.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from benchwatch.errors import UsageError
from probes.energy import module_devices, session_devices
from probes.errors import BenchwatchError, require
from probes.ort_outputs import classifier_scores

if TYPE_CHECKING:
    from benchwatch.bench.http_mapping import Adapter, JsonMapping

try:  # faster JSON for the HTTP backend (the harness cost per query); stdlib otherwise
    import orjson

    def _encode(batch: np.ndarray) -> bytes:
        return orjson.dumps({"inputs": np.ascontiguousarray(batch, dtype=np.float32)},
                            option=orjson.OPT_SERIALIZE_NUMPY)

    _decode: Any = orjson.loads
except ImportError:
    orjson = None  # type: ignore[assignment]

    def _encode(batch: np.ndarray) -> bytes:
        return b'{"inputs":' + json.dumps(batch.tolist()).encode() + b"}"

    _decode = json.loads


def _encode_any(body: Any) -> bytes:
    """JSON bytes of a request body (numpy arrays allowed)."""
    if orjson is not None:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(body, default=lambda o: o.tolist()).encode()


class BackendError(BenchwatchError, RuntimeError):
    """A backend could not answer; `kind` says how (see the module doc)."""

    status: int | None = None  # kind http_status: the HTTP status code

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class BackendInfo:
    name: str  # torch, onnxruntime, http, null
    model: str
    version: str
    input_shape: tuple[int, ...] | None
    num_outputs: int | None
    detail: str = ""


class Backend(Protocol):
    info: BackendInfo

    def predict(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


class NullBackend:
    """Returns a preallocated answer: measures the harness itself."""

    def __init__(self, num_outputs: int = 10, input_shape: tuple[int, ...] | None = None) -> None:
        self.info = BackendInfo("null", "null", "0", input_shape, num_outputs)
        self._out = np.zeros((1, num_outputs), dtype=np.float32)
        self._k = num_outputs

    def predict(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        return self._out if n == 1 else np.zeros((n, self._k), dtype=np.float32)

    def close(self) -> None:
        pass


class TorchBackend:
    def __init__(self, module: Any, model: str = "model", version: str = "",
                 input_shape: tuple[int, ...] | None = None, threads: int | None = None,
                 device: str = "cpu") -> None:
        torch = require("torch", "torch", "the torch backend")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._device = torch.device(device)
        self._module = module.eval().to(self._device)
        num_outputs = None
        if input_shape is not None:
            with torch.inference_mode():
                num_outputs = int(self._module(torch.zeros(1, *input_shape,
                                                           device=self._device)).shape[-1])
        where = (f"{torch.get_num_threads()} threads" if self._device.type == "cpu"
                 else str(self._device))
        self.info = BackendInfo("torch", model, version, input_shape, num_outputs,
                                f"torch {torch.__version__}, {where}")
        self.devices = module_devices(self._module)  # what the bench's probe may charge

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            x = self._torch.from_numpy(batch)
            if self._device.type == "cpu":
                return self._module(x).numpy()  # type: ignore[no-any-return]
            # .cpu() waits for the kernels: the latency includes the device round trip
            return self._module(x.to(self._device, non_blocking=True)).cpu().numpy()  # type: ignore[no-any-return]

    def close(self) -> None:
        pass


class OnnxRuntimeBackend:
    def __init__(self, path: str | Path, model: str = "model", version: str = "",
                 threads: int | None = None, providers: list[str] | None = None) -> None:
        ort = require("onnxruntime", "bench", "the onnxruntime backend")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(path), opts,
                                             providers=providers or ["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        shape = tuple(int(d) if isinstance(d, int) else -1 for d in inp.shape[1:])
        # the scores output: the first 2-D float tensor (skl2onnx: output 1, after the labels);
        # a ZipMap (list of dicts) has no static width: checked on the first answer instead
        scores = [o for o in self._session.get_outputs()
                  if o.type.startswith("tensor(float") and len(o.shape) == 2]
        k = scores[0].shape[-1] if scores and isinstance(scores[0].shape[-1], int) else None
        self.info = BackendInfo("onnxruntime", model, version,
                                None if -1 in shape else shape, k,
                                f"onnxruntime {ort.__version__}, {self._session.get_providers()[0]}")
        self.devices = session_devices(self._session)  # what the bench's probe may charge

    def predict(self, batch: np.ndarray) -> np.ndarray:
        out = classifier_scores(self._session.run(None, {self._input_name: batch}))
        if not isinstance(out, np.ndarray) or out.ndim != 2:
            raise BackendError("shape", f"the model's outputs hold no per-class scores (got "
                               f"{type(out).__name__} {getattr(out, 'shape', '')}): export it "
                               "with its probabilities (skl2onnx does by default) or logits")
        return out

    def close(self) -> None:
        pass


class HttpBackend:
    """POST {"inputs": [[...], ...]} to URL/predict; expects {"outputs": [[...], ...]}, unless
    a `mapping` (request template, response paths) or an `adapter` says otherwise
    (`benchwatch.bench.http_mapping`).

    One keep-alive connection per calling thread (http.client), reconnecting once on a dropped
    connection. `info` comes from GET URL/info when the server offers it (`model`, `version`,
    `input_shape`, `num_outputs`); `model`/`version` given here take precedence.
    """

    def __init__(self, url: str, timeout_s: float = 5.0, path: str = "/predict",
                 mapping: JsonMapping | None = None, adapter: Adapter | None = None,
                 model: str | None = None, version: str | None = None) -> None:
        parsed = urllib.parse.urlparse(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BackendError("unreachable", f"{url!r} is not an http(s) URL: pass e.g. "
                               "http://127.0.0.1:8001")
        self.url = f"{parsed.scheme}://{parsed.netloc}"
        self._host, self._port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
        self._https = parsed.scheme == "https"
        self._path = (parsed.path.rstrip("/") or "") + path
        self._mapping, self._adapter = mapping, adapter
        self._timeout = timeout_s
        self._local = threading.local()
        self._conns: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        meta = self._info()
        shape = meta.get("input_shape")
        self.info = BackendInfo(
            "http", model or str(meta.get("model", "unknown")),
            version or str(meta.get("version", "")),
            tuple(int(d) for d in shape) if isinstance(shape, list) else None,
            int(meta["num_outputs"]) if isinstance(meta.get("num_outputs"), int) else None,
            self.url)

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            c = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    def _request(self, method: str, path: str, body: bytes | None) -> bytes:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.request(method, path, body=body, headers=headers)
                resp = c.getresponse()
                data = resp.read()
            except TimeoutError as e:
                self._drop(c)
                raise BackendError("timeout", f"{self.url}{path}: no answer within "
                                   f"{self._timeout:.1f}s") from e
            except (ConnectionError, http.client.HTTPException, socket.gaierror, OSError) as e:
                self._drop(c)
                if attempt == 0 and isinstance(e, (http.client.RemoteDisconnected,
                                                   ConnectionResetError, BrokenPipeError)):
                    continue  # a keep-alive connection closed by the server: retry once
                raise BackendError("unreachable", f"{self.url}{path}: {e}") from e
            if resp.status != 200:
                err = BackendError("http_status", f"{self.url}{path}: HTTP {resp.status} "
                                   f"{data[:200]!r}")
                err.status = resp.status
                raise err
            return data
        raise BackendError("unreachable", f"{self.url}{path}: connection dropped twice")

    def _drop(self, c: http.client.HTTPConnection) -> None:
        c.close()
        self._local.conn = None

    def _info(self) -> dict[str, Any]:
        try:
            doc = json.loads(self._request("GET", "/info", None))
            return doc if isinstance(doc, dict) else {}
        except BackendError as e:
            if e.kind == "http_status":
                return {}  # a server without /info: fine, shapes are checked per response
            raise
        except ValueError:
            return {}

    def post(self, body: Any) -> Any:
        """POST `body` as JSON to the endpoint; the decoded JSON answer (an adapter's `post`)."""
        data = self._request("POST", self._path, _encode_any(body))
        try:
            return _decode(data)
        except ValueError as e:
            raise BackendError("malformed", f"{self.url}{self._path}: response is not JSON "
                               f"({e}): {data[:200]!r}") from e

    def _mapped(self, batch: np.ndarray) -> np.ndarray:
        try:
            if self._adapter is not None:
                return np.asarray(self._adapter(batch, self.post), dtype=np.float32)
            assert self._mapping is not None
            answers = [self.post(body) for body in self._mapping.bodies(batch)]
            return self._mapping.scores_of(answers, batch.shape[0])
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's adapter or mapping: say which
            how = "the adapter" if self._adapter is not None else "the response mapping"
            raise BackendError("malformed", f"{self.url}{self._path}: {how} failed: "
                               f"{type(e).__name__}: {e}") from e

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self._mapping is not None or self._adapter is not None:
            out = self._mapped(batch)
        else:
            data = self._request("POST", self._path, _encode(batch))
            try:
                doc = _decode(data)
                out = np.asarray(doc["outputs"], dtype=np.float32)
            except (ValueError, KeyError, TypeError) as e:
                raise BackendError("malformed", f"{self.url}{self._path}: response is not "
                                   f'{{"outputs": [[numbers]]}} ({e}): {data[:200]!r}; map '
                                   "another format with --request-template/--response-scores "
                                   "or --adapter") from e
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise BackendError("malformed", f"{self.url}{self._path}: expected {batch.shape[0]} "
                               f"output rows, got shape {out.shape}")
        if not np.all(np.isfinite(out)):
            raise BackendError("malformed", f"{self.url}{self._path}: non-finite outputs")
        return out

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
                c.close()
            self._conns.clear()


BACKENDS = ("onnxruntime", "torch", "http", "null")


def make_backend(kind: str, model: str | None = None, url: str | None = None,
                 timeout_s: float = 5.0, threads: int | None = None,
                 device: str = "cpu", name: str | None = None, version: str | None = None,
                 mapping: JsonMapping | None = None, adapter: Adapter | None = None,
                 path: str = "/predict") -> Backend:
    """Build a backend. `model` is an ONNX file / torch state_dict, or `digits` (the example).
    `name`/`version`: the model's labels (default: the endpoint's GET /info, the file's stem,
    or the example's). `mapping`/`adapter`/`path`: how the http backend talks to the endpoint.
    `device="cuda"`: torch on the GPU, ONNX Runtime with its CUDA provider (an error when the
    installed onnxruntime has none: install onnxruntime-gpu)."""
    if kind == "null":
        return NullBackend(10, (64,))
    if kind == "http":
        if not url:
            raise UsageError("--backend http needs --url http://HOST:PORT")
        return HttpBackend(url, timeout_s, path, mapping, adapter, name, version)
    from benchwatch.example import model as example

    if model in (None, "digits", "example"):
        files = example.shipped_model()
        onnx_path = files.onnx_path
        name, version = name or files.name, version or files.version
    else:
        onnx_path, name, version = Path(model), name or Path(model).stem, version or ""
        if not onnx_path.exists():
            raise UsageError(f"model file {model} does not exist: pass --model PATH.onnx, or "
                             "--model digits for the example model")
    if kind == "onnxruntime":
        if onnx_path.suffix != ".onnx":
            raise UsageError(f"--backend onnxruntime needs an .onnx file, got {onnx_path}")
        providers = None
        if device.startswith("cuda"):
            ort = require("onnxruntime", "bench", "the onnxruntime backend")
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError("--device cuda: this onnxruntime has no CUDAExecutionProvider "
                                 f"(has {ort.get_available_providers()}): install onnxruntime-gpu")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return OnnxRuntimeBackend(onnx_path, name, version, threads, providers)
    if kind == "torch":
        if device.startswith("cuda"):
            torch = require("torch", "torch", "the torch backend")
            if not torch.cuda.is_available():
                raise UsageError("--device cuda: PyTorch sees no CUDA device")
        module = example.torch_module_from_path(onnx_path)
        return TorchBackend(module, name, version, (example.INPUT_DIM,), threads, device)
    raise UsageError(f"unknown backend {kind!r}: choose one of {', '.join(BACKENDS)}")
