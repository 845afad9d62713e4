"""Where a verdict goes besides files: the `benchwatch_canary_verdict` gauge and Grafana.

The gauge is served on a Prometheus endpoint that the replay keeps up for a while after the
verdict (`--metrics-port`, `--metrics-hold-s`), because Debian's Prometheus 2.42 has no OTLP
receiver and a replay is too short-lived for a pull exporter otherwise: set the hold to at least
two scrape intervals. Values: 1 pass, 0 inconclusive, −1 fail (and −1 for could-not-run).
"""

from __future__ import annotations

import logging
import os
import time

from benchwatch.bench.judge import GAUGE_VALUES
from probes import metric_names as m

log = logging.getLogger(__name__)


def serve_verdict_gauge(outcome: str, model: str, version: str, canary: str, port: int,
                        hold_s: float, host: str = "127.0.0.1") -> None:
    """Serve the gauge on host:port for hold_s seconds, then shut the endpoint down."""
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    g = Gauge(m.CANARY_VERDICT, "canary verdict: 1 pass, 0 inconclusive, -1 fail",
              ["model", "model_version", "canary", "outcome"], registry=registry)
    g.labels(model, version, canary, outcome).set(GAUGE_VALUES[outcome])
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("verdict gauge on http://%s:%d/metrics for %.0fs", host, port, hold_s)
    try:
        time.sleep(hold_s)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def grafana_annotation(outcome: str, text: str, tags: list[str]) -> bool:
    """Add an annotation when GRAFANA_URL is set (token in GRAFANA_TOKEN, or user:password in
    the URL). Never raises: a missing Grafana must not change the verdict."""
    url = os.environ.get("GRAFANA_URL")
    if not url:
        return False
    try:
        from grafana_client.api import GrafanaApi

        api = GrafanaApi.from_url(url, credential=os.environ.get("GRAFANA_TOKEN") or None)
        api.annotations.add_annotation(time_from=int(time.time() * 1000),
                                       tags=["benchwatch", "canary", outcome, *tags], text=text)
        return True
    except Exception as e:  # noqa: BLE001 - reported, the verdict stands
        log.warning("could not add the Grafana annotation at %s: %s", url, e)
        return False
