"""The GPU dashboard's series from the real NVML path (see gpu_series_check.py), in a separate
process so the probe's process-wide configuration never meets the other tests'.

With an NVIDIA GPU: every series the GPU dashboard queries is exported with the labels its panels
group by, and energy is attributed to the probed model. Without one: no GPU series at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu
SCRIPT = Path(__file__).with_name("gpu_series_check.py")


def test_gpu_series_match_the_dashboard() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=170)
    assert out.stdout.strip(), out.stderr[-3000:]
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert out.returncode == 0 and not result["problems"], result["problems"]
