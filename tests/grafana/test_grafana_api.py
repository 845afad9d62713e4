"""`benchwatch grafana push` and the annotation helper, through grafana-client.

No Grafana server can be installed on these machines. Two kinds of test:
- against a REAL Grafana only when GRAFANA_URL (and GRAFANA_TOKEN) are set; otherwise those
  tests are skipped and reported as not run;
- against `RecordingGrafana`, a FAKE of the few Grafana HTTP API endpoints we call (it only
  records requests and answers like Grafana's API docs say), to check what grafana-client sends
  on our behalf and that failures never raise into the caller.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

import pytest

from benchwatch import services
from benchwatch.cli import grafana as grafana_cmd
from benchwatch.grafana import boards as dashboards
from benchwatch.grafana.annotations import AnnotationConfig, GrafanaAnnotations
from tests.support.grafana_fake import RecordingGrafana

GRAFANA_URL = os.environ.get("GRAFANA_URL")
real_grafana = pytest.mark.skipif(
    not GRAFANA_URL, reason="NOT RUN: no real Grafana (set GRAFANA_URL and GRAFANA_TOKEN)")


def test_push_creates_folder_and_every_dashboard(fake_grafana: RecordingGrafana) -> None:
    urls = grafana_cmd.push(fake_grafana.url, "test-token", datasource_uid="my-prom")
    boards = dashboards.all_dashboards()
    assert urls == [f"/d/{d.uid}" for d in boards]
    posted = [b for m, p, b in fake_grafana.requests if p == "/api/dashboards/db"]
    assert [b["dashboard"]["uid"] for b in posted] == [d.uid for d in boards]
    for b in posted:
        assert b["overwrite"] is True and b["folderUid"] == grafana_cmd.FOLDER_UID
        ds = b["dashboard"]["templating"]["list"][0]
        assert ds["name"] == "datasource" and ds["current"]["value"] == "my-prom"
    assert ("POST", "/api/folders") in [(m, p) for m, p, _ in fake_grafana.requests]
    # second push: the folder exists now, no second create
    grafana_cmd.push(fake_grafana.url, "test-token")
    creates = [p for m, p, _ in fake_grafana.requests if m == "POST" and p == "/api/folders"]
    assert len(creates) == 1


def test_push_cli_reports_a_bad_token(fake_grafana: RecordingGrafana,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from benchwatch.cli import main

    assert main(["grafana", "push", "--url", fake_grafana.url, "--token", "wrong"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("benchwatch grafana: error: push to ") and "service-account token" in err
    assert main(["grafana", "push", "--url", ""]) == 2


def test_annotation_region_for_an_alert(fake_grafana: RecordingGrafana) -> None:
    ann = GrafanaAnnotations(AnnotationConfig(fake_grafana.url, "test-token"))

    @dataclass(frozen=True)
    class Alert:  # the shape of drift.service.alerts.ReceivedAlert
        status: str
        name: str
        labels: dict[str, str]
        annotations: dict[str, str]
        fingerprint: str
        starts_at: str

    labels = {"alertname": "BenchwatchFeatureDrift", "model": "digits", "model_version": "v3",
              "feature": "confidence"}
    firing = Alert("firing", "BenchwatchFeatureDrift", labels,
                   {"summary": "digits v3: feature confidence drifted (score 0.31)"}, "abc123",
                   "2026-11-28T14:00:00.5Z")
    ann.on_alerts([firing])
    ann.on_alerts([firing])  # repeated notification: still one region
    assert ann.flush()
    assert ann.open_keys() == ["abc123"]
    ann.on_alerts([Alert("resolved", "BenchwatchFeatureDrift", labels, {}, "abc123", "")])
    assert ann.flush()
    ann.close()
    assert ann.open_keys() == []
    posts = [b for m, p, b in fake_grafana.requests if m == "POST" and p == "/api/annotations"]
    assert len(posts) == 1
    assert posts[0]["time"] == 1795874400500
    assert posts[0]["tags"][:3] == ["benchwatch", "alert", "BenchwatchFeatureDrift"]
    assert "feature:confidence" in posts[0]["tags"]
    assert "score 0.31" in posts[0]["text"]
    patches = [(p, b) for m, p, b in fake_grafana.requests if m == "PATCH"]
    assert len(patches) == 1 and patches[0][0].startswith("/api/annotations/")
    assert set(patches[0][1]) == {"timeEnd"}


def test_annotations_never_raise(fake_grafana: RecordingGrafana) -> None:
    down = GrafanaAnnotations(AnnotationConfig(f"http://127.0.0.1:{services.free_port()}",
                                               timeout_s=1.0))
    assert down.post("x") is None
    assert down.start("k", "x") is None and down.errors == 2
    refused = GrafanaAnnotations(AnnotationConfig(fake_grafana.url, "wrong-token"))
    assert refused.post("x") is None and refused.errors == 1
    refused.reset()
    assert refused.errors == 0


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    assert GrafanaAnnotations.from_env() is None
    monkeypatch.setenv("GRAFANA_URL", "grafana:3000")
    with pytest.raises(ValueError, match="not an http"):
        AnnotationConfig.from_env()


# --- a real Grafana, only when one is configured ---------------------------------------------
@real_grafana
def test_push_to_real_grafana() -> None:
    from grafana_client import GrafanaApi

    token = os.environ.get("GRAFANA_TOKEN")
    grafana_cmd.push(GRAFANA_URL or "", token)
    api = GrafanaApi.from_url(GRAFANA_URL, credential=token)
    for d in dashboards.all_dashboards():
        got = api.dashboard.get_dashboard(d.uid)
        assert got["dashboard"]["title"] == d.title
        assert len(got["dashboard"]["panels"]) == len(d.panels)


@real_grafana
def test_annotation_on_real_grafana() -> None:
    from grafana_client import GrafanaApi

    token = os.environ.get("GRAFANA_TOKEN")
    ann = GrafanaAnnotations(AnnotationConfig(GRAFANA_URL or "", token))
    key = f"test-{uuid.uuid4().hex[:8]}"
    start = time.time() - 60
    ann_id = ann.start(key, f"benchwatch test {key}", ("test",), at=start)
    assert ann_id is not None, "annotation not created: check GRAFANA_TOKEN's role"
    assert ann.end(key)
    api = GrafanaApi.from_url(GRAFANA_URL, credential=token)
    try:
        found = api.annotations.find_annotations(tags=["benchwatch", "test"], limit=50)
        mine = [a for a in found if a["id"] == ann_id]
        assert mine and mine[0]["timeEnd"] > mine[0]["time"]
    finally:
        api.annotations.delete_annotations_by_id(ann_id)
