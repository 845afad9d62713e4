"""Every metric name benchwatch exports: the OpenTelemetry instrument names (`OTEL_*`) the probes
and the drift service create, and the Prometheus series names (the rest) the dashboards, rules,
demo, replay and tests read.

The names are a documented contract (docs/probes.md). The Prometheus exporter translates
OTel names: dots -> `_`, a unit suffix (`s` -> `_seconds`, `J` -> `_joules`, `By` -> `_bytes`,
`W` -> `_watts`; `1` and `{...}` add none), `_total` on counters. tests/grafana/test_promql.py
checks the dashboards' names against a real Prometheus fed by the real exporters.
"""

from __future__ import annotations

# probes: inference calls (benchwatch.inference.*)
OTEL_LATENCY = "benchwatch.inference.duration"
OTEL_ERRORS = "benchwatch.inference.errors"
OTEL_IN_FLIGHT = "benchwatch.inference.in_flight"
OTEL_BATCH_SIZE = "benchwatch.inference.batch_size"
OTEL_ENERGY = "benchwatch.inference.energy"
LATENCY = "benchwatch_inference_duration_seconds"
LATENCY_BUCKET = LATENCY + "_bucket"
REQUESTS = LATENCY + "_count"
ERRORS = "benchwatch_inference_errors_total"
IN_FLIGHT = "benchwatch_inference_in_flight"
BATCH_SIZE = "benchwatch_inference_batch_size"
ENERGY = "benchwatch_inference_energy_joules_total"

# probes: generative (streaming) requests, OTel GenAI conventions (probes/genai.py); labels
# model, model_version, gen_ai_request_model, gen_ai_operation_name (+ outcome on the duration)
OTEL_GENAI_TTFT = "gen_ai.server.time_to_first_token"
OTEL_GENAI_TPOT = "gen_ai.server.time_per_output_token"
OTEL_GENAI_DURATION = "gen_ai.server.request.duration"
OTEL_GENAI_TOKENS = "benchwatch.genai.tokens"  # the conventions have no server-side token counter
GENAI_TTFT = "gen_ai_server_time_to_first_token_seconds"
GENAI_TTFT_BUCKET = GENAI_TTFT + "_bucket"
GENAI_TPOT = "gen_ai_server_time_per_output_token_seconds"
GENAI_TPOT_BUCKET = GENAI_TPOT + "_bucket"
GENAI_DURATION = "gen_ai_server_request_duration_seconds"
GENAI_REQUESTS = GENAI_DURATION + "_count"
GENAI_TOKENS = "benchwatch_genai_tokens_total"
GENAI_TOKEN_TYPE = "gen_ai_token_type"  # "input" | "output"
# the output features of generations the drift service compares (sampled streams send output_tokens)
GENAI_OUTPUT_FEATURES = "output_tokens|stop_reason|token_confidence|token_entropy"

# probes: output statistics (benchwatch.output.*)
OTEL_OUTPUT_CLASS = "benchwatch.output.predicted_class"
OTEL_OUTPUT_CONFIDENCE = "benchwatch.output.confidence"
OTEL_OUTPUT_ENTROPY = "benchwatch.output.entropy"
OTEL_OUTPUT_VALUE = "benchwatch.output.value"
OTEL_OUTPUT_INVALID = "benchwatch.output.invalid"
OUTPUT_CLASS = "benchwatch_output_predicted_class_total"
CLASS_LABEL = "predicted_class"
OUTPUT_CONFIDENCE = "benchwatch_output_confidence"
OUTPUT_ENTROPY = "benchwatch_output_entropy"
OUTPUT_VALUE = "benchwatch_output_value"
OUTPUT_INVALID = "benchwatch_output_invalid_total"
OUTPUT_FEATURES = "predicted_class|confidence|entropy"

# probes: the probe's own health (benchwatch.probe.*)
OTEL_DROPPED = "benchwatch.probe.dropped"
OTEL_FAULTS = "benchwatch.probe.faults"
OTEL_PROBE_MODELS = "benchwatch.probe.models"
DROPPED = "benchwatch_probe_dropped_total"
FAULTS = "benchwatch_probe_faults_total"
PROBE_MODELS = "benchwatch_probe_models"

# GPU (OTel hardware semantic conventions)
OTEL_HW_ENERGY = "hw.energy"
OTEL_HW_POWER = "hw.power"
OTEL_HW_UTILIZATION = "hw.gpu.utilization"
OTEL_HW_MEMORY = "hw.gpu.memory.usage"
OTEL_HW_MEMORY_LIMIT = "hw.gpu.memory.limit"
HW_ENERGY = "hw_energy_joules_total"
HW_POWER = "hw_power_watts"
HW_UTILIZATION = "hw_gpu_utilization"
# the same gauge pushed over OTLP into Prometheus 3 (its OTLP translation adds `_ratio` to unit-1 gauges)
HW_UTILIZATION_OTLP = "hw_gpu_utilization_ratio"
HW_MEMORY = "hw_gpu_memory_usage_bytes"
HW_MEMORY_LIMIT = "hw_gpu_memory_limit_bytes"
# a device's energy attributed to no model (its idle draw, see probes/energy.py):
# hw.energy = sum of benchwatch.inference.energy over models + this, per device
OTEL_DEVICE_IDLE_ENERGY = "benchwatch.device.idle_energy"
DEVICE_IDLE_ENERGY = "benchwatch_device_idle_energy_joules_total"

# drift service (benchwatch.drift.*, .baseline.*, .accuracy.*, .ingest.*, .alerts.*)
OTEL_DRIFT_SCORE = "benchwatch.drift.score"
OTEL_DRIFT_THRESHOLD = "benchwatch.drift.threshold"
OTEL_DRIFT_P_VALUE = "benchwatch.drift.p_value"
OTEL_DRIFT_DETECTED = "benchwatch.drift.detected"
OTEL_DRIFT_SINCE = "benchwatch.drift.since_timestamp"
OTEL_DRIFT_WINDOW = "benchwatch.drift.window.samples"
OTEL_DRIFT_EVALUATED = "benchwatch.drift.last_evaluation_timestamp"
OTEL_BASELINE_FIGURE = "benchwatch.baseline.figure"
OTEL_BASELINE_REFUSED = "benchwatch.baseline.refused"
OTEL_BASELINE_LOAD = "benchwatch.baseline.load_qps"
OTEL_ACCURACY_ESTIMATED = "benchwatch.accuracy.estimated"
OTEL_ACCURACY_REALIZED = "benchwatch.accuracy.realized"
OTEL_ACCURACY_LABELS = "benchwatch.accuracy.labels"
OTEL_INGEST = "benchwatch.ingest.samples"
OTEL_ALERTS_RECEIVED = "benchwatch.alerts.received"
OTEL_ALERTS_REFUSED = "benchwatch.alerts.refused"
DRIFT_SCORE = "benchwatch_drift_score"
DRIFT_THRESHOLD = "benchwatch_drift_threshold"
DRIFT_P_VALUE = "benchwatch_drift_p_value"
DRIFT_DETECTED = "benchwatch_drift_detected"
DRIFT_SINCE = "benchwatch_drift_since_timestamp_seconds"
DRIFT_WINDOW = "benchwatch_drift_window_samples"
DRIFT_EVALUATED = "benchwatch_drift_last_evaluation_timestamp_seconds"
# a baseline reference's size, and 1 where it is too small for the stated false-alarm rate
# (drift.reference_size) {model, model_version, feature}
OTEL_DRIFT_REFERENCE_SAMPLES = "benchwatch.drift.reference.samples"
OTEL_DRIFT_REFERENCE_SMALL = "benchwatch.drift.reference.small"
DRIFT_REFERENCE_SAMPLES = "benchwatch_drift_reference_samples"
DRIFT_REFERENCE_SMALL = "benchwatch_drift_reference_small"
BASELINE_FIGURE = "benchwatch_baseline_figure"
BASELINE_REFUSED = "benchwatch_baseline_refused"
BASELINE_LOAD = "benchwatch_baseline_load_qps"
ACCURACY_ESTIMATED = "benchwatch_accuracy_estimated"
ACCURACY_REALIZED = "benchwatch_accuracy_realized"
ACCURACY_LABELS = "benchwatch_accuracy_labels"
INGEST = "benchwatch_ingest_samples_total"
ALERTS_RECEIVED = "benchwatch_alerts_received_total"
ALERTS_REFUSED = "benchwatch_alerts_refused_total"

# drift service with Kafka on: the consumer's stats (benchwatch.kafka.consumer.*)
OTEL_KAFKA_LAG = "benchwatch.kafka.consumer.lag"
OTEL_KAFKA_POISON = "benchwatch.kafka.consumer.poison"
OTEL_KAFKA_ASSIGNED = "benchwatch.kafka.consumer.assigned_partitions"
OTEL_KAFKA_GROUP_UNOWNED = "benchwatch.kafka.consumer.group_unowned_partitions"
# ConsumerStats field -> counter, for the counters that are one field each
OTEL_KAFKA_COUNTERS = {
    "commit_failures": "benchwatch.kafka.consumer.commit_failures",
    "restored_models": "benchwatch.kafka.consumer.restored_models",
    "commits": "benchwatch.kafka.consumer.commits",
    "rebalances": "benchwatch.kafka.consumer.rebalances",
    "records": "benchwatch.kafka.consumer.records",
    "restarts": "benchwatch.kafka.consumer.restarts",
    "rejoins": "benchwatch.kafka.consumer.rejoins",
}
KAFKA_PREFIX = "benchwatch_kafka_consumer_"
KAFKA_LAG = KAFKA_PREFIX + "lag"
KAFKA_POISON = KAFKA_PREFIX + "poison_total"
KAFKA_COMMIT_FAILURES = KAFKA_PREFIX + "commit_failures_total"
KAFKA_RESTORED_MODELS = KAFKA_PREFIX + "restored_models_total"
KAFKA_COMMITS = KAFKA_PREFIX + "commits_total"
KAFKA_REBALANCES = KAFKA_PREFIX + "rebalances_total"
KAFKA_RECORDS = KAFKA_PREFIX + "records_total"
KAFKA_RESTARTS = KAFKA_PREFIX + "restarts_total"
KAFKA_REJOINS = KAFKA_PREFIX + "rejoins_total"
KAFKA_ASSIGNED = KAFKA_PREFIX + "assigned_partitions"
KAFKA_GROUP_UNOWNED = KAFKA_PREFIX + "group_unowned_partitions"

# drift service: configured prices (`drift serve --price-usd-per-hour/--price-usd-per-kwh`),
# which the scorecard recording rules turn into dollars per 1 000 inferences
OTEL_PRICE_PER_HOUR = "benchwatch.price.usd_per_hour"
OTEL_PRICE_PER_KWH = "benchwatch.price.usd_per_kwh"
PRICE_PER_HOUR = "benchwatch_price_usd_per_hour"
PRICE_PER_KWH = "benchwatch_price_usd_per_kwh"

# replay (a plain prometheus_client gauge: the same name on both sides)
CANARY_VERDICT = "benchwatch_canary_verdict"

# alert names in deploy/prometheus start with this
ALERT_PREFIX = "Benchwatch"
