"""`benchwatch rules generate --for DURATION -o DIR`: the packaged Prometheus rules with the drift
page's `for:` set to DURATION, and their promtool tests moved to match.

DIR gets every `*.rules.yml` (BenchwatchModelDrift's and BenchwatchFeatureDrift's `for:` set to
DURATION; every other rule as shipped) and DIR/tests/ the packaged promtool tests, whose checks
of those two alerts are moved by the change (`benchwatch.rules.shift_alert_checks`). When
`promtool` is on PATH the pair is checked with `promtool test rules` before the command says
it is done; otherwise it says how to check it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from benchwatch.cli.errors import ExitCode
from benchwatch.errors import UsageError
from probes.errors import BenchwatchError

HELP = "write the Prometheus rules with a chosen drift-page `for:` and promtool tests to match"
# the alerts whose `for:` is the time to page for a drift incident (docs/deploy.md "Alert routing")
PAGE_ALERTS = ("BenchwatchModelDrift", "BenchwatchFeatureDrift")
MAX_FOR_S = 3600  # the packaged drift tests hold their drifted state for 90 minutes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    gen = sub.add_parser(
        "generate", help=HELP,
        description="Write DIR/*.rules.yml with the drift alerts' `for:` set to DURATION "
                    "(shipped: 2m) and DIR/tests/ with promtool tests to match; checked with "
                    "promtool when it is installed.")
    gen.add_argument("--for", dest="for_duration", required=True, type=_duration,
                     metavar="DURATION",
                     help="the drift alerts' `for:`, e.g. 30s, 2m, 10m (at most 1h)")
    gen.add_argument("-o", "--out", required=True, type=Path, metavar="DIR",
                     help="directory to write the rules (and tests/) into")


def _duration(text: str) -> str:
    from benchwatch.rules import seconds

    try:
        s = seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 < s <= MAX_FOR_S:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 1s and 1h")
    return text


def run(args: argparse.Namespace) -> ExitCode:
    from benchwatch import assets, rules

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is not a directory: pass -o DIR")
    shipped = rules.for_durations(rules.rule_files())
    missing = [a for a in PAGE_ALERTS if a not in shipped]
    if missing:
        raise BenchwatchError(f"the packaged rules have no {', '.join(missing)} (broken install?)")
    new_s = rules.seconds(args.for_duration)
    written = rules.shorten_for(rules.rule_files(), out, args.for_duration, alerts=PAGE_ALERTS)
    tests_dir = out / "tests"
    tests_dir.mkdir(exist_ok=True)
    shift = {a: new_s - shipped[a] for a in PAGE_ALERTS}
    tests = []
    for node in sorted(assets.asset(f"{rules.RULES}/tests").iterdir(), key=lambda n: n.name):
        if node.name.endswith((".yml", ".yaml")):
            target = tests_dir / node.name
            target.write_text(rules.shift_alert_checks(node.read_text(encoding="utf-8"), shift))
            tests.append(target)
    print(f"wrote {', '.join(p.name for p in written)} to {out} (drift alerts' for: "
          f"{args.for_duration}) and {len(tests)} promtool test file(s) to {tests_dir}")
    promtool = shutil.which("promtool")
    if promtool is None:
        print(f"promtool not found: check with `promtool test rules {tests_dir}/*.yml`")
        return ExitCode.OK
    done = subprocess.run([promtool, "test", "rules", *map(str, tests)], capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise BenchwatchError(
            f"promtool test rules failed on the generated tests; compare with the packaged "
            f"ones (`benchwatch export -o DIR`, then promtool test rules "
            f"DIR/deploy/prometheus/tests/*.yml):\n{done.stdout}{done.stderr}")
    print(f"promtool test rules: SUCCESS ({len(tests)} file(s))")
    return ExitCode.OK
