"""`benchwatch suite build`: a benchmark suite from your own labelled data.

build  --from data.csv|.parquet --label COLUMN --model M --version V -o DIR [--name NAME]
       [--columns a,b,c]
       Every other column (or --columns, in that order: the order your model takes its
       features in) must be numeric; the label column holds the classes as the model was
       trained on them (numbers or text). Labels become class indices in sorted order
       (scikit-learn's `classes_` order, so index k is the model's probability column k), or
       in the order --classes gives; the file must hold every class the model knows.
       Writes DIR/NAME.json + DIR/NAME.npz (NAME defaults to the model), the format
       `benchwatch bench --suite` and `benchwatch replay --suite` read.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError

HELP = "build a benchmark suite from your own labelled data (CSV or Parquet)"
MAX_CLASSES = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build a suite from a CSV or Parquet file with a label column")
    b.add_argument("--from", dest="source", required=True, type=Path, metavar="FILE",
                   help="labelled data: .csv (header row) or .parquet")
    b.add_argument("--label", required=True, metavar="COLUMN", help="the true class column")
    b.add_argument("--model", required=True, help="the model's name, as your probe labels it")
    b.add_argument("--version", required=True, help="the model's version, as your probe labels it")
    b.add_argument("-o", "--out", required=True, type=Path, metavar="DIR",
                   help="directory for NAME.json and NAME.npz")
    b.add_argument("--name", default=None, help="suite name (default: the model's name)")
    b.add_argument("--columns", default=None,
                   help="comma-separated feature columns, in the order the model takes them "
                        "(default: every column but the label, in file order)")
    b.add_argument("--classes", default=None,
                   help="comma-separated class labels in the order of the model's score "
                        "columns (scikit-learn: its classes_), when that is not the sorted "
                        "order of the labels, e.g. --classes malignant,benign")


def run(args: argparse.Namespace) -> ExitCode:
    from benchwatch.bench.suites import make_suite, save_suite
    from benchwatch.cli.baseline import read_columns

    cols = read_columns(args.source)
    if args.label not in cols:
        raise UsageError(f"{args.source}: no label column {args.label!r}; it has {list(cols)}")
    names = ([c.strip() for c in args.columns.split(",") if c.strip()] if args.columns
             else [c for c in cols if c != args.label])
    unknown = [c for c in names if c not in cols]
    if unknown or not names:
        raise UsageError(f"{args.source}: no feature column(s) {unknown or names}; it has "
                         f"{list(cols)}")
    if args.label in names:
        raise UsageError(f"--columns includes the label column {args.label!r}: leave it out")
    inputs = np.column_stack([_numeric(args.source, c, cols[c]) for c in names])
    order = [c.strip() for c in args.classes.split(",")] if args.classes else None
    classes, expected = _classes(args.source, args.label, cols[args.label], order)
    name = args.name or args.model
    if not name or any(ch in name for ch in "/\\") or name.startswith("."):
        raise UsageError(f"suite name {name!r} must be a plain file name: pass --name NAME")
    meta: dict[str, Any] = {
        "model": args.model, "version": args.version, "task": "classification",
        "num_classes": len(classes), "class_labels": classes, "input_dim": len(names),
        "feature_names": names, "label_column": args.label,
        "source": f"{args.source.name} (sha256:{_sha256(args.source)[:16]})"}
    suite = make_suite(name, inputs, expected, meta)
    path = save_suite(suite, args.out)
    print(f"wrote {path} and {path.with_suffix('.npz').name}: {len(suite)} rows, {len(names)} "
          f"features, {len(classes)} classes ({', '.join(classes[:10])}"
          f"{', ...' if len(classes) > 10 else ''}); use it with --suite {path}")
    return ExitCode.OK


def _numeric(source: Path, name: str, values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            x = float(v) if v is not None and not isinstance(v, bool | tuple) else math.nan
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x):
            raise UsageError(f"{source}: column {name!r}, data row {i + 1}: {v!r} is not a "
                             "finite number; a suite's features must be numbers (drop or fill "
                             "that row, or leave the column out with --columns)")
        out[i] = x
    return out


def _classes(source: Path, label: str, values: list[Any],
             order: list[str] | None) -> tuple[list[str], np.ndarray]:
    """Class labels (`order`, or sorted: numeric labels numerically) and each row's index."""
    from benchwatch.feature_kinds import typed_values

    missing = [i + 1 for i, v in enumerate(values) if v is None]
    if missing:
        raise UsageError(f"{source}: label column {label!r} is empty in data row(s) "
                         f"{missing[:5]}: every row needs its true class")
    text = typed_values("categorical", values, "predicted_class")  # 1, 1.0, "1" -> "1"
    distinct = set(text)
    if len(distinct) < 2 or len(distinct) > MAX_CLASSES:
        raise UsageError(f"{source}: label column {label!r} has {len(distinct)} distinct "
                         f"values; a classification suite needs 2 to {MAX_CLASSES}")
    if order is not None:
        stray = sorted(distinct - set(order))
        if stray or len(set(order)) != len(order):
            raise UsageError(f"--classes {','.join(order)}: list each class once; the label "
                             f"column also holds {stray[:10]}" if stray else
                             f"--classes {','.join(order)} names a class twice")
        classes = order
    else:
        try:
            classes = sorted(distinct, key=float)
        except ValueError:
            classes = sorted(distinct)
    index = {c: k for k, c in enumerate(classes)}
    return classes, np.array([index[t] for t in text], dtype=np.int64)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
