"""Grafana: the dashboards as code (model, boards, rendering to Grafana JSON) and annotations."""
