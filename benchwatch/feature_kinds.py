"""One rule for the kind of every baseline feature, whoever builds the baseline.

`benchwatch baseline build` (from a CSV or Parquet reference) and `benchwatch bench` (from the
model's outputs) both type columns here, so the same column gets the same kind and the drift
service compares it the same way:
1. `--kind COL=KIND` wins.
2. The probe's output features keep the probe's kinds: `predicted_class` is categorical (the
   probe sends class labels as text, "3"), `confidence` and `entropy` numeric, even where a CSV
   holds the class as a number.
3. Text in a typed source (a Parquet string column, an output label) stays categorical, even
   where every value reads as a number.
4. Otherwise numbers (a CSV cell is text until it parses) are numeric, lists of numbers a
   vector, anything else categorical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OUTPUT_KINDS = {"predicted_class": "categorical", "confidence": "numeric", "entropy": "numeric"}


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def feature_kind(name: str, values: Sequence[Any], forced: str | None = None,
                 typed: bool = False) -> str:
    """numeric, categorical or vector for the column `name` (the rules in the module doc);
    `typed`: the values come from a source that keeps types (Parquet, model outputs)."""
    if forced:
        return forced
    if name in OUTPUT_KINDS:
        return OUTPUT_KINDS[name]
    present = [v for v in values if v is not None]
    if any(isinstance(v, tuple | list) for v in present):
        return "vector"
    if typed and any(isinstance(v, str) for v in present):
        return "categorical"
    if present and all(_number(v) is not None for v in present):
        return "numeric"
    return "categorical"


def typed_values(kind: str, values: Sequence[Any], name: str = "") -> list[Any]:
    """The column's values as that kind wants them: floats (None for missing), text labels,
    or the vectors as they are. A predicted class reads as the probe writes it: 3, 3.0 and
    "3.0" are "3"."""
    if kind == "numeric":
        return [None if v is None else _number(v) for v in values]
    if kind == "categorical":
        canonical = name in OUTPUT_KINDS
        return [None if v is None else _label(v, canonical) for v in values]
    return list(values)


def _label(v: Any, canonical: bool) -> str:
    n = _number(v) if canonical or not isinstance(v, str) else None
    if n is not None and n.is_integer():
        return str(int(n))
    return str(v)
