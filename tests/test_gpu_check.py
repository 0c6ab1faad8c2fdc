"""bench/gpu_check.sh stops before measuring anything when it cannot finish: an earlier check's output in the way, a
package missing or too old with no wheel to install it from, or two versions of one wheel.

The whole check in smoke mode (`bash bench/gpu_check.sh --smoke`: every part, tiny sizes, on the CPU) takes about
100 s on a 2-core machine, which is too long for the test suite; docs/BENCHMARKS.md ("GPU check") says how to run it.
"""

import os
import subprocess
import sys

import pytest
from helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "bench" / "gpu_check.sh"


def run_check(tmp_path, *args, pythonpath=None):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "SEVLM_SITE": str(tmp_path / "site-packages")}
    env.pop("OUT", None)
    env.pop("SEVLM_GPU_CHECK_OUT", None)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(["bash", str(SCRIPT), "--smoke", *args], env=env, capture_output=True, text=True, timeout=300)


def too_old_faiss(tmp_path):
    """A folder whose `faiss` module says it is version 1.0, first on the path: the check must find it too old."""
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "faiss.py").write_text('__version__ = "1.0"\n')
    return folder


def test_an_earlier_output_is_never_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "gpu_check.log").write_text("an earlier check\n")
    result = run_check(tmp_path, "--out", str(out))
    assert result.returncode == 2
    assert f"{out / 'gpu_check.log'} exists" in result.stderr
    assert (out / "gpu_check.log").read_text() == "an earlier check\n"
    assert sorted(path.name for path in out.iterdir()) == ["gpu_check.log"]


@pytest.mark.slow  # a Python that imports torch, transformers, datasets and faiss: about 5 s
def test_a_package_too_old_without_wheels_stops_before_any_part(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    result = run_check(tmp_path, "--out", str(tmp_path / "out"), "--wheels", str(wheels), pythonpath=too_old_faiss(tmp_path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "faiss 1.0" in result.stdout and "OLDER than 1.8" in result.stdout
    assert f"no wheels are in {wheels}/" in result.stdout  # the check's own output (stderr too) goes to stdout and its log
    assert "== 1." not in result.stdout  # no part started
    assert not (tmp_path / "site-packages").exists()
    assert "OLDER than 1.8" in (tmp_path / "out" / "gpu_check.log").read_text()


@pytest.mark.slow
def test_two_versions_of_one_wheel_stop_before_installing(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for version in ("1.14.0", "1.15.1"):
        (wheels / f"faiss_cpu-{version}-cp310-abi3-manylinux_2_28_x86_64.whl").write_bytes(b"")
    result = run_check(tmp_path, "--out", str(tmp_path / "out"), "--wheels", str(wheels), pythonpath=too_old_faiss(tmp_path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "holds several wheels of: faiss_cpu" in result.stdout
    assert not (tmp_path / "site-packages").exists()  # pip never ran
