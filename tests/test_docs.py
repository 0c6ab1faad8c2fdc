"""The documentation shows what the code does: every example output in README.md and docs/ is the one
docs/make_examples.py recorded from the demo model (with the card drawn from the same prediction), and every
example's code runs as written (here against a tiny model saved where the examples expect the demo model)."""

import ast
import importlib.util
import json
import os
import re
import shutil
import sys

import pytest
from helpers import REPO_ROOT

spec = importlib.util.spec_from_file_location("make_examples", REPO_ROOT / "docs" / "make_examples.py")
make_examples = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_examples)

RECORDED = json.loads(make_examples.EXAMPLES_FILE.read_text(encoding="utf-8"))


def test_every_example_block_shows_the_recorded_output():
    shown = set()
    for path in make_examples.documents():
        for match in make_examples.BLOCK.finditer(path.read_text(encoding="utf-8")):
            name = match["name"]
            entry = RECORDED["examples"][name]
            assert match["body"] == make_examples.render(name, entry, entry["output"]), f"{path.name}: {name}"
            shown.add(name)
    assert shown == set(make_examples.EXAMPLES) == set(RECORDED["examples"])
    # The recorded code is the script's: an edited example must be run again.
    for name, example in make_examples.EXAMPLES.items():
        assert RECORDED["examples"][name]["code"] == example["code"], name


def test_the_quick_start_table_shows_the_recorded_scores():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = make_examples.NUMBERS_BLOCK.search(readme)
    assert match and match["body"] == make_examples.render_numbers(RECORDED["numbers"])
    assert all(0.0 <= RECORDED["numbers"][key] <= 1.0 for key in make_examples.NUMBERS.values())


def test_the_card_and_the_examples_come_from_one_prediction():
    assert (REPO_ROOT / RECORDED["card"]).is_file() and (REPO_ROOT / RECORDED["painting"]["file"]).is_file()
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"]({RECORDED['card']})" in readme
    pipeline = ast.literal_eval(RECORDED["examples"]["pipeline"]["output"])
    predicted = json.loads(RECORDED["examples"]["predict"]["output"])
    assert pipeline["emotion"] == predicted["emotion"] and pipeline["explanation"] == predicted["explanation"]
    assert re.fullmatch(r"[0-9a-f]{64}", RECORDED["model_sha256"])


def shape(value):
    """The structure of an output: keys and value types, not values."""
    if isinstance(value, dict):
        # The scores' keys are the classes of whichever model ran; their values are numbers either way.
        return {key: shape(item) for key, item in value.items() if key != "scores"} | (
            {"scores": "dict"} if "scores" in value else {}
        )
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.slow
def test_every_example_runs_as_written(trained_tiny, tmp_path, monkeypatch):
    model, processor, images = trained_tiny
    model.save_pretrained(tmp_path / make_examples.MODEL)
    processor.save_pretrained(tmp_path / make_examples.MODEL)
    (tmp_path / "docs" / "images").mkdir(parents=True)
    images[0].save(tmp_path / make_examples.PAINTING)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    assert shutil.which("sevlm-predict"), "the console scripts are installed with the package"
    outputs = make_examples.run_examples(cwd=tmp_path)
    for name, output in outputs.items():
        recorded = RECORDED["examples"][name]["output"]
        parse = json.loads if make_examples.EXAMPLES[name]["language"] == "bash" else ast.literal_eval
        assert shape(parse(output)) == shape(parse(recorded)), name
