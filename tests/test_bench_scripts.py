"""The benchmark scripts that no other test runs, in their `--quick` mode (tiny sizes: the numbers mean nothing, the
script's every step runs)."""

import os
import subprocess
import sys

import pytest
from helpers import REPO_ROOT


@pytest.mark.slow
def test_sevlm_beside_a_llava_shaped_model_quick(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    script = REPO_ROOT / "bench" / "bench_vs_vlm.py"
    result = subprocess.run([sys.executable, str(script), "--quick"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Linearity of LLaVA's cost in decoder layers" in out
    for row in ("parameters (M)", "peak memory while generating (GiB)", "seconds per explanation"):
        assert row in out
    assert "LLaVA / SEVLM" in out and "LLaVA, 4 decoder layers" in out
