"""Research-grade evaluation: the annotators'-spread metrics and per-emotion precision/recall/F1 on hand-computed
cases, the per-painting fast path against pycocoevalcap (also on a resample), bootstrap intervals and their seed,
slices, and paired comparisons of two evaluations (with their refusals)."""

import json
import math
import re
import shutil

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from helpers import EXPLANATIONS, random_images

import eval_sevlm
import sevlm.evaluation.run as evaluation
from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.data.schema import corpus_features
from sevlm.evaluation import metric  # noqa: E402
from sevlm.evaluation import statistics as stats

E = list(ARTEMIS_EMOTIONS)


def one_hot(name, share=1.0):
    """Scores giving `share` to `name` and the rest evenly to the other 8 classes."""
    scores = [(1 - share) / 8] * 9
    scores[E.index(name)] = share
    return scores


def histogram(names):
    return [names.count(name) / len(names) for name in E]


# --------------------------------------------------------------------------------------- hand-computed metrics
def test_js_divergence_known_values():
    disjoint = metric.emotion_js_divergences([histogram(["awe"])], [one_hot("fear")])
    assert disjoint[0] == pytest.approx(math.log(2))  # disjoint distributions: ln 2
    assert metric.emotion_js_divergences([histogram(["awe", "fear"])], [[0, 0.5, 0, 0, 0, 0, 0.5, 0, 0]])[
        0
    ] == pytest.approx(0)
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4); KL(p||m) = ln(4/3) / 2, KL(q||m) = ln(4/3); JS = 3/4 ln(4/3)
    half = metric.emotion_js_divergences([histogram(["amusement", "awe"])], [one_hot("amusement")])[0]
    assert half == pytest.approx(0.75 * math.log(4 / 3))
    # counts and shares, and scores that do not sum to 1, are normalised; the mean is over paintings
    mean = metric.emotion_js_divergence(
        [[2, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1, 0, 0]], [[0, 3] + [0] * 7, [0, 2, 0, 0, 0, 0, 2, 0, 0]]
    )
    assert mean == pytest.approx(math.log(2) / 2)
    assert math.isnan(metric.emotion_js_divergence([], []))
    with pytest.raises(ValueError, match="emotion_scores"):
        metric.emotion_js_divergence([histogram(["awe"])], [[-1] * 9])


def test_accuracy_against_any_annotator():
    histograms = [
        histogram(["awe", "awe", "awe", "fear", "fear"]),  # fear is a minority emotion: right here, wrong for ACC
        histogram(["awe", "awe", "fear"]),  # anger: nobody chose it
        [0] * 9,  # no annotation: left out
        histogram(["something else"]),  # named with other case and spaces around: still right
        histogram(["sadness"]),  # a name outside the classes: wrong
    ]
    predicted = ["fear", "anger", "awe", " Something Else", "melancholy"]
    assert metric.any_annotator_hits(predicted, histograms) == [1.0, 0.0, None, 1.0, 0.0]
    assert metric.emotion_accuracy_any_annotator(predicted, histograms) == pytest.approx(2 / 4)
    assert metric.emotion_accuracy([predicted[0]], ["awe"])[0] == 0.0  # the majority rule says wrong


def test_calibration_error_hand_computed():
    # confidences 0.9 (right), 0.9 (wrong), 0.55 (right), 0.3 (right: bin [0.3, 0.4)), 1.0 (right: last bin) and a
    # painting without a majority (left out).
    scores = [
        [0.9, 0.1, 0, 0, 0, 0, 0, 0, 0],
        [0.9, 0.1, 0, 0, 0, 0, 0, 0, 0],
        [0, 0.55, 0.45, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0.3, 0.25, 0.25, 0.2, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 1.0],
        [0.2, 0.8, 0, 0, 0, 0, 0, 0, 0],
    ]
    majorities = ["amusement", "awe", "awe", "excitement", "something else", None]
    ece = metric.emotion_calibration_error(scores, majorities)
    # bins: [0.9, 1.0] holds 0.9, 0.9, 1.0 (accuracy 2/3, confidence 14/15); [0.5, 0.6) 0.55 (1 vs 0.55);
    # [0.3, 0.4) 0.3 (1 vs 0.3). ECE = 3/5 |2/3 - 14/15| + 1/5 |1 - 0.55| + 1/5 |1 - 0.3|
    expected = 3 / 5 * abs(2 / 3 - 14 / 15) + 1 / 5 * 0.45 + 1 / 5 * 0.7
    assert ece == pytest.approx(expected)
    table = metric.calibration_bins(*metric._calibration_inputs(scores, majorities, ARTEMIS_EMOTIONS))
    assert [row["count"] for row in table] == [0, 0, 0, 1, 0, 1, 0, 0, 0, 3]
    assert table[9]["accuracy"] == pytest.approx(2 / 3) and table[9]["confidence"] == pytest.approx(14 / 15)
    assert table[0]["accuracy"] is None and (table[3]["low"], table[3]["high"]) == (0.3, 0.4)
    assert metric.calibration_bin([0.0, 0.1, 0.3, 0.7, 0.99, 1.0]).tolist() == [0, 1, 3, 7, 9, 9]
    # perfectly calibrated: 4 paintings at confidence 0.5, 2 of them right
    half = [[0.5, 0.5] + [0] * 7] * 4
    assert metric.emotion_calibration_error(half, ["amusement", "awe", "amusement", "awe"]) == pytest.approx(0)
    assert math.isnan(metric.emotion_calibration_error(half[:1], [None]))


def test_per_emotion_precision_recall_f1():
    majorities = ["awe", "awe", "fear", "fear", "sadness", None]
    predicted = ["awe", "fear", "fear", "joy", "awe", "awe"]  # "joy" is outside the classes; the last has no majority
    table, macro = metric.emotion_precision_recall_f1(predicted, majorities)
    assert table["precision"]["awe"] == pytest.approx(1 / 2) and table["recall"]["awe"] == pytest.approx(1 / 2)
    assert table["f1"]["awe"] == pytest.approx(1 / 2)
    assert table["precision"]["fear"] == pytest.approx(1 / 2) and table["recall"]["fear"] == pytest.approx(1 / 2)
    assert (
        math.isnan(table["precision"]["sadness"]) and table["recall"]["sadness"] == 0 and table["f1"]["sadness"] == 0
    )
    assert all(math.isnan(table["f1"][name]) for name in ("amusement", "anger", "something else"))
    assert macro == pytest.approx((0.5 + 0.5 + 0) / 3)
    # recall is the per-emotion accuracy
    assert metric.emotion_accuracy(predicted, majorities)[1]["awe"] == table["recall"]["awe"]


# ----------------------------------------------------------------------------- fast path = full recomputation
def fake_caption_statistics(predictions, references):
    """Java-free caption statistics: scores 0.5, per-painting values of the right shapes."""
    count = len(predictions)
    return {
        "scores": dict.fromkeys(metric.CAPTION_KEYS, 0.5),
        "bleu": np.zeros((count, metric.BLEU_COLUMNS)),
        "meteor": np.zeros((count, metric.METEOR_STATS_LENGTH)),
        "rouge_l": np.full(count, 0.5),
        "cider": np.full(count, 0.5),
    }


def emotion_inputs(count=23, seed=0):
    """Varied per-painting inputs: majorities and ties, right and wrong names, scores, VAD pairs with gaps."""
    rng = np.random.default_rng(seed)
    annotations = [[E[rng.integers(4)] for _ in range(rng.integers(1, 6))] for _ in range(count)]
    predicted = [E[rng.integers(5)] if i % 7 else "not an emotion" for i in range(count)]
    scores = [rng.dirichlet(np.ones(9) * 0.5).tolist() for _ in range(count)]
    vad = [None if i % 5 == 0 else rng.normal(size=3).tolist() for i in range(count)]
    return {
        "predicted_emotions": predicted,
        "explanations": [EXPLANATIONS[i % 4] for i in range(count)],
        "references": [[EXPLANATIONS[i % 10]] for i in range(count)],
        "emotion_histograms": [histogram(names) for names in annotations],
        "explanation_emotions": [E[rng.integers(4)] for _ in range(count)],
        "emotion_scores": scores,
        "prediction_vad": vad,
        "reference_vad": [rng.normal(size=3).tolist() for _ in range(count)],
    }


EMOTION_KEYS = [key for key in metric.STATISTIC_KEYS if key not in metric.CAPTION_KEYS and key != "unique"]


def test_statistics_reproduce_every_metric_and_resamples(monkeypatch):
    """The per-painting statistics give back every metric of compute_sevlm_metrics, and weights (draw counts) give
    the metrics of the set with paintings repeated that many times (the caption metrics: the Java tests below)."""
    monkeypatch.setattr(metric, "caption_statistics", fake_caption_statistics)
    monkeypatch.setattr(
        metric, "caption_metrics", lambda predictions, references: dict.fromkeys(metric.CAPTION_KEYS, 0.5)
    )
    inputs = emotion_inputs()
    results, statistics = metric.compute_sevlm_metrics(**inputs, return_statistics=True)
    fast = metric.metrics_from_statistics(statistics, num_emotions=9)
    for key in EMOTION_KEYS + ["unique"]:
        assert fast[key][0] == pytest.approx(results[key], abs=1e-12), key
    counts = np.random.default_rng(3).multinomial(len(inputs["explanations"]), [1 / 23] * 23, size=4)
    resampled = metric.metrics_from_statistics(statistics, counts, num_emotions=9)
    for row, draw in enumerate(counts):
        repeated = {
            key: [value for value, times in zip(values, draw) for _ in range(times)] for key, values in inputs.items()
        }
        expected = metric.compute_sevlm_metrics(**repeated)
        for key in EMOTION_KEYS:
            assert resampled[key][row] == pytest.approx(expected[key], abs=1e-12, nan_ok=True), key


# Captions for the Java check: a perfect match (METEOR counts no chunk for it), an empty prediction, one sharing
# nothing with its references, punctuation and case.
CAPTIONS = [EXPLANATIONS[i % 10].capitalize() + ("!" if i % 3 else "") for i in range(14)]
CAPTIONS[2] = EXPLANATIONS[3]
CAPTIONS[5] = ""
CAPTIONS[7] = "zebra quantum"
CAPTION_REFERENCES = [
    [EXPLANATIONS[(i + 7) % 10], EXPLANATIONS[i % 10].replace("the ", "a "), "a painting of the sky"]
    for i in range(14)
]
CAPTION_REFERENCES[2] = [EXPLANATIONS[3], "a quiet blue sky"]
RESAMPLE = [2, 2, 2, 0, 5, 7, 7, 9, 11, 13, 13, 1, 4, 6]


@pytest.fixture(scope="module")
def java_runs():
    """caption_statistics once, and pycocoevalcap (caption_metrics) on the set and on a resample of it."""
    statistics = metric.caption_statistics(CAPTIONS, CAPTION_REFERENCES)
    full = metric.caption_metrics(CAPTIONS, CAPTION_REFERENCES)
    resampled = metric.caption_metrics([CAPTIONS[i] for i in RESAMPLE], [CAPTION_REFERENCES[i] for i in RESAMPLE])
    return statistics, full, resampled


def caption_fast_path(statistics, weights=None):
    columns = {key: statistics[key] for key in ("bleu", "meteor", "rouge_l", "cider")}
    columns.update(
        majority=np.full(len(CAPTIONS), -1),
        predicted=np.full(len(CAPTIONS), -1),
        any_annotator=np.zeros(len(CAPTIONS)),
        unique_weight=np.ones(len(CAPTIONS)),
    )
    return metric.metrics_from_statistics(columns, weights, num_emotions=9)


def test_fast_path_equals_pycocoevalcap(java_runs):
    statistics, full, _ = java_runs
    assert statistics["scores"] == pytest.approx(full, abs=1e-12)  # the same protocol numbers
    fast = caption_fast_path(statistics)
    for key in metric.CAPTION_KEYS:
        assert fast[key][0] == pytest.approx(full[key], abs=1e-12), key
    assert statistics["meteor"][2, 20] == 1 and 0 < full["meteor"] < 1  # the perfect match is in the set


def test_fast_path_on_a_resample_equals_a_full_recomputation(java_runs):
    """BLEU, METEOR and ROUGE-L of a resample (paintings repeated) equal pycocoevalcap run on the repeated set;
    CIDEr differs only by its idf, held at the full set's."""
    statistics, full, resampled = java_runs
    counts = np.bincount(RESAMPLE, minlength=len(CAPTIONS))[None]
    fast = caption_fast_path(statistics, counts)
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l"):
        assert fast[key][0] == pytest.approx(resampled[key], abs=1e-12), key
    assert fast["cider"][0] == pytest.approx(np.mean(statistics["cider"][RESAMPLE]))
    assert fast["meteor"][0] != pytest.approx(full["meteor"], abs=1e-6)  # the resample really changed METEOR


# --------------------------------------------------------------------------------------------------- bootstrap
def test_resamples_are_fixed_by_the_seed():
    first = np.concatenate(list(stats.resample_counts(50, 230, seed=7)))
    again = np.concatenate(list(stats.resample_counts(50, 230, seed=7, block=9)))  # blocks do not change the draws
    other = np.concatenate(list(stats.resample_counts(50, 230, seed=8)))
    assert first.shape == (230, 50) and (first.sum(axis=1) == 50).all()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_bootstrap_interval_of_an_accuracy():
    """400 paintings, half right: the 95% interval is about 0.5 +- 1.96 sqrt(0.25 / 400) = 0.5 +- 0.049."""
    count = 400
    statistics = {
        "majority": np.zeros(count, dtype=np.int64),
        "predicted": np.where(np.arange(count) % 2 == 0, 0, 1),
        "any_annotator": np.ones(count),
        "unique_weight": np.ones(count),
        "bleu": np.zeros((count, 10)),
        "meteor": np.zeros((count, 23)),
        "rouge_l": np.zeros(count),
        "cider": np.zeros(count),
    }
    intervals = stats.bootstrap_intervals(metric, statistics, 1000, seed=0, num_emotions=2, progress=False)
    low, high = intervals["emotion_accuracy"]
    assert low < 0.5 < high and 0.04 < (high - low) / 2 < 0.06
    assert intervals == stats.bootstrap_intervals(metric, statistics, 1000, seed=0, num_emotions=2, progress=False)
    assert (
        intervals["emotion_accuracy"]
        != stats.bootstrap_intervals(metric, statistics, 1000, seed=1, num_emotions=2, progress=False)[
            "emotion_accuracy"
        ]
    )
    assert intervals["emotion_accuracy_scores"] is None  # no scores: no interval
    assert stats.bootstrap_intervals(metric, statistics, 0, seed=0) == {}


def test_paired_p_value():
    # |d - 1| >= 1 for -1, 0, 2, 3 (not for 1): (1 + 4) / (1 + 5)
    assert stats.paired_p_value([-1, 0, 1, 2, 3], 1.0) == pytest.approx(5 / 6)
    assert stats.paired_p_value([0.1, 0.2, 0.3], 0.0) == 1.0
    assert stats.paired_p_value([0.9, 1.0, 1.1, 1.0], 1.0) == pytest.approx(1 / 5)  # never near 0
    assert stats.paired_p_value([math.nan], 1.0) is None


# ------------------------------------------------------------------------------------- through eval_sevlm.py
STYLES = ["Impressionism"] * 40 + ["Baroque"] * 15 + ["Cubism"] * 5


def annotations_of(index):
    """Painting i: majority E[i % 4] (3 of 4 votes), every 10th a tie between two emotions (no majority)."""
    majority = E[index % 4]
    return [majority, E[(index + 1) % 4]] if index % 10 == 9 else [majority, majority, majority, "fear"]


def make_corpus(path, styles=STYLES, split_name="test"):
    """A prepared corpus: a small train split (for the EA classifier) and a split of len(styles) paintings."""
    features = corpus_features(ARTEMIS_EMOTIONS)

    def split(annotations, styles, prefix):
        rows = {key: [] for key in features}
        images = random_images(len(annotations), seed=len(annotations), size=(16, 16))
        for index, (names, style) in enumerate(zip(annotations, styles)):
            rows["painting_id"].append(f"{style}/{prefix}{index}")
            rows["art_style"].append(style)
            rows["painting"].append(f"{prefix}{index}")
            rows["image"].append(images[index])
            rows["emotions"].append(names)
            rows["explanations"].append([EXPLANATIONS[E.index(name) % 10] for name in names])
            rows["emotion_histogram"].append(histogram(names))
            rows["source"].append(["v1"] * len(names))
        return Dataset.from_dict(rows, features=features)

    train = [[name, name] for name in E] * 3
    evaluated = split([annotations_of(i) for i in range(len(styles))], styles, "p")
    DatasetDict({"train": split(train, ["train"] * len(train), "t"), split_name: evaluated}).save_to_disk(str(path))
    return path


def predictions(path, right, count=len(STYLES), scores=True):
    """A predictions file: the majority emotion where right(i), else "fear"."""
    rows = []
    for index in range(count):
        emotion = E[index % 4] if right(index) else "fear"
        row = {"painting_id": f"{STYLES[index]}/p{index}", "emotion": emotion, "explanation": EXPLANATIONS[index % 10]}
        if scores:
            row["emotion_scores"] = one_hot(emotion, 0.7)
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n")
    return path


def expected_accuracy(right, rows):
    kept = [i for i in rows if i % 10 != 9]
    return sum(map(right, kept)) / len(kept)


RIGHT_A = lambda index: index % 3 == 0  # noqa: E731
RIGHT_B = lambda index: index % 3 != 2  # noqa: E731


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two evaluations (A, B) of the same 60 paintings, sliced by style, without Java."""
    root = tmp_path_factory.mktemp("runs")
    make_corpus(root / "data")
    patch = pytest.MonkeyPatch()
    patch.setattr(metric, "caption_statistics", fake_caption_statistics)
    try:
        for name, right in (("a", RIGHT_A), ("b", RIGHT_B)):
            evaluation.evaluate_model(
                eval_sevlm.parse_arguments(
                    [
                        "--predictions_file",
                        str(predictions(root / f"{name}.jsonl", right)),
                        "--dataset_path",
                        str(root / "data"),
                        "--output_dir",
                        str(root / name),
                        "--slice_by",
                        "art_style",
                        "--bootstrap",
                        "300",
                    ]
                )
            )
    finally:
        patch.undo()
    return root


def test_metrics_json_has_an_interval_for_every_metric(runs):
    metrics = json.loads((runs / "a" / "metrics.json").read_text())
    intervals = metrics["confidence_intervals"]
    assert list(intervals) == list(metric.STATISTIC_KEYS)
    assert metrics["emotion_accuracy"] == pytest.approx(expected_accuracy(RIGHT_A, range(60)))
    for key in ("emotion_accuracy", "emotion_accuracy_scores", "emotion_accuracy_any_annotator", "emotion_macro_f1"):
        low, high = intervals[key]
        assert low <= metrics[key] <= high and low < high, key
    assert all(
        intervals[key] is not None
        for key in ("emotion_js_divergence", "emotion_calibration_error", "unique", "rouge_l")
    )
    assert intervals["vad_distance"] is None  # no model, no VAD table
    assert metrics["confidence_interval_settings"]["resamples"] == 300
    assert metrics["per_emotion_f1"]["fear"] is not None and 0 <= metrics["emotion_macro_f1"] <= 1
    report = (runs / "a" / "report.md").read_text()
    assert "## 95% confidence intervals" in report and "| ACC (generated emotion vs. majority) |" in report
    assert "| Emotion | Recall (ACC) | Precision | F1 |" in report
    assert (runs / "a" / "reliability_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (runs / "a" / stats.STATISTICS_FILE).is_file()


def test_slices_by_style(runs):
    slices = json.loads((runs / "b" / "slices.json").read_text())
    assert slices["column"] == "art_style" and slices["min_size"] == 30
    entries = {entry["value"]: entry for entry in slices["slices"]}
    assert [entry["value"] for entry in slices["slices"]] == ["Impressionism", "Baroque", "Cubism"]  # largest first
    assert [entries[s]["num_paintings"] for s in ("Impressionism", "Baroque", "Cubism")] == [40, 15, 5]
    assert [entries[s]["small"] for s in ("Impressionism", "Baroque", "Cubism")] == [False, True, True]
    assert entries["Baroque"]["metrics"]["emotion_accuracy"] == pytest.approx(
        expected_accuracy(RIGHT_B, range(40, 55))
    )
    assert entries["Baroque"]["num_paintings_with_majority"] == sum(i % 10 != 9 for i in range(40, 55))
    # a slice is scored as an evaluation of its own paintings: Unique counts duplicates within it (explanation i % 10)
    assert entries["Cubism"]["metrics"]["unique"] == 1.0 and entries["Baroque"]["metrics"]["unique"] == pytest.approx(
        10 / 15
    )
    assert json.loads((runs / "b" / "metrics.json").read_text())["unique"] == pytest.approx(10 / 60)
    low, high = entries["Impressionism"]["confidence_intervals"]["emotion_accuracy"]
    assert low <= entries["Impressionism"]["metrics"]["emotion_accuracy"] <= high
    report = (runs / "b" / "report.md").read_text()
    assert (
        "## Slices by art_style" in report
        and "| Cubism (*small*) | 5 |" in report
        and "| Impressionism | 40 |" in report
    )


def test_same_seed_same_intervals(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(metric, "caption_statistics", fake_caption_statistics)
    argv = ["--predictions_file", str(runs / "a.jsonl"), "--dataset_path", str(runs / "data"), "--bootstrap", "300"]
    again = evaluation.evaluate_model(eval_sevlm.parse_arguments(argv + ["--output_dir", str(tmp_path / "again")]))
    assert (
        again["confidence_intervals"] == json.loads((runs / "a" / "metrics.json").read_text())["confidence_intervals"]
    )
    other = evaluation.evaluate_model(
        eval_sevlm.parse_arguments(argv + ["--output_dir", str(tmp_path / "other"), "--seed", "1"])
    )
    assert other["confidence_intervals"]["emotion_accuracy"] != again["confidence_intervals"]["emotion_accuracy"]
    off = evaluation.evaluate_model(
        eval_sevlm.parse_arguments(argv[:-1] + ["0", "--output_dir", str(tmp_path / "off")])
    )
    assert off["confidence_intervals"] == {}
    assert "No confidence intervals (--bootstrap 0)" in (tmp_path / "off" / "report.md").read_text()
    assert not (tmp_path / "off" / "slices.json").exists()


@pytest.mark.parametrize(
    "column, message", [("museum", r"has no such column.*'art_style'"), ("emotions", r"not one plain value")]
)
def test_bad_slice_columns(runs, tmp_path, column, message):
    with pytest.raises(ValueError, match=message):
        evaluation.evaluate_model(
            eval_sevlm.parse_arguments(
                [
                    "--predictions_file",
                    str(runs / "a.jsonl"),
                    "--dataset_path",
                    str(runs / "data"),
                    "--output_dir",
                    str(tmp_path / "out"),
                    "--slice_by",
                    column,
                ]
            )
        )
    assert not (tmp_path / "out").exists()


def test_compare_two_runs(runs, tmp_path):
    assert (
        eval_sevlm.main(
            [
                "--compare",
                str(runs / "a"),
                str(runs / "b"),
                "--output_dir",
                str(tmp_path / "cmp"),
                "--bootstrap",
                "500",
            ]
        )
        == 0
    )
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    a, b = (json.loads((runs / name / "metrics.json").read_text()) for name in ("a", "b"))
    row = comparison["metrics"]["emotion_accuracy"]
    assert row["a"] == pytest.approx(a["emotion_accuracy"]) and row["b"] == pytest.approx(b["emotion_accuracy"])
    assert (
        row["difference"] == pytest.approx(b["emotion_accuracy"] - a["emotion_accuracy"]) and row["difference"] > 0.25
    )
    assert row["interval"][0] > 0 and row["p_value"] < 0.01  # a large, real difference
    assert comparison["metrics"]["rouge_l"]["difference"] == 0 and comparison["metrics"]["rouge_l"]["p_value"] == 1
    assert comparison["num_common_paintings"] == 60
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert (
        "| Metric | A | B | B - A | 95% interval of B - A | p |" in markdown
        and "| ACC (generated emotion vs. majority) |" in markdown
    )
    # A against itself: no difference, p = 1
    same = stats.compare_runs(metric, runs / "a", runs / "a", 200, seed=0, progress=False)
    assert (
        same["metrics"]["emotion_accuracy"]["difference"] == 0 and same["metrics"]["emotion_accuracy"]["p_value"] == 1
    )
    assert same["metrics"]["emotion_accuracy"]["interval"] == [0, 0]


def test_compare_over_the_shared_paintings(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(metric, "caption_statistics", fake_caption_statistics)
    path = predictions(tmp_path / "part.jsonl", RIGHT_B, count=30)
    evaluation.evaluate_model(
        eval_sevlm.parse_arguments(
            [
                "--predictions_file",
                str(path),
                "--dataset_path",
                str(runs / "data"),
                "--output_dir",
                str(tmp_path / "part"),
                "--bootstrap",
                "0",
            ]
        )
    )
    comparison = stats.compare_runs(metric, runs / "a", tmp_path / "part", 100, seed=0, progress=False)
    assert comparison["num_common_paintings"] == 30 and comparison["num_paintings_a"] == 60
    assert comparison["metrics"]["emotion_accuracy"]["a"] == pytest.approx(expected_accuracy(RIGHT_A, range(30)))
    assert comparison["metrics"]["emotion_accuracy"]["b"] == pytest.approx(expected_accuracy(RIGHT_B, range(30)))


def edited_copy(run, target, **changes):
    shutil.copytree(run, target)
    record = json.loads((target / stats.STATISTICS_FILE).read_text())
    for key, change in changes.items():
        record[key] = change(record[key])
    (target / stats.STATISTICS_FILE).write_text(json.dumps(record))
    return target


def test_compare_refuses_other_splits_taxonomies_and_data(runs, tmp_path, capsys):
    cases = [
        (
            edited_copy(runs / "b", tmp_path / "split", split=lambda _: "validation"),
            "different splits ('test' and 'validation')",
        ),
        (
            edited_copy(runs / "b", tmp_path / "taxonomy", emotions=lambda names: names[:-1] + ["boredom"]),
            "different emotion taxonomies",
        ),
        (
            edited_copy(runs / "b", tmp_path / "data", reference_digests=lambda d: ["0" * 16] + d[1:]),
            "references of 1 shared paintings differ between the runs (first: Impressionism/p0)",
        ),
        (tmp_path / "nothing", "is not a folder"),
    ]
    for run, message in cases:
        with pytest.raises((ValueError, FileNotFoundError), match=re.escape(message)):
            stats.compare_runs(metric, runs / "a", run, 10, seed=0, progress=False)
        assert eval_sevlm.main(["--compare", str(runs / "a"), str(run), "--output_dir", str(tmp_path / "cmp")]) == 1
        assert message.split(" (")[0] in capsys.readouterr().err
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has no painting_statistics.json"):
        stats.compare_runs(metric, runs / "a", tmp_path / "old", 10, seed=0)
    assert eval_sevlm.main(["--compare", str(runs / "a")]) == 1
    assert "--compare takes two evaluation folders" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()


def test_compare_never_replaces_a_file_it_did_not_make_unasked(runs, tmp_path):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "comparison.md").write_text("my notes")
    (out / "keep.txt").write_text("keep")
    argv = ["--compare", str(runs / "a"), str(runs / "b"), "--output_dir", str(out), "--bootstrap", "50"]
    for extra in ([], ["--overwrite"]):  # the user's comparison.md is never replaced
        with pytest.raises(FileExistsError, match=r"comparison\.md, which this comparison did not write"):
            evaluation.compare_evaluations(eval_sevlm.parse_arguments(argv + extra))
    assert (out / "comparison.md").read_text() == "my notes" and not (out / "comparison.json").exists()
    (out / "comparison.md").unlink()
    evaluation.compare_evaluations(eval_sevlm.parse_arguments(argv))
    with pytest.raises(FileExistsError, match="earlier comparison"):
        evaluation.compare_evaluations(eval_sevlm.parse_arguments(argv))
    evaluation.compare_evaluations(eval_sevlm.parse_arguments(argv + ["--overwrite_output_dir"]))
    assert (out / "comparison.md").read_text().startswith("# SEVLM comparison") and (
        out / "keep.txt"
    ).read_text() == "keep"


def test_compare_default_output_folder(runs):
    args = eval_sevlm.parse_arguments(["--compare", str(runs / "a"), str(runs / "b")])
    assert args.output_dir.startswith("outputs/eval/compare/") and args.output_dir.endswith(
        f"{runs.name}-a-vs-{runs.name}-b"
    )
