"""`benchwatch baseline build|show`: make a drift baseline from reference data, or inspect one.

build  --from reference.csv|.parquet --model M --version V -o baselines/M-V.json
       Every column becomes a feature, typed as bench baselines are (benchwatch.feature_kinds):
       the probe's outputs keep their kinds (predicted_class categorical even when numbers),
       Parquet text stays categorical, numbers are numeric, JSON lists like "[0.1, 0.2]" or
       Parquet lists vectors, anything else categorical; --columns picks some,
       --kind COL=categorical overrides. --label-column (with the
       prediction and confidence columns) fits the CBPE calibration. Figures come from
       --figure KEY=VALUE or --figures FILE.json.
show   FILE [--json]: model, version, provenance, figures and a summary per feature.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchwatch.cli._values import whole
from benchwatch.cli.errors import ExitCode
from benchwatch.feature_kinds import feature_kind, typed_values
from drift.baseline import FIGURE_KEYS, POINTS, Baseline
from drift.calibration import Calibration
from drift.figures import Figure, legacy_figures
from drift.reference import CategoricalReference, NumericReference
from drift.reference_size import min_reference_size, small_references
from drift.result import DriftError
from probes.errors import require

HELP = "build or inspect drift baselines"
MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build a baseline from a CSV or Parquet reference sample")
    b.add_argument("--from", dest="source", required=True, type=Path, metavar="FILE",
                   help="reference data: .csv (header row) or .parquet")
    b.add_argument("--model", required=True)
    b.add_argument("--version", required=True)
    b.add_argument("-o", "--out", required=True, type=Path,
                   help="manifest path, e.g. baselines/digits-v3.json (the .npz goes beside it)")
    b.add_argument("--columns", default=None,
                   help="comma-separated columns to use as features (default: all)")
    b.add_argument("--kind", action="append", default=[], metavar="COL=KIND",
                   help="force a column's kind: numeric, categorical or vector (repeatable)")
    b.add_argument("--test", action="append", default=[], metavar="COL=TEST",
                   help="the drift test for a column when not its kind's default, e.g. "
                        "confidence=psi (see drift.TESTS)")
    b.add_argument("--figure", action="append", default=[], metavar="NAME[@POINT[/SCENARIO]]=VALUE",
                   help="a benchmark figure and where it was measured, e.g. "
                        "latency_p99_s@model_call/single_stream=0.012 (points: "
                        f"{', '.join(POINTS)}; without @POINT it is `unknown` and no live "
                        f"figure is compared with it); known names: {', '.join(FIGURE_KEYS)}")
    b.add_argument("--figures", type=Path, default=None, metavar="FILE.json",
                   help="benchmark figures: a bench run's baseline-BACKEND.json (its figures), "
                        "a JSON list of {name, value, point, scenario, rate_qps}, or an object "
                        "of name: value (point unknown)")
    b.add_argument("--label-column", default=None,
                   help="true class column: fits the CBPE calibration (not used as a feature)")
    b.add_argument("--prediction-column", default="predicted_class")
    b.add_argument("--confidence-column", default="confidence")
    b.add_argument("--max-reference", type=whole(1, 10_000_000), default=10_000,
                   help="reference values kept per feature (seeded subsample; default 10000)")
    b.add_argument("--bins", type=whole(2, 1000), default=10,
                   help="quantile bins for PSI/JS (default 10)")
    b.add_argument("--seed", type=whole(0, 2**64 - 1), default=0)
    s = sub.add_parser("show", help="print what a baseline holds (and validate it)")
    s.add_argument("file", type=Path)
    s.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> ExitCode:
    if args.action == "build":
        return _build(args)
    return _show(args)


# ---- reading reference data -----------------------------------------------------------------
def _cell(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):
        t = v.strip()
        if t.lower() in MISSING_TOKENS:
            return None
        if t.startswith("[") and t.endswith("]"):
            try:
                parsed = json.loads(t)  # JSON only: data never runs code
            except json.JSONDecodeError:
                return t
            if isinstance(parsed, list) and all(
                    isinstance(x, int | float) and not isinstance(x, bool) for x in parsed):
                return tuple(float(x) for x in parsed)
            return t
        return t
    if isinstance(v, list):
        return tuple(v)
    return v


def _as_numbers(values: list[Any]) -> list[float | None] | None:
    out: list[float | None] = []
    for v in values:
        if v is None:
            out.append(None)
        elif isinstance(v, bool):
            return None
        elif isinstance(v, int | float):
            out.append(float(v))
        elif isinstance(v, str):
            try:
                out.append(float(v))
            except ValueError:
                return None
        else:
            return None
    return out


def read_columns(path: Path) -> dict[str, list[Any]]:
    """Columns of a CSV (header row) or Parquet file, missing cells as None."""
    if not path.exists():
        raise DriftError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq = require("pyarrow.parquet", "drift", "reading Parquet")
        try:
            table = pq.read_table(path)
        except ValueError as e:  # pyarrow's ArrowInvalid: not a Parquet file
            raise DriftError(f"{path}: not a readable Parquet file ({e})") from e
        return {name: [_cell(v) for v in col] for name, col in table.to_pydict().items()}
    if suffix not in (".csv", ".tsv"):
        raise DriftError(f"{path}: expected a .csv or .parquet file")
    try:
        return _read_csv(path, delimiter="\t" if suffix == ".tsv" else ",")
    except (UnicodeDecodeError, csv.Error) as e:
        raise DriftError(f"{path}: not a readable UTF-8 CSV file ({e})") from e


def _read_csv(path: Path, delimiter: str) -> dict[str, list[Any]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if not reader.fieldnames:
            raise DriftError(f"{path}: empty file or no header row")
        cols: dict[str, list[Any]] = {name: [] for name in reader.fieldnames}
        for i, row in enumerate(reader, start=2):
            if None in row:
                raise DriftError(f"{path}:{i}: more cells than header columns")
            for name in cols:
                cols[name].append(_cell(row.get(name)))
    return cols


def _parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise DriftError(f"{what} must look like KEY=VALUE, got {p!r}")
        out[key.strip()] = value.strip()
    return out


def _figures(args: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    if args.figures:
        try:
            loaded = json.loads(args.figures.read_text())
        except ValueError as e:
            raise DriftError(f"{args.figures}: not JSON ({e})") from e
        if isinstance(loaded, dict) and isinstance(loaded.get("figures"), list):
            loaded = loaded["figures"]  # a baseline manifest (a bench's baseline-BACKEND.json)
        if isinstance(loaded, dict):
            figures += legacy_figures(loaded)
        elif isinstance(loaded, list):
            figures += [Figure.from_dict(d) for d in loaded]
        else:
            raise DriftError(f"{args.figures}: expected a JSON list of figures (or an object)")
    for k, v in _parse_pairs(args.figure, "--figure").items():
        name, at, where = k.partition("@")
        point, _, scenario = where.partition("/")
        try:
            value = float(v)
        except ValueError:
            raise DriftError(f"--figure {k}={v}: the value must be a number") from None
        figures += [Figure(name, value, point, scenario or "unknown") if at
                    else legacy_figures({name: value})[0]]
    return figures


def _build(args: argparse.Namespace) -> ExitCode:
    cols = read_columns(args.source)
    kinds = _parse_pairs(args.kind, "--kind")
    calibration = None
    if args.label_column:
        calibration = _calibration(cols, args)
    names = [c.strip() for c in args.columns.split(",")] if args.columns else [
        c for c in cols if c != args.label_column]
    unknown = [c for c in names + list(kinds) if c not in cols]
    if unknown:
        raise DriftError(f"{args.source}: no column(s) {unknown}; it has {list(cols)}")
    features: dict[str, Any] = {}
    typed = args.source.suffix.lower() == ".parquet"  # a CSV cell is text until it parses
    for name in names:  # the same rule as bench baselines (benchwatch.feature_kinds)
        kind = kinds[name] = feature_kind(name, cols[name], kinds.get(name), typed)
        if kind == "numeric" and _as_numbers(cols[name]) is None:
            raise DriftError(f"column {name!r} has non-numeric values but is numeric (--kind, "
                             "or a probe output feature): fix the column or pass "
                             f"--kind {name}=categorical")
        features[name] = typed_values(kind, cols[name], name)
    baseline = Baseline.build(
        args.model, args.version, features, _figures(args), source=str(args.source),
        kinds=kinds, calibration=calibration, tests=_parse_pairs(args.test, "--test"),
        n_bins=args.bins, max_reference=args.max_reference,
        seed=args.seed)
    path = baseline.save(args.out)
    print(f"wrote {path} and {path.with_suffix('.npz').name}: {args.model}/{args.version}, "
          f"{len(baseline.features)} features, {baseline.provenance.data_hash[:19]}…")
    _warn_small(describe(baseline))
    return ExitCode.OK


def _warn_small(d: Mapping[str, Any]) -> None:
    """Say which features' references are too small for the stated false-alarm rate."""
    small = d["small_reference"]
    if small["features"]:
        print(f"warning: {len(small['features'])} of {len(d['features'])} features have fewer "
              f"than {small['needed']} reference values, too few for the drift service's "
              f"false-alarm rate at alpha 0.05 ({', '.join(small['features'][:10])}"
              f"{', ...' if len(small['features']) > 10 else ''}): their drift verdicts are "
              "flagged (benchwatch_drift_reference_small); build from more rows "
              "(docs/deploy.md \"Alert routing\")")


def _calibration(cols: Mapping[str, list[Any]], args: argparse.Namespace) -> Calibration:
    for c in (args.label_column, args.prediction_column, args.confidence_column):
        if c not in cols:
            raise DriftError(f"calibration needs column {c!r}; the file has {list(cols)}")
    conf = _as_numbers(cols[args.confidence_column])
    if conf is None:
        raise DriftError(f"column {args.confidence_column!r} must be numeric")
    pairs = [(c, str(p) == str(y)) for c, p, y in zip(
        conf, cols[args.prediction_column], cols[args.label_column], strict=True)
        if c is not None and p is not None and y is not None and math.isfinite(c)]
    return Calibration.fit([c for c, _ in pairs], [ok for _, ok in pairs])


# ---- show ------------------------------------------------------------------------------------
def describe(b: Baseline) -> dict[str, Any]:
    feats: dict[str, Any] = {}
    for name, ref in sorted(b.features.items()):
        d: dict[str, Any] = {"kind": ref.kind, "n": ref.n, "missing_rate": ref.missing_rate}
        if isinstance(ref, NumericReference):
            s = ref.sorted_values
            d.update(mean=ref.mean, std=ref.std, min=float(s[0]), max=float(s[-1]),
                     bin_edges=[float(x) for x in ref.edges])
        elif isinstance(ref, CategoricalReference):
            top = sorted(zip(ref.categories, ref.counts.tolist(), strict=True),
                         key=lambda kv: -kv[1])
            d.update(categories=len(ref.categories),
                     top={k: v / ref.n for k, v in top[:10]})
        else:
            d.update(dim=ref.dim)
        feats[name] = d
    p = b.provenance
    return {
        "model": b.model, "version": b.version, "schema_version": p.schema_version,
        "provenance": {"data_hash": p.data_hash, "created_at": p.created_at,
                       "benchwatch_version": p.benchwatch_version, "source": p.source},
        "figures": [f.to_dict() for f in b.figures], "features": feats,
        "calibration": b.calibration.to_dict() if b.calibration else None,
        "tests": dict(b.tests),
        # drift.reference_size: too few values for the stated false-alarm rate
        "small_reference": {"needed": min_reference_size(max(1, len(b.features))),
                            "features": sorted(small_references(b.features))},
    }


def _show(args: argparse.Namespace) -> ExitCode:
    d = describe(Baseline.load(args.file))
    if args.json:
        print(json.dumps(d, indent=2, sort_keys=True))
        return ExitCode.OK
    p = d["provenance"]
    print(f"{d['model']}/{d['version']}  (schema {d['schema_version']}, benchwatch "
          f"{p['benchwatch_version']}, created {p['created_at']})")
    print(f"  data   {p['data_hash']}")
    if p["source"]:
        print(f"  source {p['source']}")
    for f in d["figures"]:
        rate = "" if f["rate_qps"] is None else f" at {f['rate_qps']:.4g} req/s"
        print(f"  figure {f['name']} = {f['value']:g}  ({f['point']}, {f['scenario']}{rate})")
    for name, f in d["features"].items():
        line = f"  feature {name}: {f['kind']}, n={f['n']}, missing {f['missing_rate']:.1%}"
        if f["kind"] == "numeric":
            line += f", mean {f['mean']:.4g}, std {f['std']:.4g}, range [{f['min']:.4g}, " \
                    f"{f['max']:.4g}]"
        elif f["kind"] == "categorical":
            top = ", ".join(f"{k} {v:.1%}" for k, v in list(f["top"].items())[:5])
            line += f", {f['categories']} categories (top: {top})"
        else:
            line += f", dim {f['dim']}"
        print(line)
    if d["calibration"]:
        print(f"  CBPE calibration: {len(d['calibration']['accuracy'])} bins, "
              f"n={d['calibration']['n']}")
    _warn_small(d)
    return ExitCode.OK
