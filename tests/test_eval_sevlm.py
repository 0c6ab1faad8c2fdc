"""eval_sevlm.py end to end on a tiny saved model and a tiny prepared dataset, plus its input checks, the paper's
EA beside the consistency measure, the classifier's held-out accuracy, other taxonomies, and output folders that are
never replaced unasked."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from helpers import EXPLANATIONS, REPO_ROOT, random_images

import eval_sevlm
import sevlm.evaluation.run as evaluation
from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.data.schema import corpus_features
from sevlm.evaluation import metric as sevlm_metric

FEATURES = corpus_features(ARTEMIS_EMOTIONS)
METRIC_KEYS = {
    "emotion_accuracy", "emotion_accuracy_scores", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l",
    "cider", "emotional_alignment", "emotion_explanation_consistency", "unique", "emotion_distribution_kl",
    "vad_distance", "num_vad_excluded", "per_emotion_accuracy", "num_paintings", "num_paintings_with_majority",
    "num_empty_explanations", "num_invalid_emotions", "emotion_classifier_accuracy", "emotion_classifier_chance_accuracy",
    "emotion_js_divergence", "emotion_accuracy_any_annotator", "emotion_calibration_error", "emotion_calibration_bins",
    "emotion_macro_f1", "per_emotion_precision", "per_emotion_recall", "per_emotion_f1", "confidence_intervals",
    "confidence_interval_settings",
}


def emotion_histogram(emotions, names=ARTEMIS_EMOTIONS):
    return [emotions.count(name) / len(emotions) for name in names]


def evaluate(argv):
    """The evaluation as the command runs it, with exceptions (main() turns them into exit status 1)."""
    return evaluation.evaluate_model(eval_sevlm.parse_arguments(argv))
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


@pytest.mark.slow
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
    stub_caption_metrics(monkeypatch)
    metrics = evaluate(
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
    metrics = evaluate(["--predictions_file", str(path), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path / "out2")])
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
        ([GOOD, {**GOOD, "painting_id": "toy_style/test_1", "emotion_scores": [0.1] * 8 + ["x"]}], r"line 2: .*'something else'.*not a number"),
        ([GOOD, '{"painting_id": "toy_style/test_1", "emotion": "awe", "explanation": "a", "emotion_scores": [NaN, 1, 1, 1, 1, 1, 1, 1, 1]}'],
         r"line 2: emotion_scores\['amusement'\] is nan; scores must be finite and non-negative"),
        ([{**GOOD, "emotion_scores": {**dict.fromkeys(ARTEMIS_EMOTIONS, 0.1), "fear": -0.2}}], r"line 1: emotion_scores\['fear'\] is -0.2"),
        ([{**GOOD, "emotion_scores": [0] * 9}], r"line 1: emotion_scores are all 0"),
        ([{**GOOD, "emotion_scores": [True] + [0] * 8}], r"line 1: .*not a number"),
        ([], r"holds no predictions"),
    ],
)
def test_bad_predictions_files(workspace, tmp_path, rows, message):
    path = write_jsonl(tmp_path / "predictions.jsonl", rows)
    with pytest.raises(ValueError, match=message):
        evaluate(["--predictions_file", str(path), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path / "out")])


def test_bad_arguments(workspace, tmp_path):
    path = write_jsonl(tmp_path / "predictions.jsonl", [GOOD])
    base = ["--predictions_file", str(path), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(FileNotFoundError, match="No prepared corpus"):
        evaluate(base + ["--dataset_path", str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="has the splits train, validation, test, not dev"):
        evaluate(base + ["--dataset_path", str(workspace / "data"), "--split", "dev"])
    with pytest.raises(FileNotFoundError, match="Predictions file"):
        evaluate(["--predictions_file", str(tmp_path / "nope.jsonl"), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path / "o")])
    for flag, value in (("--batch_size", "0"), ("--max_samples", "0"), ("--num_beams", "0"), ("--max_new_tokens", "0")):
        with pytest.raises(ValueError, match=f"{flag} must be at least 1"):
            evaluate(base + ["--dataset_path", str(workspace / "data"), flag, value])
    # The command line reports them as errors with exit status 1, not tracebacks.
    assert eval_sevlm.main(base + ["--dataset_path", str(workspace / "data"), "--batch_size", "0"]) == 1


def test_defaults_evaluate_the_demo_model():
    from transformers import HfArgumentParser

    parser = HfArgumentParser(eval_sevlm.EvalArguments)
    (args,) = parser.parse_args_into_dataclasses(args=[])
    args = evaluation.resolve_defaults(args)
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
    assert evaluation.generation_kwargs(args) == {
        "max_new_tokens": 25, "num_beams": 2, "do_sample": True, "temperature": 0.7, "top_p": 0.9, "top_k": 5,
    }
    (args,) = parser.parse_args_into_dataclasses(args=[])
    assert evaluation.generation_kwargs(args) == {"max_new_tokens": 25, "num_beams": 1, "do_sample": False}


def test_missing_classifier_is_trained_where_asked(workspace, tmp_path, caplog):
    args = eval_sevlm.EvalArguments(dataset_path=str(workspace / "data"), emotion_classifier=str(tmp_path / "ea"))
    classifier, directory, results = evaluation.load_or_train_classifier(args, ARTEMIS_EMOTIONS)
    assert directory == str(tmp_path / "ea") and (tmp_path / "ea" / "training_results.json").is_file()
    assert "training one" in caplog.text
    assert classifier.predict([EXPLANATIONS[6]]) == ["fear"]
    assert results["validation_accuracy"] > results["validation_chance_accuracy"]


def stub_caption_metrics(monkeypatch):
    """The caption metrics (Java, ~10 CPU-seconds per METEOR start) ran for real in the command-line run."""
    monkeypatch.setattr(sevlm_metric, "caption_statistics", fake_caption_statistics)


def fake_caption_statistics(predictions, references):
    """Caption scores of 0.5 without Java, with per-painting statistics of the right shapes."""
    metric = sevlm_metric
    count = len(predictions)
    return {
        "scores": dict.fromkeys(metric.CAPTION_KEYS, 0.5), "bleu": np.zeros((count, metric.BLEU_COLUMNS)),
        "meteor": np.zeros((count, metric.METEOR_STATS_LENGTH)), "rouge_l": np.full(count, 0.5),
        "cider": np.full(count, 0.5),
    }


def test_paper_ea_and_consistency_differ_on_a_hand_made_file(workspace, tmp_path, monkeypatch):
    """EA compares the explanation's classified emotion with the annotators' majority; consistency compares it
    with the model's own emotion. Explanations written for the majority but a wrong named emotion separate them."""
    stub_caption_metrics(monkeypatch)
    ids = [f"toy_style/test_{i}" for i in range(5)]
    # Majorities: sadness, awe, None, fear, None. Explanations of the majority's vocabulary, emotions named wrong.
    rows = [
        {"painting_id": ids[0], "emotion": "anger", "explanation": EXPLANATIONS[5]},  # sadness words
        {"painting_id": ids[1], "emotion": "awe", "explanation": EXPLANATIONS[1]},  # awe words
        {"painting_id": ids[3], "emotion": "disgust", "explanation": EXPLANATIONS[6]},  # fear words
    ]
    path = write_jsonl(tmp_path / "predictions.jsonl", rows)
    metrics = evaluate(["--predictions_file", str(path), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path / "out")])
    assert metrics["emotional_alignment"] == pytest.approx(1.0)  # every explanation reads as its painting's majority
    assert metrics["emotion_explanation_consistency"] == pytest.approx(1 / 3)  # only the awe row matches its own emotion
    assert metrics["emotion_accuracy"] == pytest.approx(1 / 3)
    assert 0 < metrics["emotion_classifier_accuracy"] <= 1


def test_a_useless_classifier_is_reported(workspace, tmp_path, monkeypatch, caplog):
    """A classifier trained on identical explanations is at chance: its accuracy is in metrics.json and report.md,
    with a warning."""
    import shutil

    from datasets import load_from_disk

    stub_caption_metrics(monkeypatch)
    data = load_from_disk(str(workspace / "data"))
    same = {split: dataset.map(lambda row: {"explanations": ["a painting"] * len(row["explanations"])}) for split, dataset in data.items()}
    DatasetDict(same).save_to_disk(str(tmp_path / "same"))
    path = write_jsonl(tmp_path / "predictions.jsonl", [GOOD])
    metrics = evaluate(["--predictions_file", str(path), "--dataset_path", str(tmp_path / "same"), "--output_dir", str(tmp_path / "out")])
    assert metrics["emotion_classifier_accuracy"] <= metrics["emotion_classifier_chance_accuracy"] + 1e-9
    assert "near chance (" in caplog.text or "below chance (" in caplog.text
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Warning:** the EA classifier's held-out accuracy" in report
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["emotion_classifier_accuracy"] == metrics["emotion_classifier_accuracy"]
    shutil.rmtree(tmp_path / "same")


def test_an_earlier_evaluation_is_replaced_only_when_asked(workspace, tmp_path, monkeypatch):
    stub_caption_metrics(monkeypatch)
    path = write_jsonl(tmp_path / "predictions.jsonl", [GOOD])
    argv = ["--predictions_file", str(path), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path / "out")]
    evaluate(argv)
    before = (tmp_path / "out" / "metrics.json").read_text()
    write_jsonl(path, [{**GOOD, "emotion": "sadness"}])
    with pytest.raises(FileExistsError, match="--overwrite"):
        evaluate(argv)
    assert (tmp_path / "out" / "metrics.json").read_text() == before
    evaluate(argv + ["--overwrite_output_dir"])
    assert (tmp_path / "out" / "metrics.json").read_text() != before
    assert (tmp_path / "out" / "predictions.jsonl").is_file()


def test_overwrite_keeps_everything_the_evaluation_did_not_write(workspace, tmp_path, monkeypatch):
    """`--output_dir X --overwrite_output_dir` deleted a folder holding the user's src/ and thesis.tex because it also
    held a report.md, and the predictions file it was scoring. Now only the evaluation's own files are replaced; a
    user's file with an output's name stops the run before any work; the scored file survives."""
    stub_caption_metrics(monkeypatch)
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "src" / "main.py").write_text("print()")
    (work / "thesis.tex").write_text("\\documentclass{article}")
    scored = write_jsonl(work / "my_predictions.jsonl", [GOOD])
    argv = ["--predictions_file", str(scored), "--dataset_path", str(workspace / "data"), "--output_dir", str(work)]
    evaluate(argv + ["--overwrite_output_dir"])
    evaluate(argv + ["--overwrite"])  # the one spelling; the other is kept as an alias
    assert (work / "thesis.tex").is_file() and (work / "src" / "main.py").is_file() and scored.is_file()
    assert (work / "metrics.json").is_file() and (work / "report.md").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my report")
    with pytest.raises(FileExistsError, match=r"report\.md, which this evaluation did not write"):
        evaluate(argv[:-1] + [str(mine), "--overwrite"])
    assert (mine / "report.md").read_text() == "my report" and sorted(p.name for p in mine.iterdir()) == ["report.md"]


def test_an_empty_split_is_an_error_naming_it(workspace, tmp_path, monkeypatch):
    """An empty split exited 0 with a table of dashes."""
    from datasets import load_from_disk

    corpus = load_from_disk(str(workspace / "data"))
    features = corpus["test"].features
    corpus["test"] = Dataset.from_dict({name: [] for name in features}, features=features)
    corpus.save_to_disk(str(tmp_path / "data"), num_shards=dict.fromkeys(corpus, 1))  # an empty split loads back
    with pytest.raises(ValueError, match=r"'test' split of .* holds no paintings.*--split (train|validation)"):
        evaluate(["--model_name_or_path", str(workspace / "model"), "--dataset_path", str(tmp_path / "data"),
                  "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_another_taxonomy_end_to_end(tmp_path, tokenizer):
    """A 3-class model on a 3-class corpus: scores, confusion matrix and report use the corpus's classes, and the
    published ArtEmis rows are not shown."""

    from helpers import build_tiny, corpus_texts

    from sevlm.tokenizer import train_tokenizer

    emotions = ["delighted", "so-so", "très déçu"]
    model, processor = build_tiny(emotions=emotions, tokenizer=train_tokenizer(corpus_texts(emotions), vocab_size=600))
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    features = corpus_features(emotions)
    rows = {key: [] for key in features}
    for index, labels in enumerate([["delighted", "delighted", "so-so"], ["très déçu"], ["so-so", "delighted"]]):
        rows["painting_id"].append(f"p/{index}")
        rows["art_style"].append("p")
        rows["painting"].append(str(index))
        rows["image"].append(random_images(1, seed=index)[0])
        rows["emotions"].append(labels)
        rows["explanations"].append([f"it looks {label}" for label in labels])
        rows["emotion_histogram"].append(emotion_histogram(labels, emotions))
        rows["source"].append(["mine"] * len(labels))
    split = Dataset.from_dict(rows, features=features)
    DatasetDict(train=split, validation=split, test=split).save_to_disk(str(tmp_path / "data"))
    metric = sevlm_metric
    original = metric.caption_statistics
    try:
        metric.caption_statistics = fake_caption_statistics
        metrics = evaluate(["--model_name_or_path", str(tmp_path / "model"), "--dataset_path", str(tmp_path / "data"),
                            "--output_dir", str(tmp_path / "out"), "--max_new_tokens", "4"])
    finally:
        metric.caption_statistics = original
    assert set(metrics["per_emotion_accuracy"]) == set(emotions) and metrics["num_paintings_with_majority"] == 2
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert list(rows[0]["emotion_scores"]) == emotions
    report = (tmp_path / "out" / "report.md").read_text()
    assert "NLX-GPT" not in report and "own taxonomy (delighted, so-so, très déçu)" in report
    # A model of another taxonomy than the corpus is refused.
    with pytest.raises(ValueError, match="evaluate a model on a corpus of its own taxonomy"):
        evaluate(["--model_name_or_path", str(tmp_path / "model"), "--dataset_path", str(workspace_path(tmp_path)),
                  "--output_dir", str(tmp_path / "out2")])


def workspace_path(tmp_path):
    """An ArtEmis-taxonomy corpus (9 classes) for the mismatch check."""
    features = corpus_features(ARTEMIS_EMOTIONS)
    rows = {key: [] for key in features}
    rows["painting_id"].append("x/0")
    rows["art_style"].append("x")
    rows["painting"].append("0")
    rows["image"].append(random_images(1)[0])
    rows["emotions"].append(["awe"])
    rows["explanations"].append(["huge"])
    rows["emotion_histogram"].append(emotion_histogram(["awe"]))
    rows["source"].append(["v1"])
    split = Dataset.from_dict(rows, features=features)
    DatasetDict(train=split, validation=split, test=split).save_to_disk(str(tmp_path / "artemis"))
    return tmp_path / "artemis"


def test_emotion_names_follow_the_one_rule_in_predictions_files(workspace, tmp_path, monkeypatch):
    """`emotion_scores` keys differing only in case ("Awe", "awe") silently kept the last one; names are compared by
    the project's one rule everywhere ("Something_Else", " AWE ")."""
    stub_caption_metrics(monkeypatch)
    scores = {name: 0.1 for name in ARTEMIS_EMOTIONS}
    twice = {**scores, "Awe": 0.5}
    path = write_jsonl(tmp_path / "twice.jsonl", [{**GOOD, "emotion_scores": twice}])
    argv = ["--predictions_file", str(path), "--dataset_path", str(workspace / "data"), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(ValueError, match=r"line 1: emotion_scores names one class twice: 'awe' and 'Awe'"):
        evaluate(argv)
    spelled = {name.upper().replace(" ", "_"): value for name, value in scores.items()}
    path = write_jsonl(tmp_path / "spelled.jsonl", [{**GOOD, "emotion": " Something_Else ", "emotion_scores": spelled}])
    metrics = evaluate(["--predictions_file", str(path), *argv[2:]])
    assert metrics["num_invalid_emotions"] == 0
