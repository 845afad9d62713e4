"""Security: nothing received (HTTP bodies, Kafka messages, baselines, model files) is ever
unpickled, eval'd or exec'd. Checked on the syntax tree of every shipped module, so a comment or
a string mentioning pickle does not count and an aliased import does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("probes", "collector", "drift", "benchwatch")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve",
                  "jsonpickle", "joblib"}
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def findings(source: str, filename: str = "<src>") -> list[str]:
    """Every unsafe construct in `source`, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    out: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        out.append(f"{filename}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                flag(node, f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in UNSAFE_BUILTINS or name.startswith("builtins."):
                flag(node, f"{name}()")
            elif name.endswith(("yaml.load", "yaml.load_all")) or name in ("load_all",):
                loader = _dotted(_kw(node, "Loader")) if _kw(node, "Loader") else ""
                if "Safe" not in loader:
                    flag(node, f"{name}() without SafeLoader")
            elif name.endswith("yaml.unsafe_load") or name.endswith("yaml.full_load"):
                flag(node, f"{name}()")
            elif name in ("np.load", "numpy.load") and _is_true(_kw(node, "allow_pickle")):
                flag(node, "np.load(allow_pickle=True)")
            elif name == "torch.load" and not _is_true(_kw(node, "weights_only")):
                flag(node, "torch.load() without weights_only=True")
            elif name.endswith("read_pickle") or name.endswith(".loads") and \
                    name.split(".")[0] in UNSAFE_MODULES:
                flag(node, f"{name}()")
    return out


def source_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 10, f"expected the package sources under {ROOT}, found {len(files)}"
    return files


def test_no_pickle_eval_exec_in_shipped_code() -> None:
    problems = [f for path in source_files()
                for f in findings(path.read_text(), str(path.relative_to(ROOT)))]
    assert not problems, "unsafe deserialization or code execution:\n" + "\n".join(problems)


@pytest.mark.parametrize("snippet", [
    "import pickle\npickle.loads(body)",
    "import pickle as p",
    "from pickle import loads",
    "import cloudpickle",
    "eval(request.body)",
    "exec(msg)",
    "builtins.eval(x)",
    "import yaml\nyaml.load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.Loader)",
    "import yaml\nyaml.unsafe_load(text)",
    "import numpy as np\nnp.load(f, allow_pickle=True)",
    "import torch\ntorch.load(path)",
    "import torch\ntorch.load(path, weights_only=False)",
    "import pandas as pd\npd.read_pickle(path)",
])
def test_checker_catches(snippet: str) -> None:
    assert findings(snippet), f"the checker missed: {snippet!r}"


@pytest.mark.parametrize("snippet", [
    "import json\njson.loads(body)",
    "import yaml\nyaml.safe_load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
    "import numpy as np\nnp.load(f)",
    "import torch\ntorch.load(path, weights_only=True)",
    "# pickle is never used here\nx = 'eval'",
    "model.eval()",
])
def test_checker_allows(snippet: str) -> None:
    assert not findings(snippet), f"false alarm on: {snippet!r}"
