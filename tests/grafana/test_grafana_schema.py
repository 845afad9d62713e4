"""The dashboards round-trip through Grafana's own schema types (`grafana-foundation-sdk`, the
Grafana 11.6 line, pinned in the `dev` extra): each dashboard the generator writes is decoded
into the SDK's typed models (the dashboard, its variables, annotations and links; each panel's
options and field config by its plugin's types; each target as a Prometheus query) and encoded
back, and nothing of ours is lost or changed; every enum-typed field holds one of the enum's
values. What the SDK adds on the way back are its defaults.

One exception, because the schema has no place for it: a Prometheus annotation's own options
(`titleFormat`, `textFormat`, `tagKeys`, `useValueForTime`, `step`). Grafana's annotation schema
is datasource-agnostic (`AnnotationQuery.target` is the built-in datasource's, "TODO.. this
should just be a normal query target"); the Prometheus datasource reads these keys from the
annotation object itself, so they stay in the JSON and only they may be dropped here.
"""

from __future__ import annotations

import enum
import json
import typing
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel

from benchwatch.grafana import boards as dashboards

register_default_plugins()
BOARDS = dashboards.render_files()
PROMETHEUS_ANNOTATION_OPTIONS = {"titleFormat", "textFormat", "tagKeys", "useValueForTime", "step"}


def _lost(ours: Any, back: Any, path: str = "") -> list[str]:
    """Where `back` lacks or changed something of `ours` (keys `back` adds are its defaults)."""
    if isinstance(ours, dict) and isinstance(back, dict):
        out = []
        for k, v in ours.items():
            if k not in back:
                out.append(f"{path}/{k} lost (was {json.dumps(v)[:80]})")
            else:
                out += _lost(v, back[k], f"{path}/{k}")
        return out
    if isinstance(ours, list) and isinstance(back, list):
        if len(ours) != len(back):
            return [f"{path}: {len(ours)} items became {len(back)}"]
        return [x for i, (a, b) in enumerate(zip(ours, back, strict=True))
                for x in _lost(a, b, f"{path}[{i}]")]
    return [] if ours == back else [f"{path}: {ours!r} became {back!r}"]


def _enums(hint: Any) -> list[type[enum.Enum]]:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return [hint]
    return [e for arg in typing.get_args(hint) for e in _enums(arg)]


def _bad_enums(obj: Any, path: str = "") -> list[str]:
    """Every enum-typed field of the decoded models whose value is none of the enum's (the
    SDK's decoder stores the raw JSON value without checking it)."""
    if isinstance(obj, list):
        return [x for i, item in enumerate(obj) for x in _bad_enums(item, f"{path}[{i}]")]
    if not hasattr(obj, "to_json") or isinstance(obj, UnknownDataquery):
        return []
    out = []
    for name, hint in typing.get_type_hints(type(obj)).items():
        value = getattr(obj, name, None)
        kinds = _enums(hint)
        if kinds and value is not None and not isinstance(value, enum.Enum):
            if not any(value in {e.value for e in kind} for kind in kinds):
                out.append(f"{path}.{name} = {value!r}: not one of "
                           f"{[e.value for k in kinds for e in k]}")
        out += _bad_enums(value, f"{path}.{name}")
    return out


def _without_annotation_options(board: dict[str, Any]) -> dict[str, Any]:
    """`board` less the Prometheus annotations' own options (module docstring)."""
    out = json.loads(json.dumps(board))
    for a in out["annotations"]["list"]:
        if a["datasource"]["type"] == "prometheus":
            for key in PROMETHEUS_ANNOTATION_OPTIONS:
                a.pop(key, None)
    return out


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_round_trips_through_grafanas_schema(name: str) -> None:
    ours = json.loads(BOARDS[name])
    model = Dashboard.from_json(ours)
    back = json.loads(JSONEncoder(sort_keys=True).encode(model))

    # decoded by the plugins' own types, not kept as an opaque bag (which loses nothing trivially)
    assert model.panels
    for p in model.panels:
        assert isinstance(p, Panel) and not isinstance(p.options, dict), (p.title, p.type_val)
        assert p.targets and all(isinstance(t, prometheus.Dataquery) for t in p.targets), p.title
    assert _lost(_without_annotation_options(ours), back) == []
    assert _bad_enums(model) == []


def test_schema_version_is_the_sdks() -> None:
    """The dashboards declare the schema version of the SDK's Grafana line (no migration of
    ours runs when Grafana loads them)."""
    assert dashboards.SCHEMA_VERSION == Dashboard().schema_version
    assert {json.loads(text)["schemaVersion"] for text in BOARDS.values()} == {dashboards.SCHEMA_VERSION}


def test_the_checks_catch_what_grafana_would_drop() -> None:
    """Controls: an obsolete option (the heatmap's old `tooltip.show`), an unknown panel field
    and a wrong enum value are reported."""
    ours = json.loads(BOARDS["benchwatch-overview.json"])
    heatmap = next(p for p in ours["panels"] if p["type"] == "heatmap")
    heatmap["options"]["tooltip"]["show"] = True
    heatmap["noSuchField"] = 1
    ours["panels"][0]["options"]["legend"]["displayMode"] = "lists"
    model = Dashboard.from_json(ours)
    back = json.loads(JSONEncoder(sort_keys=True).encode(model))
    lost = _lost(_without_annotation_options(ours), back)
    assert any(x.endswith("/options/tooltip/show lost (was true)") for x in lost), lost
    assert any("/noSuchField lost" in x for x in lost), lost
    assert any("display_mode = 'lists'" in x for x in _bad_enums(model)), _bad_enums(model)
