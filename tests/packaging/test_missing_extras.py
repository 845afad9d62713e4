"""Every optional part, used without its extra, fails with `MissingExtraError` naming the extra,
at the point where the user enters it (the import or the call), not with a bare
`No module named ...` from deep inside.

Each case runs in a fresh interpreter with a `None` entry in `sys.modules`, which makes Python
treat that package as not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent("""
    import sys
    sys.modules[sys.argv[1]] = None  # as if not installed
    from probes.errors import MissingExtraError
    try:
        exec(sys.argv[2])
    except MissingExtraError as e:
        print(e.extra)
        print(e)
        sys.exit(0)
    sys.exit("no MissingExtraError was raised")
""")

CASES = [  # (package made missing, code that uses the optional part, extra the message names)
    ("scipy", "import drift", "drift"),
    ("scipy", "from drift import compare", "drift"),
    ("scipy", "import drift.service", "drift"),
    ("rich", "import benchwatch.demo", "demo"),
    ("onnxruntime", "import benchwatch.demo", "demo"),
    ("onnxruntime", "from benchwatch.bench.backends import make_backend\n"
                    "make_backend('onnxruntime')", "bench"),
    ("onnxruntime", "from benchwatch.example.server import Model, ServerConfig\n"
                    "Model(ServerConfig())", "demo"),
    ("torch", "from benchwatch.bench.backends import make_backend\nmake_backend('torch')",
     "torch"),
    ("sklearn", "from benchwatch.example import load_digits_arrays\nload_digits_arrays()",
     "bench"),
    ("kafka", "import collector.kafka", "kafka"),
    ("kafka", "from probes.sinks.kafka import KafkaSink\nKafkaSink('kafka://127.0.0.1:9/t')",
     "kafka"),
    ("opentelemetry.exporter.otlp", "from probes.export import otlp_exporter\n"
                                    "otlp_exporter('http://127.0.0.1:4318')", "otlp"),
    ("yaml", "from benchwatch.deploy import render_configmaps\nrender_configmaps()", "grafana"),
    ("grafana_client", "from benchwatch.cli.grafana import push\n"
                       "push('http://127.0.0.1:3000', None)", "grafana"),
    ("mlperf_loadgen", "from benchwatch.bench.loadgen_check import run_loadgen\n"
                       "run_loadgen(None, None)", "bench"),
]


@pytest.mark.parametrize("missing,code,extra", CASES,
                         ids=[f"{m}-{c.splitlines()[-1]}" for m, c, _ in CASES])
def test_a_missing_package_names_its_extra(missing: str, code: str, extra: str) -> None:
    run = subprocess.run([sys.executable, "-c", PROBE, missing, code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    got_extra, message = run.stdout.splitlines()[:2]
    assert got_extra == extra
    assert f"pip install 'benchwatch[{extra}]'" in message
    assert missing.split(".")[0] in message or extra == "otlp"


def test_the_demo_command_says_which_extra_before_starting_anything(tmp_path: Path) -> None:
    """`benchwatch demo` without ONNX Runtime: the message naming the `demo` extra is the first
    thing printed, the exit code says it could not run, and nothing was started (no working
    directory was made)."""
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from benchwatch.cli import main\n"
            "sys.exit(main(sys.argv[1:]))")
    workdir = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-c", code, "demo", "--no-prometheus", "--duration",
                          "5", "--port", "0", "--workdir", str(workdir)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stderr
    first = (run.stdout + run.stderr).strip().splitlines()[0]
    assert "pip install 'benchwatch[demo]'" in first and "onnxruntime" in first, run.stderr
    assert not workdir.exists()
