"""eval_sevlm.py end to end on a tiny saved model and a tiny prepared dataset, plus its input checks."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

import eval_sevlm
from conftest import EXPLANATIONS, REPO_ROOT, random_images
from configuration_sevlm import ARTEMIS_EMOTIONS
from dataset_scripts.prepare_artemis import FEATURES, emotion_histogram

METRIC_KEYS = {
    "emotion_accuracy", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider", "emotional_alignment",
    "unique", "emotion_distribution_kl", "vad_distance", "num_vad_excluded", "per_emotion_accuracy", "num_paintings",
    "num_paintings_with_majority", "num_empty_explanations", "num_invalid_emotions",
}
PREDICTION_KEYS = {
    "painting_id", "emotion", "emotion_scores", "explanation", "explanation_emotion", "majority_emotion", "references",
}
# Which explanation (conftest.EXPLANATIONS) goes with which emotion in the tiny corpus.
EXPLANATION_OF = {
    "sadness": 5, "awe": 1, "something else": 2, "anger": 4, "fear": 6, "contentment": 3, "amusement": 7,
    "disgust": 8, "excitement": 9,
}


def make_split(name, images, annotations):
    rows = {key: [] for key in FEATURES}
    for index, (image, emotions) in enumerate(zip(images, annotations)):
        painting = f"{name}_{index}"
        rows["painting_id"].append(f"toy_style/{painting}")
        rows["art_style"].append("toy_style")
        rows["painting"].append(painting)
        rows["image"].append(image)
        rows["emotions"].append(emotions)
        rows["explanations"].append([EXPLANATIONS[EXPLANATION_OF[emotion]] for emotion in emotions])
        rows["emotion_histogram"].append(emotion_histogram(emotions))
        rows["source"].append(["v1"] * len(emotions))
    return Dataset.from_dict(rows, features=FEATURES)


# Test paintings: the 4 images the tiny model learned (sadness, awe, something else, anger) and one unseen image.
TEST_ANNOTATIONS = [
    ["sadness", "sadness", "sadness", "fear"],  # majority sadness: the model says sadness
    ["awe", "awe", "contentment"],  # majority awe: the model says awe
    ["something else", "something else", "fear", "fear"],  # tie: no majority
    ["fear", "fear", "anger"],  # majority fear: the model says anger
    ["amusement", "awe", "disgust", "excitement"],  # unseen image, no majority
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, request):
    """A saved tiny model that writes real text, and a prepared dataset whose test split holds its images."""
    root = tmp_path_factory.mktemp("eval")
    model, processor, images = request.getfixturevalue("trained_tiny")
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    train_annotations = [[emotion, emotion] for emotion in EXPLANATION_OF] * 2
    DatasetDict(
        train=make_split("train", random_images(len(train_annotations), seed=11, size=(16, 16)), train_annotations),
        validation=make_split("validation", random_images(3, seed=12, size=(16, 16)), [["awe"], ["fear"], ["sadness"]]),
        test=make_split("test", list(images) + random_images(1, seed=99), TEST_ANNOTATIONS),
    ).save_to_disk(str(root / "data"))
    return root


@pytest.fixture(scope="module")
def cli_run(workspace):
    """One real command-line run in a fresh process (cwd outside the repo, offline, private HF cache)."""
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(workspace / "hf_home"), TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1"
    )
    env.pop("PYTHONPATH", None)
    command = [
        sys.executable, str(REPO_ROOT / "eval_sevlm.py"),
        "--model_name_or_path", str(workspace / "model"),
        "--dataset_path", str(workspace / "data"),
        "--output_dir", str(workspace / "out"),
        "--batch_size", "2",
    ]
    completed = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return workspace / "out", completed


def test_cli_run_writes_all_outputs(cli_run, workspace):
    out, completed = cli_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == METRIC_KEYS
    assert set(metrics["per_emotion_accuracy"]) == set(ARTEMIS_EMOTIONS)
    assert metrics["num_paintings"] == 5 and metrics["num_paintings_with_majority"] == 3
    # sadness and awe right, anger for a fear majority wrong
    assert metrics["emotion_accuracy"] == pytest.approx(2 / 3)
    assert metrics["per_emotion_accuracy"]["fear"] == 0.0 and metrics["per_emotion_accuracy"]["contentment"] is None
    assert 0 < metrics["bleu_4"] <= 1 and 0 < metrics["meteor"] <= 1
    assert metrics["emotion_distribution_kl"] >= 0 and metrics["vad_distance"] >= 0

    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [row["painting_id"] for row in rows] == [f"toy_style/test_{i}" for i in range(5)]
    assert all(set(row) == PREDICTION_KEYS for row in rows)
    assert [row["emotion"] for row in rows[:4]] == ["sadness", "awe", "something else", "anger"]
    assert rows[0]["explanation"] == EXPLANATIONS[5]
    assert [row["majority_emotion"] for row in rows] == ["sadness", "awe", None, "fear", None]
    assert list(rows[0]["emotion_scores"]) == list(ARTEMIS_EMOTIONS)
    assert sum(rows[0]["emotion_scores"].values()) == pytest.approx(1, abs=1e-5)

    report = (out / "report.md").read_text()
    assert "| Model | ACC | B1 | B2 | B3 | B4 | METEOR | ROUGE-L | CIDEr | EA | Unique |" in report
    assert "63.6 | 53.8 | 29.9 | 16.3 | 9.3 | 13.8 | 30.3" in report
    assert "65.6 | 54.2 | 30.3 | 16.4 | 9.2 | 13.9 | 30.4" in report
    assert "| 66.7 |" in report  # our accuracy, in percent
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| NLX-GPT" in completed.stdout  # the table is printed at the end
    # the EA classifier was missing, so it was trained on the train split and saved beside the data
    assert "training one" in completed.stderr
    assert (workspace / "data" / "emotion_classifier" / "training_results.json").is_file()


def write_jsonl(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_rescoring_a_predictions_file(workspace, tmp_path, caplog, monkeypatch):
    ids = [f"toy_style/test_{i}" for i in range(5)]
    rows = [
        {"painting_id": ids[0], "emotion": "sadness", "explanation": "the woman looks lonely and sad", "emotion_scores": [1 / 9] * 9},
        {"painting_id": ids[1], "emotion": "fear", "explanation": "the mountain is huge", "emotion_scores": [1 / 9] * 9},
        {"painting_id": ids[2], "emotion": "awe", "explanation": "", "emotion_scores": [1 / 9] * 9},
        {"painting_id": ids[3], "emotion": "fear", "explanation": "the storm is frightening", "emotion_scores": [1 / 9] * 9},
    ]
    path = write_jsonl(tmp_path / "predictions.jsonl", rows)
    # The caption metrics (Java, ~10 CPU-seconds per METEOR start) ran for real in the command-line run; stub them.
    metric = eval_sevlm.load_metric_module()
    monkeypatch.setattr(metric, "caption_metrics", lambda predictions, references: dict.fromkeys(metric.CAPTION_KEYS, 0.5))
    metrics = eval_sevlm.main(
        ["--predictions_file", str(path), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path / "out"),
         "--model_name_or_path", str(workspace / "model")]
    )
    assert metrics["num_paintings"] == 4 and metrics["num_paintings_with_majority"] == 3
    assert metrics["emotion_accuracy"] == pytest.approx(2 / 3)  # sadness right, awe wrong, fear right
    assert metrics["num_empty_explanations"] == 1 and metrics["unique"] == 1.0
    assert metrics["vad_distance"] >= 0  # the model folder supplies the VAD table
    assert metrics["bleu_4"] == 0.5
    assert "lines [3]" in caplog.text and "covers 4 of the split's 5 paintings" in caplog.text
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(written) == METRIC_KEYS
    rescored = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert rescored[0]["references"][:3] == [EXPLANATIONS[5]] * 3
    # without a model: no VAD table, so no VAD distance; without scores: no KL
    for row in rows:
        row.pop("emotion_scores")
    write_jsonl(path, rows)
    metrics = eval_sevlm.main(["--predictions_file", str(path), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path / "out2")])
    assert np.isnan(metrics["vad_distance"]) and np.isnan(metrics["emotion_distribution_kl"])
    assert json.loads((tmp_path / "out2" / "metrics.json").read_text())["vad_distance"] is None


GOOD = {"painting_id": "toy_style/test_0", "emotion": "awe", "explanation": "a view"}


@pytest.mark.parametrize(
    "rows, message",
    [
        ([GOOD, {**GOOD, "painting_id": "nowhere/x"}], r"line 2: painting_id 'nowhere/x' is not in the evaluated split"),
        ([GOOD, GOOD], r"line 2: painting_id 'toy_style/test_0' already appeared on line 1"),
        ([{"painting_id": "toy_style/test_0", "emotion": "awe"}], r"line 1: needs a string 'explanation'"),
        ([GOOD, "{not json"], r"line 2: not valid JSON"),
        ([{**GOOD, "emotion_scores": {"awe": 1.0}}], r"line 1: emotion_scores lacks"),
        ([{**GOOD, "emotion_scores": [0.5, 0.5]}], r"line 1: emotion_scores must"),
        ([], r"holds no predictions"),
    ],
)
def test_bad_predictions_files(workspace, tmp_path, rows, message):
    path = write_jsonl(tmp_path / "predictions.jsonl", rows)
    with pytest.raises(ValueError, match=message):
        eval_sevlm.main(["--predictions_file", str(path), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path)])


def test_bad_arguments(workspace, tmp_path):
    path = write_jsonl(tmp_path / "predictions.jsonl", [GOOD])
    base = ["--predictions_file", str(path), "--output_dir", str(tmp_path)]
    with pytest.raises(FileNotFoundError, match="No prepared dataset"):
        eval_sevlm.main(base + ["--dataset_path", str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="no split 'dev'"):
        eval_sevlm.main(base + ["--dataset_path", str(workspace / "data"), "--split", "dev"])
    with pytest.raises(FileNotFoundError, match="Predictions file"):
        eval_sevlm.main(["--predictions_file", str(tmp_path / "nope.jsonl"), "--dataset_path", str(workspace / "data")])


def test_defaults_evaluate_the_demo_model():
    from transformers import HfArgumentParser

    parser = HfArgumentParser(eval_sevlm.EvalArguments)
    (args,) = parser.parse_args_into_dataclasses(args=[])
    args = eval_sevlm.resolve_defaults(args)
    assert (args.model_name_or_path, args.dataset_path, args.split) == ("outputs/sevlm-demo", "data/demo", "test")
    assert args.output_dir == os.path.join("outputs", "eval", "sevlm-demo", "test")
    # every flag is explained in --help
    help_text = parser.format_help()
    for name, field in eval_sevlm.EvalArguments.__dataclass_fields__.items():
        assert f"--{name}" in help_text and field.metadata.get("help"), name


def test_sampling_flags_reach_generate():
    from transformers import HfArgumentParser

    parser = HfArgumentParser(eval_sevlm.EvalArguments)
    (args,) = parser.parse_args_into_dataclasses(args=["--do_sample", "--temperature", "0.7", "--top_p", "0.9", "--top_k", "5", "--num_beams", "2"])
    assert eval_sevlm.generation_kwargs(args) == {
        "max_new_tokens": 25, "num_beams": 2, "do_sample": True, "temperature": 0.7, "top_p": 0.9, "top_k": 5,
    }
    (args,) = parser.parse_args_into_dataclasses(args=[])
    assert eval_sevlm.generation_kwargs(args) == {"max_new_tokens": 25, "num_beams": 1, "do_sample": False}


def test_missing_classifier_is_trained_where_asked(workspace, tmp_path, caplog):
    args = eval_sevlm.EvalArguments(dataset_path=str(workspace / "data"), emotion_classifier=str(tmp_path / "ea"))
    classifier, directory = eval_sevlm.load_or_train_classifier(args)
    assert directory == str(tmp_path / "ea") and (tmp_path / "ea" / "training_results.json").is_file()
    assert "training one" in caplog.text
    assert classifier.predict([EXPLANATIONS[6]]) == ["fear"]
