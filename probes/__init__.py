"""benchwatch probes: measure every inference in the serving process.

    from probes import probe, configure
    configure(service_name="digits-api")        # Prometheus endpoint on 127.0.0.1:9464
    @probe(model="digits", version="v3")
    def predict(batch): ...
"""

from probes.asgi import ProbeMiddleware
from probes.decorator import Probe, ProbeSpan, probe
from probes.energy import DeviceReading, EnergySource
from probes.errors import BenchwatchError, ConfigError, MissingExtraError
from probes.export import PrometheusEndpoint
from probes.runtime import Runtime, configure, current, shutdown
from probes.samples import Feature, Sample, SampleError, Sink
from probes.state import DEFAULT_REGISTRY, Registry
from probes.summarize import SummarizeError, summarize_output

__all__ = [
    "DEFAULT_REGISTRY",
    "BenchwatchError",
    "ConfigError",
    "DeviceReading",
    "EnergySource",
    "Feature",
    "MissingExtraError",
    "Probe",
    "ProbeMiddleware",
    "ProbeSpan",
    "PrometheusEndpoint",
    "Registry",
    "Runtime",
    "Sample",
    "SampleError",
    "Sink",
    "SummarizeError",
    "configure",
    "current",
    "probe",
    "shutdown",
    "summarize_output",
]
