"""An install that works anywhere: the wheel, installed into a fresh environment and used from a folder outside the
checkout, runs every console script, trains the demo with `sevlm-train` and no arguments, and evaluates it with
`sevlm-eval` (the wheel once lacked the metric and the recipe files, so both broke outside the checkout).

The fresh environment gets SEVLM from the wheel alone; its third-party libraries are this environment's, reached
through a path file (installing torch and transformers again would only cost minutes), whose own path files are not
read, so this checkout's editable install is invisible there.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from helpers import REPO_ROOT, console_scripts, random_images

pytestmark = pytest.mark.slow

CONSOLE_SCRIPTS = sorted(console_scripts())


def run(command, cwd, env, timeout=900):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder, environment variables) of a fresh environment holding SEVLM's wheel."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    had_build = (REPO_ROOT / "build").exists()
    try:
        run([sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "--no-build-isolation", "-q", "-w",
             str(wheels)], root, dict(os.environ))
    finally:
        if not had_build:  # setuptools builds in the checkout; leave it as it was
            shutil.rmtree(REPO_ROOT / "build", ignore_errors=True)
    (wheel,) = wheels.glob("sevlm-*.whl")
    environment = root / "env"
    venv.EnvBuilder(with_pip=True).create(environment)
    bin_dir = environment / "bin"
    site = Path(subprocess.check_output([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "borrowed_libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1", HF_HOME=str(root / "hf_home"),
               OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    run([bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], root, env)
    return bin_dir, env


def test_the_wheel_holds_the_package_and_its_files(installed, tmp_path):
    bin_dir, env = installed
    script = (
        "import json, sevlm, configuration_sevlm, sevlm.evaluation.metric as metric\n"
        "print(json.dumps({'package': sevlm.__file__, 'model_files': configuration_sevlm.__file__,"
        " 'demo_args': sevlm.config_file('demo.args').is_file(), 'vision': sevlm.config_file('demo_vision.json').is_file(),"
        " 'recipe': sevlm.config_file('sevlm-artemis-v1.args').is_file(), 'metric': metric.__file__}))"
    )
    found = json.loads(run([bin_dir / "python", "-c", script], tmp_path, env).stdout)
    environment = str(bin_dir.parent)
    assert all(str(found[key]).startswith(environment) for key in ("package", "model_files", "metric")), found
    assert found["demo_args"] and found["vision"] and found["recipe"]
    assert str(REPO_ROOT) not in json.dumps(found)


@pytest.mark.parametrize("command", CONSOLE_SCRIPTS)
def test_every_console_script_answers(installed, tmp_path, command):
    bin_dir, env = installed
    assert "usage:" in run([bin_dir / command, "--help"], tmp_path, env).stdout


def test_the_demo_trains_and_evaluates_outside_the_checkout(installed, tmp_path):
    """`sevlm-train` with no arguments, then `sevlm-eval` with none, in an empty folder (a small demo corpus is made
    first so that the run takes a minute, not five: training makes the full one when none is there)."""
    bin_dir, env = installed
    run([bin_dir / "sevlm-demo-corpus", "--num_paintings", "80"], tmp_path, env)
    run([bin_dir / "sevlm-train"], tmp_path, env)
    model = tmp_path / "outputs" / "sevlm-demo"
    assert (model / "model.safetensors").is_file() and (model / "pipeline_sevlm.py").is_file()
    run([bin_dir / "sevlm-eval"], tmp_path, env)
    metrics = json.loads((tmp_path / "outputs" / "eval" / "sevlm-demo" / "test" / "metrics.json").read_text())
    assert metrics["num_paintings"] > 0 and 0 <= metrics["bleu_4"] <= 1
    random_images(1)[0].save(tmp_path / "painting.png")
    row = json.loads(run([bin_dir / "sevlm-predict", "painting.png", "--no_progress"], tmp_path, env).stdout)
    assert row["file"] == "painting.png" and row["emotion"] in row["scores"]
