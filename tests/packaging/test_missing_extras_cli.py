"""Each CLI verb, run with one optional package missing, stops with one line that names the
package and the extra that adds it (exit 3), never a traceback.

A package is made missing with an import hook that raises `ModuleNotFoundError` for it, as an
interpreter without it installed would (a `None` in `sys.modules` upsets packages such as
SciPy that probe `sys.modules` for torch)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RUN = textwrap.dedent("""
    import importlib.abc, sys
    missing = sys.argv[1]

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == missing or name.startswith(missing + "."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    from benchwatch.cli import main
    sys.exit(main(sys.argv[2:]))
""")

CASES = [  # (package made missing, benchwatch arguments, the extra the line names)
    ("rich", ["bench", "--no-server"], "bench"),
    ("onnxruntime", ["bench", "--no-server"], "bench"),
    ("scipy", ["bench", "--no-server"], "drift"),
    ("torch", ["bench", "--backend", "torch"], "torch"),
    ("rich", ["replay", "--canary", "http://127.0.0.1:9", "--primary", "http://127.0.0.1:9"],
     "bench"),
    ("scipy", ["replay", "--canary", "http://127.0.0.1:9", "--primary", "http://127.0.0.1:9"],
     "bench"),
    ("scipy", ["suite", "build", "--from", "{csv}", "--label", "y", "--model", "m",
               "--version", "v", "-o", "{out}"], "drift"),
    ("pyarrow", ["suite", "build", "--from", "{parquet}", "--label", "y", "--model", "m",
                 "--version", "v", "-o", "{out}"], "drift"),
    ("scipy", ["baseline", "build", "--from", "{csv}", "--model", "m", "--version", "v",
               "-o", "{out}/b.json"], "drift"),
    ("scipy", ["drift", "serve", "--baselines", "{out}"], "drift"),
    ("kafka", ["kafka", "topics", "--bootstrap", "127.0.0.1:9"], "kafka"),
    ("grafana_client", ["grafana", "push", "--url", "http://127.0.0.1:9"], "grafana"),
    ("yaml", ["export", "-o", "{out}/export"], "grafana"),
    ("rich", ["demo", "--no-prometheus", "--duration", "5"], "demo"),
]
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path_factory.mktemp("extras")
    (d / "t.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    pq.write_table(pa.table({"a": [1.0, 3.0], "y": [0, 1]}), d / "t.parquet")
    (d / "out").mkdir()
    return {"csv": str(d / "t.csv"), "parquet": str(d / "t.parquet"), "out": str(d / "out")}


@pytest.mark.parametrize("missing,argv,extra", CASES,
                         ids=[f"{m}-{' '.join(a[:2])}" for m, a, _ in CASES])
def test_a_verb_without_its_extra_says_which_in_one_line(missing: str, argv: list[str],
                                                         extra: str, files: dict[str, str],
                                                         tmp_path: Path) -> None:
    args = [a.format(**files) for a in argv]
    run = subprocess.run([sys.executable, "-c", RUN, missing, *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    said = [line for line in (run.stdout + run.stderr).splitlines()
            if line.strip() and not LOG_LINE.match(line)]
    assert run.returncode == 3, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and len(said) == 1, said
    assert f"pip install 'benchwatch[{extra}]'" in said[0] and repr(missing) in said[0]
