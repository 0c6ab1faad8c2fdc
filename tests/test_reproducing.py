"""The README's ArtEmis recipe end to end on generated ArtEmis-shaped data: the preprocessed-CSV preparation
(official split, spelled text, histograms from all raw rows), `train_sevlm.py --args_file configs/sevlm-artemis-v1.args`
(with a tiny model swapped in and the run cut short, nothing downloaded), and `eval_sevlm.py` on the test split."""

import json
import re
import shlex

import pytest
from helpers import FIXTURE_LEXICON, REPO_ROOT

import eval_sevlm
from dataset_scripts.prepare_artemis import main as prepare_main
from sevlm.data.lookalike import write_artemis_shaped
from train_sevlm import train

# What the recipe uses that cannot run here (downloads, a GPU) is swapped for the demo's tiny parts; the rest of the
# recipe file (optimizer, schedule, early stopping on two metrics, both best models, whole validation split) stays.
TINY = [
    "--vision_model_name_or_path", str(REPO_ROOT / "configs" / "demo_vision.json"),
    "--text_model_name_or_path", str(REPO_ROOT / "configs" / "demo_text.json"),
    "--tokenizer_vocab_size", "600", "--vad_lexicon", str(FIXTURE_LEXICON),
    "--fp16", "false", "--use_cpu", "true", "--torch_num_threads", "1", "--dataloader_num_workers", "0", "--report_to", "none",
    "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--logging_steps", "1",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--generation_max_new_tokens", "6",
]  # fmt: skip


def readme_command(section, program, page="docs/TRAINING.md"):
    """The first command of the documentation's `section` that runs `program` (its name, or its console script), as
    an argument list (after the program)."""
    readme = (REPO_ROOT / page).read_text(encoding="utf-8")
    start = readme.index(f"\n{section}\n")
    end = readme.find("\n## ", start + 1)
    text = readme[start : end if end != -1 else None].replace("\\\n", " ")
    for line in re.findall(r"```bash\n(.*?)```", text, re.S):
        for command in line.splitlines():
            words = shlex.split(command, comments=True)
            if program in words:
                return words[words.index(program) + 1 :]
    raise AssertionError(f"no {program} command in {section}")


@pytest.mark.slow
def test_the_readme_recipe_on_artemis_shaped_data(tmp_path, monkeypatch):
    generated = write_artemis_shaped(tmp_path / "generated", 120, image_side=16, processes=1, high_coverage=2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "artemis" / "preprocessed").mkdir(parents=True)
    (tmp_path / "artemis" / "artemis_dataset_release_v0.csv").write_bytes(generated["raw_csv"].read_bytes())
    (tmp_path / "artemis" / "preprocessed" / "artemis_preprocessed.csv").write_bytes(generated["preprocessed_csv"].read_bytes())
    generated["wikiart_dir"].rename(tmp_path / "wikiart")

    # 1. Data: the paper's text and split (docs/REPRODUCING.md, step 4).
    reproducing = (REPO_ROOT / "docs" / "REPRODUCING.md").read_text(encoding="utf-8").replace("\\\n", " ")
    prepare = next(
        shlex.split(line)[3:] for line in reproducing.splitlines()
        if line.startswith("python -m dataset_scripts.prepare_artemis") and "--artemis_preprocessed_csv artemis/" in line
    )  # fmt: skip
    prepare = [value if previous != "--num_proc" else "1" for previous, value in zip([""] + prepare, prepare)]
    assert prepare_main(prepare) == 0
    report = json.loads((tmp_path / "data" / "artemis-v1" / "prepare_report.json").read_text())
    assert report["status"] == "ok" and set(report["splits"]) == {"train", "validation", "test"}

    # 2. Training: the README's command, the recipe file, with the tiny parts above.
    train_args = readme_command("## The paper's recipe, as one file", "train_sevlm.py")
    assert train_args[:2] == ["--args_file", "configs/sevlm-artemis-v1.args"]
    train_args[1] = str(REPO_ROOT / train_args[1])
    metrics = train(train_args + TINY)
    output = tmp_path / "outputs" / "sevlm-artemis-v1"
    assert metrics["eval_paintings"] == report["splits"]["validation"]["paintings"]  # the whole validation split
    for folder in ("best_emotion_accuracy", "best_bleu_4_fast"):
        assert (output / folder / "model.safetensors").is_file() and (output / folder / "eval_results.json").is_file()

    # 3. Evaluation: the README's command; ArtEmis-shaped data gets the published rows beside its own.
    eval_args = readme_command("## The paper's recipe, as one file", "sevlm-eval")
    assert eval_sevlm.main(eval_args + ["--max_new_tokens", "6", "--batch_size", "16"]) == 0
    evaluated = tmp_path / "outputs" / "eval" / "sevlm-artemis-v1" / "test"
    results = json.loads((evaluated / "metrics.json").read_text())
    assert results["num_paintings"] == report["splits"]["test"]["paintings"]
    for key in ("emotion_accuracy", "emotion_accuracy_scores", "bleu_4", "emotional_alignment", "emotion_explanation_consistency"):
        assert results[key] is None or 0 <= results[key] <= 1, key
    assert "SEVLM (published, ArtEmis v1.0 test)" in (evaluated / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["sevlm-artemis-v1.args", "sevlm-artemis-v2.args"])
def test_recipe_files_need_nothing_but_their_paths(name):
    """Every flag in the recipe files is one train_sevlm.py knows (a typo would stop the run at once anyway)."""
    from train_sevlm import parse_arguments

    model_args, data_args, training_args = parse_arguments(["--args_file", str(REPO_ROOT / "configs" / name), "--fp16", "false"])
    assert training_args.eval_steps == training_args.save_steps == 2000 and data_args.max_eval_paintings == 0
