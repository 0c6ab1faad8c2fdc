"""configs/own-data.args: a neutral starting point for a corpus of one's own, and a 30-picture corpus of 4 classes
through prepare -> train -> eval -> predict with it, every split evaluated and the explanations in whole words."""

import json
import re
import shlex

import numpy as np
import pytest
from datasets import disable_progress_bars, load_from_disk
from helpers import FIXTURE_LEXICON, REPO_ROOT
from PIL import Image

import eval_sevlm
from dataset_scripts import prepare_corpus
from sevlm import config_file
from sevlm.cli.predict import main as predict_main

disable_progress_bars()

CLASSES = {"calm": (120, 190, 170), "tense": (170, 40, 40), "joyful": (240, 200, 40), "gloomy": (60, 70, 110)}
WORDS = ["still", "sharp", "bright", "grey", "lake", "gate", "kite", "gutter", "rests", "sways", "dances", "rusts"]


def flags(path):
    """The flag lines of an args file (comments left out)."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("--")]


def test_the_args_file_is_neutral_and_parses():
    from train_sevlm import parse_arguments

    assert config_file("own-data.args") == REPO_ROOT / "sevlm" / "configs" / "own-data.args"
    text = " ".join(flags(REPO_ROOT / "configs" / "own-data.args")).lower()
    for word in ("paint", "art", "artemis", "customer", "product", "demo-product", "make_demo_corpus", "dataset_path"):
        assert word not in shlex.split(text), word
    model_args, data_args, training_args = parse_arguments(
        ["--args_file", str(REPO_ROOT / "configs" / "own-data.args"), "--dataset_path", "data/mine", "--no_vad"])
    assert model_args.prompt_text == " the emotion is" and model_args.connector_text == " because"
    assert not data_args.make_demo_corpus and model_args.vad_lexicon is None
    assert model_args.vision_model_name_or_path == str(REPO_ROOT / "configs" / "demo_vision.json")
    assert training_args.use_cpu and not model_args.use_contrastive_loss


def test_the_readme_example_gives_the_lexicon_or_no_vad():
    """The README's own-data example runs as written: a VAD run names its lexicon, and the text says where it comes
    from and that --no_vad goes without one."""
    from sevlm.training import check_new_model_inputs
    from train_sevlm import parse_arguments

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    prose, block = re.search(r"\*\*A corpus of your own\*\*(.*?)```bash\n(.*?)```", readme, re.S).groups()
    assert "https://saifmohammad.com/WebPages/nrc-vad.html" in prose and "--no_vad" in prose
    [command] = [line for line in block.replace("\\\n", " ").splitlines() if line.startswith("sevlm-train ")]
    assert "# or --no_vad" in command
    argv = shlex.split(command, comments=True)[1:]
    argv[argv.index("--args_file") + 1] = str(REPO_ROOT / "configs" / "own-data.args")
    model_args, _, _ = parse_arguments(argv)
    assert model_args.vad_lexicon == "NRC-VAD-Lexicon.txt" and not model_args.no_vad
    # With the lexicon where the example says (here a file in its format), nothing stops the run before training.
    model_args.vad_lexicon = str(FIXTURE_LEXICON)
    check_new_model_inputs(model_args)
    # The alternative the comment gives: --no_vad instead of --vad_lexicon.
    position = argv.index("--vad_lexicon")
    check_new_model_inputs(parse_arguments(argv[:position] + argv[position + 2 :] + ["--no_vad"])[0])


@pytest.mark.slow
def test_thirty_pictures_of_four_classes_train_with_every_split_evaluated(tmp_path, monkeypatch):
    from train_sevlm import train

    rng = np.random.default_rng(0)
    (tmp_path / "mine" / "photos").mkdir(parents=True)
    rows = ["image,emotion,explanation"]
    for index in range(30):
        emotion = list(CLASSES)[index % 4]
        pixels = np.clip(np.array(CLASSES[emotion]) + rng.normal(0, 15, (16, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / "mine" / "photos" / f"p{index:02d}.png")
        for k in range(2):
            words = " ".join(rng.choice(WORDS, size=4))
            rows.append(f"photos/p{index:02d}.png,{emotion},the {words} {k}")
    (tmp_path / "mine" / "notes.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert prepare_corpus.main(["--input", "mine/notes.csv", "--output_dir", "data/mine",
                                "--emotions", ",".join(CLASSES)]) == 0
    corpus = load_from_disk("data/mine")
    assert all(len(corpus[split]) >= 1 for split in ("train", "validation", "test"))
    metrics = train(["--args_file", str(REPO_ROOT / "configs" / "own-data.args"), "--dataset_path", "data/mine",
                     "--output_dir", "outputs/mine", "--no_vad", "--max_steps", "6", "--eval_strategy", "steps",
                     "--eval_steps", "3", "--save_steps", "3", "--save_strategy", "steps",
                     "--generation_max_new_tokens", "6"])
    assert metrics["test_paintings"] == len(corpus["test"])
    config = json.loads((tmp_path / "outputs" / "mine" / "config.json").read_text(encoding="utf-8"))
    assert config["emotions"] == list(CLASSES) and config["prompt_text"] == " the emotion is"
    tokenizer = json.loads((tmp_path / "outputs" / "mine" / "tokenizer.json").read_text(encoding="utf-8"))
    assert all("Ġ" + word in tokenizer["model"]["vocab"] for word in WORDS + list(CLASSES))  # whole words
    # Evaluated and predicted with the documented commands: numbers or an explicit "undefined", never a silent 0.
    assert eval_sevlm.main(["--model_name_or_path", "outputs/mine", "--dataset_path", "data/mine",
                            "--output_dir", "outputs/eval/mine", "--max_new_tokens", "6", "--bootstrap", "20"]) == 0
    evaluated = json.loads((tmp_path / "outputs" / "eval" / "mine" / "metrics.json").read_text(encoding="utf-8"))
    assert evaluated["num_paintings"] == len(corpus["test"]) and evaluated["num_paintings_with_majority"] >= 1
    assert 0 <= evaluated["emotion_accuracy"] <= 1
    assert predict_main(["mine/photos", "--model_name_or_path", "outputs/mine", "--output", "rows.jsonl",
                         "--no_progress", "--max_new_tokens", "6"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 30 and all(row["emotion"] in CLASSES for row in rows)
