"""The canary judge: per-metric non-inferiority with intervals, three outcomes, Holm across
the gating metrics.

For a latency quantile the statistic is the ratio canary / reference (reference = the primary
replayed in the same run, or a baseline figure). Its distribution comes from the exact bootstrap
of each arm's order statistic (`stats.bootstrap_quantile`), independent arms, or, against a
primary that answered the same queries, from a moving-block bootstrap of the query pairs
(`stats.paired_bootstrap_quantiles`, blocks of `stats.block_length`).
- PASS when the upper one-sided (1 − α) bound of the ratio is below the margin (per quantile:
  `LATENCY_MARGINS`)
  (p_pass = P*(ratio >= margin) <= α: H0 "canary is worse by the margin or more" rejected).
  PASS overall needs every gating metric to pass (an intersection-union test: no correction).
- FAIL when H0 "canary is within the margin" is rejected for some metric with Holm's step-down
  across the gating metrics (family-wise false-fail rate <= α).
- INCONCLUSIVE otherwise, and whenever a metric lacks its minimum sample size
  (>= 64 queries for p90, >= 662 for p99, as in LoadGen's early stopping).
So a canary exactly at the margin fails with probability <= α and passes with probability <= α.
Accuracy uses the paired McNemar-type test when the primary ran on the same rows, else an
exact binomial test against the baseline figure. Output distributions use `drift.compare`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from benchwatch.bench import stats
from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError

PASS, FAIL, INCONCLUSIVE, NOT_MEASURED = "pass", "fail", "inconclusive", "not_measured"
EXIT_CODES = {PASS: ExitCode.OK, FAIL: ExitCode.FINDING, INCONCLUSIVE: ExitCode.INCONCLUSIVE,
              "error": ExitCode.COULD_NOT_RUN}
GAUGE_VALUES = {PASS: 1, INCONCLUSIVE: 0, FAIL: -1, "error": -1}
# (quantile, margin): canary quantile <= margin x reference. The tails get wider margins because
# two identical servers differ more there: on the quiet 2-core VM, 20 A/A replays of 5 000
# queries put their p50 ratio within 0.99-1.01, p90 within 0.96-1.13, and p99 within 0.80-1.23
# with 95% upper bounds up to 1.55 (benchmarks/replay_aa.py; docs/bench.md "Latency margins").
LATENCY_MARGINS: tuple[tuple[float, float], ...] = ((0.5, 1.10), (0.9, 1.25), (0.99, 1.5))


@dataclass(frozen=True)
class JudgeSettings:
    alpha: float = 0.05
    latency_margins: tuple[tuple[float, float], ...] = LATENCY_MARGINS  # the quantiles judged
    accuracy_margin: float = 0.01  # canary accuracy >= reference - 0.01
    energy_margin: float = 1.10
    min_accuracy_rows: int = 100
    min_energy_windows: int = 5
    flip_margin: float = 0.01  # canary flip rate under tiny noise <= reference + 0.01
    drift_features: tuple[str, ...] = ("predicted_class", "confidence")
    bootstrap_draws: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 0.5:
            raise UsageError(f"--alpha must be in (0, 0.5), got {self.alpha}")
        if (any(m < 1 for _, m in self.latency_margins) or self.energy_margin < 1
                or self.accuracy_margin < 0 or self.flip_margin < 0):
            raise UsageError("margins are tolerances: latency/energy >= 1.0, accuracy and "
                             "flip rate >= 0")

    @property
    def quantiles(self) -> tuple[float, ...]:
        return tuple(q for q, _ in self.latency_margins)

    def latency_margin(self, q: float) -> float:
        """The margin of latency quantile q (KeyError: q is not judged)."""
        return dict(self.latency_margins)[q]


@dataclass(frozen=True)
class Arm:
    """What one side of the comparison measured. Either raw samples or baseline figures."""

    name: str
    latencies_s: np.ndarray | None = field(default=None, repr=False)
    correct: np.ndarray | None = field(default=None, repr=False)  # bool per suite row (paired)
    features: Mapping[str, Sequence[Any]] = field(default_factory=dict, repr=False)
    energy_j: np.ndarray | None = field(default=None, repr=False)  # per inference
    figures: Mapping[str, float] = field(default_factory=dict)  # baseline figures when no samples
    # per perturbed query (benchwatch.bench.robustness.flip_pass): did tiny noise flip the class
    flipped: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    outcome: str
    gating: bool
    estimate: float | None  # ratio (latency, energy), difference (accuracy), effect (drift)
    lower: float | None  # one-sided (1 - alpha) bounds, i.e. a (1 - 2 alpha) interval
    upper: float | None
    margin: float | None
    direction: str  # "ratio<=margin", "diff>=-margin", "no drift"
    p_pass: float | None = None
    p_fail: float | None = None
    p_fail_holm: float | None = None
    n_reference: int = 0
    n_canary: int = 0
    reason: str = ""
    canary_value: float | None = None
    reference_value: float | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: str
    metrics: tuple[MetricVerdict, ...]
    settings: JudgeSettings
    reason: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        settings = {k: list(v) if isinstance(v, tuple) else v
                    for k, v in self.settings.__dict__.items()}
        settings["latency_margins"] = {f"p{q * 100:g}": m
                                       for q, m in self.settings.latency_margins}
        return {"outcome": self.outcome, "exit_code": self.exit_code, "reason": self.reason,
                "settings": settings,
                "metrics": [{k: clean(v) for k, v in m.__dict__.items()} for m in self.metrics]}


def _smoothed(count: int, total: int) -> float:
    return (count + 1) / (total + 1)


def judge_quantile(canary: np.ndarray, reference: np.ndarray | float, q: float,
                   s: JudgeSettings, rng: np.random.Generator,
                   paired: tuple[np.ndarray, np.ndarray] | None = None) -> MetricVerdict:
    """`paired`: bootstrap replicates of (canary, reference) quantile from resampled pairs
    (`stats.paired_bootstrap_quantiles`), when both arms answered the same queries together."""
    name = f"latency_p{q * 100:g}"
    margin = s.latency_margin(q)
    need = stats.min_queries(q)
    n_c = len(canary)
    n_r = len(reference) if isinstance(reference, np.ndarray) else 0
    c_val = stats.quantile(canary, q) if n_c else float("nan")
    if isinstance(reference, np.ndarray):
        r_val = stats.quantile(reference, q) if n_r else float("nan")
    else:
        r_val = float(reference)
    base = MetricVerdict(name, INCONCLUSIVE, True, None, None, None, margin,
                         "ratio<=margin", n_reference=n_r, n_canary=n_c,
                         canary_value=c_val, reference_value=r_val)
    short = [f"{label} has {n} < {need} queries" for label, n, is_sample in
             (("canary", n_c, True), ("reference", n_r, isinstance(reference, np.ndarray)))
             if is_sample and n < need]
    if short:
        return replace(base, reason=f"not significant: {'; '.join(short)} needed for p{q * 100:g}")
    if not (r_val > 0):
        return replace(base, reason=f"reference p{q * 100:g} is {r_val}: cannot form a ratio")
    if paired is not None:
        boot_c, boot_r = paired
    else:
        boot_c = stats.bootstrap_quantile(canary, q, s.bootstrap_draws, rng)
        boot_r = (stats.bootstrap_quantile(reference, q, s.bootstrap_draws, rng)
                  if isinstance(reference, np.ndarray) else np.full(s.bootstrap_draws, r_val))
    ratio = boot_c / boot_r
    b = len(ratio)
    p_pass = _smoothed(int(np.sum(ratio >= margin)), b)
    p_fail = _smoothed(int(np.sum(ratio <= margin)), b)
    lo, hi = np.quantile(ratio, [s.alpha, 1 - s.alpha])
    how = (f"paired bootstrap over {n_c} query pairs in blocks of {stats.block_length(n_c)}"
           if paired is not None else
           "bootstrap against a baseline figure" if n_r == 0 else "independent bootstrap")
    return replace(base, estimate=c_val / r_val, lower=float(lo), upper=float(hi),
                   p_pass=p_pass, p_fail=p_fail, reason=how)


def judge_accuracy(canary: Arm, reference: Arm, s: JudgeSettings) -> MetricVerdict:
    base = MetricVerdict("accuracy", NOT_MEASURED, True, None, None, None, s.accuracy_margin,
                         "diff>=-margin")
    if canary.correct is None:
        return replace(base, gating=False, reason="canary accuracy not measured")
    c_ok = np.asarray(canary.correct, dtype=bool)
    n = len(c_ok)
    if n < s.min_accuracy_rows:
        return replace(base, outcome=INCONCLUSIVE, n_canary=n,
                       reason=f"not significant: {n} < {s.min_accuracy_rows} rows")
    from scipy.stats import binomtest, norm

    if reference.correct is not None and len(reference.correct) == n:
        r_ok = np.asarray(reference.correct, dtype=bool)
        d, se, p_pass, p_fail, mc_p = stats.paired_accuracy_noninferiority(r_ok, c_ok,
                                                                          s.accuracy_margin)
        z = norm.ppf(1 - s.alpha)
        return replace(base, outcome=INCONCLUSIVE, estimate=d, lower=d - z * se,
                       upper=d + z * se, p_pass=p_pass, p_fail=p_fail, n_reference=n,
                       n_canary=n, canary_value=float(c_ok.mean()),
                       reference_value=float(r_ok.mean()),
                       reason=f"paired (McNemar exact p for any difference = {mc_p:.3g})")
    ref_acc = reference.figures.get("accuracy")
    if ref_acc is None:
        return replace(base, gating=False, n_canary=n, canary_value=float(c_ok.mean()),
                       reason="no reference accuracy (no primary, no baseline figure)")
    k = int(c_ok.sum())
    p0 = min(max(float(ref_acc) - s.accuracy_margin, 1e-9), 1 - 1e-9)
    p_pass = float(binomtest(k, n, p0, alternative="greater").pvalue)
    p_fail = float(binomtest(k, n, p0, alternative="less").pvalue)
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * s.alpha)
    acc = k / n
    return replace(base, outcome=INCONCLUSIVE, estimate=acc - float(ref_acc),
                   lower=ci.low - float(ref_acc), upper=ci.high - float(ref_acc),
                   p_pass=p_pass, p_fail=p_fail, n_canary=n, canary_value=acc,
                   reference_value=float(ref_acc), reason="exact binomial vs baseline figure")


def _tango_noninferiority(ref_ok: np.ndarray, canary_ok: np.ndarray,
                          margin: float) -> tuple[float, float, float, float]:
    """Tango's (1998) score test of paired non-inferiority, canary >= reference - margin:
    (difference, its standard error under H0, p of H0 "worse by >= margin", p of H0 "worse by
    <= margin"). The variance comes from the restricted MLE of the discordant cell under
    H0, which keeps a canary exactly at the margin passed <= alpha where the Wald form passes
    6% (benchmarks/flip_gate_calibration.py)."""
    from scipy.stats import norm

    n = len(ref_ok)
    n12 = int(np.sum(canary_ok & ~ref_ok))  # canary right, reference wrong
    n21 = int(np.sum(~canary_ok & ref_ok))
    d0 = -margin
    a, b, c = 2 * n, -n12 - n21 + (2 * n - n12 + n21) * d0, -n21 * d0 * (1 - d0)
    q21 = (math.sqrt(max(b * b - 4 * a * c, 0.0)) - b) / (2 * a)
    var = n * (2 * q21 + d0 * (1 - d0))
    se = math.sqrt(var) / n if var > 0 else 0.0
    z = (n12 - n21 - n * d0) / math.sqrt(var) if var > 0 else math.inf
    return (n12 - n21) / n, se, float(norm.sf(z)), float(norm.cdf(z))


def judge_flip_rate(canary: Arm, reference: Arm, s: JudgeSettings) -> MetricVerdict:
    """Flip rate under tiny noise (label-free robustness), non-inferiority: canary <= reference
    + margin. Paired by perturbed query when the primary got the same queries (Tango's score
    test on "stable" = not flipped), else an exact binomial test against the baseline's
    `flip_rate` figure. The estimate is canary - reference."""
    base = MetricVerdict("flip_rate", NOT_MEASURED, False, None, None, None, s.flip_margin,
                         "diff<=margin")
    if canary.flipped is None:
        return replace(base, reason="canary flip rate not measured")
    c = np.asarray(canary.flipped, dtype=bool)
    n = len(c)
    if n < s.min_accuracy_rows:
        return replace(base, outcome=INCONCLUSIVE, gating=True, n_canary=n,
                       reason=f"not significant: {n} < {s.min_accuracy_rows} perturbed queries")
    from scipy.stats import binomtest, norm

    if reference.flipped is not None and len(reference.flipped) == n:
        r = np.asarray(reference.flipped, dtype=bool)
        d, se, p_pass, p_fail = _tango_noninferiority(~r, ~c, s.flip_margin)
        z = norm.ppf(1 - s.alpha)
        mc_p = stats.mcnemar_exact_p(int(np.sum(r & ~c)), int(np.sum(~r & c)))
        return replace(base, outcome=INCONCLUSIVE, gating=True, estimate=-d,
                       lower=-d - z * se, upper=-d + z * se, p_pass=p_pass, p_fail=p_fail,
                       n_reference=n, n_canary=n, canary_value=float(c.mean()),
                       reference_value=float(r.mean()),
                       reason=f"paired, same perturbed queries: Tango's score test (McNemar "
                              f"exact p = {mc_p:.3g})")
    ref = reference.figures.get("flip_rate")
    if ref is None:
        return replace(base, n_canary=n, canary_value=float(c.mean()),
                       reason="no reference flip rate (no primary, no baseline figure)")
    k = int(c.sum())
    p0 = min(max(float(ref) + s.flip_margin, 1e-9), 1 - 1e-9)
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * s.alpha)
    return replace(base, outcome=INCONCLUSIVE, gating=True, estimate=k / n - float(ref),
                   lower=ci.low - float(ref), upper=ci.high - float(ref),
                   p_pass=float(binomtest(k, n, p0, alternative="less").pvalue),
                   p_fail=float(binomtest(k, n, p0, alternative="greater").pvalue),
                   n_canary=n, canary_value=k / n, reference_value=float(ref),
                   reason="exact binomial vs baseline figure")


def judge_energy(canary: Arm, reference: Arm, s: JudgeSettings,
                 rng: np.random.Generator) -> MetricVerdict:
    base = MetricVerdict("energy_per_inference", NOT_MEASURED, False, None, None, None,
                         s.energy_margin, "ratio<=margin")
    if canary.energy_j is None or len(canary.energy_j) == 0:
        return replace(base, reason="no energy readings (no GPU/NVML on the canary)")
    c = np.asarray(canary.energy_j, dtype=float)
    ref_fig = reference.figures.get("energy_per_inference_j")
    n_ref = 0 if reference.energy_j is None else len(reference.energy_j)
    if len(c) < s.min_energy_windows or (not ref_fig and n_ref < s.min_energy_windows):
        if n_ref == 0 and not ref_fig:
            return replace(base, n_canary=len(c), reason="no reference energy")
        return replace(base, outcome=INCONCLUSIVE, gating=True, n_canary=len(c),
                       n_reference=n_ref,
                       reason=f"not significant: fewer than {s.min_energy_windows} energy windows")
    if reference.energy_j is not None and len(reference.energy_j):
        r = np.asarray(reference.energy_j, dtype=float)
        boot_r = rng.choice(r, (s.bootstrap_draws, len(r))).mean(1)
    elif ref_fig:
        r, boot_r = np.array([]), np.full(s.bootstrap_draws, float(ref_fig))
    else:
        return replace(base, reason="no reference energy figure")
    boot_c = rng.choice(c, (s.bootstrap_draws, len(c))).mean(1)
    ratio = boot_c / boot_r
    b = len(ratio)
    lo, hi = np.quantile(ratio, [s.alpha, 1 - s.alpha])
    return replace(base, outcome=INCONCLUSIVE, gating=True,
                   estimate=float(c.mean() / boot_r.mean()), lower=float(lo), upper=float(hi),
                   p_pass=_smoothed(int(np.sum(ratio >= s.energy_margin)), b),
                   p_fail=_smoothed(int(np.sum(ratio <= s.energy_margin)), b),
                   n_canary=len(c), n_reference=len(r), canary_value=float(c.mean()),
                   reference_value=float(boot_r.mean()))


def judge_outputs(canary: Arm, reference: Arm, s: JudgeSettings, alpha: float) -> list[MetricVerdict]:
    """Output distributions: drift.compare per feature. A difference test with an effect-size
    floor: FAIL on detected drift, PASS otherwise (no drift of a size that matters)."""
    out = []
    for feat in s.drift_features:
        c, r = canary.features.get(feat), reference.features.get(feat)
        name = f"output_{feat}"
        if c is None or r is None or len(c) == 0 or (isinstance(r, Sequence) and len(r) == 0):
            out.append(MetricVerdict(name, NOT_MEASURED, False, None, None, None, None,
                                     "no drift", reason="feature missing on one side"))
            continue
        try:
            from drift import compare

            # r is raw values (the primary) or a prepared reference from a drift.Baseline
            ref = list(r) if isinstance(r, Sequence | np.ndarray) else r
            res = compare(ref, list(c), alpha=alpha, seed=s.seed)
        except Exception as e:  # noqa: BLE001 - reported, never fatal to the verdict
            out.append(MetricVerdict(name, NOT_MEASURED, False, None, None, None, None,
                                     "no drift", reason=f"drift.compare unavailable: {e}"))
            continue
        p = res.p_value if res.p_value is not None else (0.0 if res.detected else 1.0)
        out.append(MetricVerdict(
            name, INCONCLUSIVE, True, float(res.effect_size), None, None,
            float(res.min_effect), "no drift", p_pass=0.0 if not res.detected else 1.0,
            p_fail=p if res.detected else 1.0, n_reference=res.n_reference,
            n_canary=res.n_current, canary_value=float(res.score),
            reference_value=float(res.threshold),
            reason=f"{res.test}: effect {res.effect_size:.4g} vs floor {res.min_effect:.4g}, "
                   f"p={p:.3g}"))
    return out


def judge(canary: Arm, reference: Arm, settings: JudgeSettings | None = None) -> Verdict:
    s = settings or JudgeSettings()
    rng = np.random.default_rng(s.seed)
    metrics: list[MetricVerdict] = []
    if canary.latencies_s is not None:
        ref_lat: np.ndarray | None = reference.latencies_s
        c_lat = np.asarray(canary.latencies_s, float)
        pairs = {}  # the replay sends each query to both arms together: resample the pairs
        if ref_lat is not None and len(ref_lat) == len(c_lat) and len(c_lat):
            pairs = stats.paired_bootstrap_quantiles(c_lat, ref_lat, s.quantiles,
                                                     s.bootstrap_draws, rng,
                                                     stats.block_length(len(c_lat)))
        for q in s.quantiles:
            key = f"latency_p{q * 100:g}_s"
            ref: np.ndarray | float | None = ref_lat if ref_lat is not None else reference.figures.get(key)
            if ref is None:
                metrics.append(MetricVerdict(f"latency_p{q * 100:g}", NOT_MEASURED, False, None,
                                             None, None, s.latency_margin(q), "ratio<=margin",
                                             reason=f"no reference latency ({key}: no "
                                                    "baseline figure at the http_client point)"))
            else:
                metrics.append(judge_quantile(c_lat, ref, q, s, rng, pairs.get(q)))
    metrics.append(judge_accuracy(canary, reference, s))
    metrics.append(judge_energy(canary, reference, s, rng))
    metrics.append(judge_flip_rate(canary, reference, s))
    metrics.extend(judge_outputs(canary, reference, s, s.alpha))
    return decide(metrics, s)


def _p(p: float | None) -> float:
    return 1.0 if p is None else p


def why(m: MetricVerdict, s: JudgeSettings) -> str:
    """The "why" of a metric's outcome in words: how it was tested, then its interval against
    its margin, so every row of a verdict says why, a PASS included."""
    if m.estimate is None or m.lower is None or m.upper is None or m.margin is None:
        return m.reason or ("not measured" if m.outcome == NOT_MEASURED else m.outcome)
    level = f"{1 - s.alpha:.0%}"
    est, lo, hi, mg = m.estimate, m.lower, m.upper, m.margin
    if m.direction == "ratio<=margin":
        said = (f"ratio {est:.3g}, {level} upper bound {hi:.3g} < margin {mg:g}" if m.outcome == PASS
                else f"ratio {est:.3g}, beyond margin {mg:g} (Holm p = {_p(m.p_fail_holm):.3g} "
                     f"<= {s.alpha:g})" if m.outcome == FAIL
                else f"ratio {est:.3g}, interval [{lo:.3g}, {hi:.3g}] reaches margin {mg:g}: "
                     "neither shown (more queries narrow it)")
    elif m.direction == "diff>=-margin":
        said = (f"difference {est:+.3g}, {level} lower bound {lo:+.3g} > -{mg:g}" if m.outcome == PASS
                else f"difference {est:+.3g}, worse than -{mg:g} (Holm p = "
                     f"{_p(m.p_fail_holm):.3g})" if m.outcome == FAIL
                else f"difference {est:+.3g}, interval [{lo:+.3g}, {hi:+.3g}] reaches -{mg:g}")
    elif m.direction == "diff<=margin":
        said = (f"difference {est:+.3g}, {level} upper bound {hi:+.3g} < {mg:g}" if m.outcome == PASS
                else f"difference {est:+.3g}, beyond +{mg:g} (Holm p = "
                     f"{_p(m.p_fail_holm):.3g})" if m.outcome == FAIL
                else f"difference {est:+.3g}, interval [{lo:+.3g}, {hi:+.3g}] reaches {mg:g}")
    else:
        return m.reason or m.outcome
    return f"{m.reason}; {said}" if m.reason else said


def decide(metrics: Sequence[MetricVerdict], s: JudgeSettings) -> Verdict:
    """Holm across the gating metrics' fail p-values; per-metric and overall outcomes."""
    from drift.features import holm

    tested = [i for i, m in enumerate(metrics) if m.gating and m.p_fail is not None]
    adjusted = holm([_p(metrics[i].p_fail) for i in tested]).tolist()
    final = list(metrics)
    for i, p_adj in zip(tested, adjusted, strict=True):
        m = metrics[i]
        outcome = FAIL if p_adj <= s.alpha else PASS if _p(m.p_pass) <= s.alpha else INCONCLUSIVE
        final[i] = replace(m, outcome=outcome, p_fail_holm=p_adj)
    final = [replace(m, reason=why(m, s)) for m in final]
    gating = [m for m in final if m.gating]
    if not gating:
        return Verdict(INCONCLUSIVE, tuple(final), s, "no gating metric could be measured")
    failed = [m.metric for m in gating if m.outcome == FAIL]
    if failed:
        return Verdict(FAIL, tuple(final), s, f"worse than the margin: {', '.join(failed)}")
    open_ = [m.metric for m in gating if m.outcome != PASS]
    if open_:
        return Verdict(INCONCLUSIVE, tuple(final), s, f"not shown within margin: {', '.join(open_)}")
    return Verdict(PASS, tuple(final), s, "every gating metric within its margin")
