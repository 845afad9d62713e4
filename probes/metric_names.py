"""Prometheus series names the dashboards query, as the real exporters print them.

One place to align with the probes' and the drift service's expositions (DESIGN.md's table;
OTel → Prometheus: dots → `_`, unit suffix, `_total` on counters). tests/grafana/test_promql.py
checks each against a real Prometheus fed by the real exporters.
"""

from __future__ import annotations

# probes (benchwatch.inference.*)
LATENCY = "benchwatch_inference_duration_seconds"
LATENCY_BUCKET = LATENCY + "_bucket"
REQUESTS = LATENCY + "_count"
ERRORS = "benchwatch_inference_errors_total"
IN_FLIGHT = "benchwatch_inference_in_flight"
BATCH_SIZE = "benchwatch_inference_batch_size"
ENERGY = "benchwatch_inference_energy_joules_total"
DROPPED = "benchwatch_probe_dropped_total"
FAULTS = "benchwatch_probe_faults_total"

# output statistics (benchwatch.output.*)
OUTPUT_CLASS = "benchwatch_output_predicted_class_total"
CLASS_LABEL = "predicted_class"
OUTPUT_CONFIDENCE = "benchwatch_output_confidence"
OUTPUT_ENTROPY = "benchwatch_output_entropy"
OUTPUT_FEATURES = "predicted_class|confidence|entropy"

# GPU (OTel hardware semantic conventions)
HW_ENERGY = "hw_energy_joules_total"
HW_POWER = "hw_power_watts"
HW_UTILIZATION = "hw_gpu_utilization"
HW_MEMORY_LIMIT = "hw_gpu_memory_limit_bytes"
HW_MEMORY = "hw_gpu_memory_usage_bytes"

# drift service
DRIFT_SCORE = "benchwatch_drift_score"
DRIFT_THRESHOLD = "benchwatch_drift_threshold"
DRIFT_P_VALUE = "benchwatch_drift_p_value"
DRIFT_DETECTED = "benchwatch_drift_detected"
DRIFT_WINDOW = "benchwatch_drift_window_samples"
DRIFT_SINCE = "benchwatch_drift_since_timestamp_seconds"
DRIFT_EVALUATED = "benchwatch_drift_last_evaluation_timestamp_seconds"
BASELINE_REFUSED = "benchwatch_baseline_refused"
BASELINE_FIGURE = "benchwatch_baseline_figure"
ACCURACY_ESTIMATED = "benchwatch_accuracy_estimated"
ACCURACY_REALIZED = "benchwatch_accuracy_realized"
INGEST = "benchwatch_ingest_samples_total"

# replay
CANARY_VERDICT = "benchwatch_canary_verdict"

# alert names in deploy/prometheus start with this
ALERT_PREFIX = "Benchwatch"
