"""deploy/k8s: kustomize builds it, references resolve, ports/images agree with the code.

No cluster here: `kubectl kustomize` (offline) renders the manifests; the checks below do what
a server-side dry run would catch for these resources, plus our own consistency rules.
configmaps.generated.yaml is `benchwatch export` output (test_export.py keeps it current).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from benchwatch import deploy, rules
from tests.support.deploy_ports import DEPLOY, PORT_NAMES, documented_ports

K8S = DEPLOY / "k8s"


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, f"kubectl kustomize deploy/k8s failed:\n{out.stderr}"
        return _docs(out.stdout)
    # without kubectl: the files listed by the kustomization, as they are
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [d for f in kust["resources"] for d in _docs((K8S / f).read_text())]


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet"):
            out[o["metadata"]["name"]] = o["spec"]["template"]["spec"]
        elif o["kind"] == "Job":
            out[o["metadata"]["name"]] = o["spec"]["template"]["spec"]
    return out


def test_every_resource_is_namespaced_and_listed(objects: list[dict[str, Any]]) -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for f in kust["resources"]:
        assert (K8S / f).exists(), f"kustomization lists missing {f}"
    for o in objects:
        assert o["apiVersion"] and o["kind"] and o["metadata"]["name"]
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace", "benchwatch") == "benchwatch"


def test_workloads_reference_existing_configmaps_and_keys(objects: list[dict[str, Any]]) -> None:
    cms = _by_kind(objects, "ConfigMap")
    for name, spec in _pod_specs(objects).items():
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            image = c["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
            for mount in c.get("volumeMounts", []):
                vol = vols.get(mount["name"])
                assert vol is not None or mount["name"] in {
                    t["metadata"]["name"] for t in _claim_templates(objects, name)}, \
                    f"{name}: mount of undeclared volume {mount['name']}"
                if vol and "configMap" in vol:
                    cm = cms.get(vol["configMap"]["name"])
                    assert cm is not None, f"{name}: no ConfigMap {vol['configMap']['name']}"
                    assert cm.get("data"), f"ConfigMap {cm['metadata']['name']} is empty"
                    if "subPath" in mount:
                        assert mount["subPath"] in cm["data"], \
                            f"{name}: ConfigMap {cm['metadata']['name']} has no {mount['subPath']}"


def _claim_templates(objects: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    sts = _by_kind(objects, "StatefulSet").get(name)
    return sts["spec"].get("volumeClaimTemplates", []) if sts else []


def test_configmaps_carry_the_real_files(objects: list[dict[str, Any]]) -> None:
    cms = _by_kind(objects, "ConfigMap")
    prom = yaml.safe_load(cms["prometheus-config"]["data"]["prometheus.yml"])
    assert prom["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    packaged = {f.name: f.read_text() for f in rules.rule_files()}
    assert packaged and cms["prometheus-rules"]["data"] == packaged
    for text in packaged.values():
        assert yaml.safe_load(text)["groups"]
    assert set(cms["grafana-dashboards"]["data"]) == {
        rel.rsplit("/", 1)[1] for rel in deploy.export_files()
        if rel.startswith(deploy.DASHBOARDS + "/")}
    assert cms["alertmanager-config"]["data"] == {"alertmanager.yml": deploy.stack_alertmanager()}


def test_services_select_pods_and_ports(objects: list[dict[str, Any]]) -> None:
    workloads = {o["metadata"]["name"]: o for o in objects
                 if o["kind"] in ("Deployment", "StatefulSet")}
    for name, svc in _by_kind(objects, "Service").items():
        sel = svc["spec"]["selector"]
        matches = [w for w in workloads.values()
                   if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v
                          for k, v in sel.items())]
        assert matches, f"Service {name} selects no workload"
        cports = {p["containerPort"] for w in matches
                  for c in w["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in cports, f"Service {name}: no container port {p['targetPort']}"
    for w in workloads.values():
        assert w["spec"]["selector"]["matchLabels"].items() <= \
            w["spec"]["template"]["metadata"]["labels"].items()


def test_ports_match_documented_defaults(objects: list[dict[str, Any]]) -> None:
    services = _by_kind(objects, "Service")
    documented = documented_ports()
    for name, (service, port) in PORT_NAMES.items():
        assert documented[name] == port
        assert port in {p["port"] for p in services[service]["spec"]["ports"]}, \
            f"Service {service} lacks {name} port {port}"


def test_servicemonitor_selects_metrics_services(objects: list[dict[str, Any]]) -> None:
    sm = yaml.safe_load((K8S / "servicemonitor.yaml").read_text())
    assert sm["kind"] == "ServiceMonitor" and sm["apiVersion"] == "monitoring.coreos.com/v1"
    sel = sm["spec"]["selector"]["matchLabels"]
    port_name = sm["spec"]["endpoints"][0]["port"]
    selected = [s for s in _by_kind(objects, "Service").values()
                if sel.items() <= s["metadata"].get("labels", {}).items()]
    assert {s["metadata"]["name"] for s in selected} >= {"model", "drift"}
    for s in selected:
        assert port_name in {p["name"] for p in s["spec"]["ports"]}


def test_images_agree_with_compose(objects: list[dict[str, Any]]) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    compose_images = {s["image"].split(":")[0]: s["image"] for s in compose["services"].values()}
    for spec in _pod_specs(objects).values():
        for c in spec["containers"]:
            repo = c["image"].split(":")[0]
            if repo in compose_images:
                assert c["image"] == compose_images[repo], f"{c['image']} vs compose"
