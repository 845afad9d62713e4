"""The demo's terminal view: a rich.live panel on a TTY, plain progress lines otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from benchwatch.bench.stats import min_queries
from drift.figures import Figure

NO_BASELINE = "no baseline at this point"
P99_CALLS = min_queries(0.99)  # fewer calls than this make no p99 (MLPerf's early-stopping count)


@dataclass(frozen=True)
class FeatureScore:
    feature: str
    score: float
    threshold: float | None
    detected: bool
    test: str = ""


@dataclass(frozen=True)
class DemoStatus:
    """What the demo's view shows at one refresh."""

    elapsed_s: float
    duration_s: float
    drift_at_s: float
    drifting: bool
    requests: int
    errors: int
    qps: float | None
    p50_s: float | None  # model call, from the server's probe histogram over the last seconds
    p99_s: float | None
    client_p50_s: float | None  # end-to-end HTTP, from the traffic generator
    client_p99_s: float | None
    p99_calls: int | None = None  # calls the model-call quantiles rest on
    client_calls: int | None = None  # and the client's
    # {point: {figure name: the baseline's figure measured at that point}}
    baseline: Mapping[str, Mapping[str, Figure]] = field(default_factory=dict)
    joules_per_inference: float | None = None
    gpu: bool = False
    scores: tuple[FeatureScore, ...] = ()
    alert: str | None = None
    samples_dropped: float | None = None


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 1000:.2f} ms"


def _ratio(v: float | None, ref: float | None) -> str:
    if v is None or not ref:
        return ""
    r = v / ref
    color = "green" if r <= 1.1 else "yellow" if r <= 1.5 else "red"
    return f"[{color}]{r:.2f}×[/{color}]"


def _baseline(f: Figure | None, unit: str = "s") -> str:
    if f is None:
        return NO_BASELINE
    value = _ms(f.value) if unit == "s" else f"{f.value:.4f} J"
    rate = "" if f.rate_qps is None else f" @ {f.rate_qps:.0f} req/s"
    return f"{value} ({f.scenario}{rate})"


def render(s: DemoStatus, header: str) -> Group:
    phase = "[bold red]DRIFTING[/]" if s.drifting else f"clean (drift at {s.drift_at_s:.0f} s)"
    title = Text.from_markup(
        f"[bold]{header}[/]   t = {s.elapsed_s:5.1f} / {s.duration_s:.0f} s   traffic: {phase}")

    perf = Table(title="live vs the benchmark baseline, each at the same measurement point",
                 expand=True)
    for col in ("figure", "live", "baseline (scenario)", "live / baseline"):
        perf.add_column(col)
    call, client = s.baseline.get("model_call", {}), s.baseline.get("http_client", {})
    for label, live, base, calls in (
            ("p50 model call (probe)", s.p50_s, call.get("latency_p50_s"), None),
            ("p99 model call (probe)", s.p99_s, call.get("latency_p99_s"), s.p99_calls),
            ("p50 HTTP (client)", s.client_p50_s, client.get("latency_p50_s"), None),
            ("p99 HTTP (client)", s.client_p99_s, client.get("latency_p99_s"), s.client_calls)):
        few = calls is not None and calls < P99_CALLS
        perf.add_row(label, _ms(live) + ("" if calls is None else f" ({calls} calls)"),
                     _baseline(base), f"too few calls for a p99 (< {P99_CALLS})" if few and base
                     else _ratio(live, base.value if base else None))
    perf.add_row("throughput (offered)", "n/a" if s.qps is None else f"{s.qps:.1f} req/s",
                 "", "")
    perf.add_row("requests / errors", f"{s.requests} / {s.errors}", "", "")
    if s.gpu:
        base = call.get("energy_per_inference_j")
        perf.add_row("energy per inference (probe)",
                     "n/a" if s.joules_per_inference is None else f"{s.joules_per_inference:.4f} J",
                     _baseline(base, "J"),
                     _ratio(s.joules_per_inference, base.value if base else None))
    else:
        perf.add_row("energy per inference", "no energy counter here (NVML/RAPL absent)", "",
                     "")

    drift = Table(title="drift scores per feature (live window vs baseline)", expand=True)
    for col in ("feature", "test", "score", "threshold", "drift"):
        drift.add_column(col)
    for f in s.scores:
        flag = "[bold red]YES[/]" if f.detected else "[green]no[/]"
        drift.add_row(f.feature, f.test, f"{f.score:.4f}",
                      "" if f.threshold is None else f"{f.threshold:.4f}", flag)
    if not s.scores:
        drift.add_row("(waiting for the first evaluation)", "", "", "", "")

    alert = Text.from_markup(f"[bold white on red] ALERT [/] {escape(s.alert)}" if s.alert
                             else "[dim]no alert firing[/]")
    return Group(title, perf, drift, alert)


def plain_line(s: DemoStatus) -> str:
    top = max(s.scores, key=lambda f: f.score, default=None)
    drift = "n/a" if top is None else f"{top.feature}={top.score:.3f}{'!' if top.detected else ''}"
    qps = "n/a" if s.qps is None else f"{s.qps:.1f}"
    return (f"demo t={s.elapsed_s:5.1f}s {'DRIFTING' if s.drifting else 'clean'} req={s.requests} "
            f"err={s.errors} qps={qps} p50={_ms(s.p50_s)} p99={_ms(s.p99_s)} "
            f"top_drift={drift} alert={'FIRING' if s.alert else 'none'}")


class View:
    """Live panel when `live` (default: stdout is a TTY), else one plain line every `every_s`."""

    def __init__(self, header: str, live: bool | None = None, every_s: float = 5.0,
                 out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.live_mode = self.out.isatty() if live is None else live
        self.header, self.every_s = header, every_s
        self.console = Console(file=self.out, force_terminal=self.live_mode or None)
        self._live: Live | None = None
        self._last_plain = 0.0

    def __enter__(self) -> View:
        if self.live_mode:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, s: DemoStatus) -> None:
        if self._live is not None:
            self._live.update(render(s, self.header))
        elif time.monotonic() - self._last_plain >= self.every_s:
            self._last_plain = time.monotonic()
            self.say(plain_line(s))

    def say(self, line: str) -> None:
        """An event line (drift started, alert fired, report path): printed in both modes."""
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.out, flush=True)

    def final(self, s: DemoStatus) -> None:
        if self._live is None:
            self.console.print(render(s, self.header))
