"""The SEVLM evaluation metrics (sevlm/evaluation/metric.py): known values, cross-checks against direct pycocoevalcap
calls, the majority rule, and the offline `evaluate.load` path.

Java runs are slow (METEOR loads its paraphrase table for seconds), so every caption score comes from ONE
module-scoped evaluation through `evaluate.load` and ONE direct pycocoevalcap run.
"""

import math

import numpy as np
import pytest
from helpers import REPO_ROOT

from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.evaluation import metric

METRIC_FILE = REPO_ROOT / "sevlm" / "evaluation" / "metric.py"

# Hand-made evaluation set: punctuation and case differences, an empty prediction, a line separator inside a
# reference (which would shift the PTB tokenizer's lines if it were not cleaned), non-ASCII text.
PREDICTIONS = [
    "The sky is calm and peaceful.",
    "the woman looks sad",
    "",
    "dark, gloomy colours!",
    "something about the café storm",
]
REFERENCES = [
    ["the sky is calm and peaceful", "a quiet blue sky"],
    ["the woman looks lonely and sad", "her face is sad", "sad woman"],
    ["bright colors make me happy"],
    ["the colors are dark and gloomy", "gloomy\u2028dark colours"],
    ["the storm is frightening", "the waves at the café are scary"],
]
# What the Java tools must see for REFERENCES (the line separator turned into a space).
CLEAN_REFERENCES = [refs[:] for refs in REFERENCES]
CLEAN_REFERENCES[3][1] = "gloomy dark colours"

HISTOGRAMS = [
    [0, 0, 4, 0, 0, 0, 0, 1, 0],  # contentment 4/5: majority
    [0, 0, 0, 0, 0, 0, 0, 0.6, 0.4],  # sadness 0.6: majority
    [2, 2, 0, 0, 0, 0, 0, 0, 0],  # tie: no majority
    [0, 3, 0, 1, 0, 0, 0, 0, 2],  # awe exactly 0.5: no majority
    [0, 0, 0, 0, 0, 0, 2, 0, 1],  # fear 2/3: majority
]
PREDICTED_EMOTIONS = ["contentment", " Sadness", "amusement", "awe", "awe"]


def toy_text_classifier(text):
    """Keyword rules standing in for a trained text-emotion classifier."""
    for keyword, emotion in (("calm", "contentment"), ("sad", "sadness"), ("gloomy", "sadness"), ("storm", "fear")):
        if keyword in text.lower():
            return emotion
    return "something else"


UNIFORM_SCORES = [[1 / 9] * 9 for _ in PREDICTIONS]


@pytest.fixture(scope="module")
def evaluate_results(tmp_path_factory):
    """Everything computed once through `evaluate.load` on the local folder (offline)."""
    import evaluate

    loaded = evaluate.load(str(METRIC_FILE), cache_dir=str(tmp_path_factory.mktemp("evaluate_cache")))
    results = loaded.compute(
        predictions=PREDICTIONS,
        references=REFERENCES,
        predicted_emotions=PREDICTED_EMOTIONS,
        emotion_histograms=HISTOGRAMS,
        explanation_emotions=[toy_text_classifier(text) for text in PREDICTIONS],
        emotion_scores=UNIFORM_SCORES,
        prediction_vad=[[0, 0, 0], [3, 4, 0], None, [1, 1, 1], [0, 0, 0]],
        reference_vad=[[0, 0, 0], [0, 0, 0], [1, 1, 1], None, [0, 0, 1]],
    )
    return loaded, results


@pytest.fixture(scope="module")
def direct_coco_scores():
    """The COCO caption toolkit called directly, as its COCOEvalCap does (tokenise gts and res, then score)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": ref} for ref in refs] for i, refs in enumerate(CLEAN_REFERENCES)})
    res = tokenizer.tokenize({i: [{"caption": text}] for i, text in enumerate(PREDICTIONS)})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = dict(zip(("bleu_1", "bleu_2", "bleu_3", "bleu_4"), bleu))
    scores["meteor"], _ = Meteor().compute_score(gts, res)
    scores["rouge_l"], _ = Rouge().compute_score(gts, res)
    scores["cider"], _ = Cider().compute_score(gts, res)
    return scores


# ------------------------------------------------------------------------------------------- evaluate module
def test_evaluate_load_offline_gives_every_key(evaluate_results):
    loaded, results = evaluate_results
    assert type(loaded).__module__.startswith("evaluate_modules")  # really loaded by evaluate from the folder
    assert set(results) == {
        "emotion_accuracy", "emotion_accuracy_scores", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l",
        "cider", "emotional_alignment", "emotion_explanation_consistency", "unique", "emotion_distribution_kl",
        "vad_distance", "num_vad_excluded",
        "per_emotion_accuracy", "num_paintings", "num_paintings_with_majority", "num_empty_explanations",
        "num_invalid_emotions", "emotion_js_divergence", "emotion_accuracy_any_annotator", "emotion_calibration_error",
        "emotion_calibration_bins", "emotion_macro_f1", "per_emotion_precision", "per_emotion_recall", "per_emotion_f1",
    }
    assert set(results["per_emotion_accuracy"]) == set(ARTEMIS_EMOTIONS)


def test_caption_metrics_equal_direct_pycocoevalcap(evaluate_results, direct_coco_scores):
    _, results = evaluate_results
    for key, expected in direct_coco_scores.items():
        assert results[key] == pytest.approx(float(expected), abs=1e-6), key
    assert 0 < results["bleu_1"] <= 1 and 0 < results["meteor"] < 1 and 0 < results["cider"]


def test_emotion_metrics_known_values(evaluate_results):
    _, results = evaluate_results
    assert results["num_paintings"] == 5
    assert results["num_paintings_with_majority"] == 3  # the tie and the exact 0.5 are left out
    assert results["emotion_accuracy"] == pytest.approx(2 / 3)
    per_emotion = results["per_emotion_accuracy"]
    assert per_emotion["contentment"] == 1.0 and per_emotion["sadness"] == 1.0 and per_emotion["fear"] == 0.0
    assert math.isnan(per_emotion["awe"])  # awe is nobody's majority
    # toy classifier: contentment, sadness, something else, sadness, fear
    # EA (the paper's): against the majority, over the 3 paintings with one (contentment, sadness, fear): all right
    assert results["emotional_alignment"] == pytest.approx(3 / 3)
    # consistency: against the predicted emotions (contentment, sadness, amusement, awe, awe): 2 of 5
    assert results["emotion_explanation_consistency"] == pytest.approx(2 / 5)
    # uniform scores: the argmax is the first class (amusement), never a majority here
    assert results["emotion_accuracy_scores"] == 0.0
    assert results["unique"] == 1.0
    assert results["num_empty_explanations"] == 1
    assert results["num_invalid_emotions"] == 0
    # VAD: distances 0, 5 and 1 (the pairs with a None are left out)
    assert results["vad_distance"] == pytest.approx(2.0)
    assert results["num_vad_excluded"] == 2


def test_kl_against_uniform_scores(evaluate_results):
    _, results = evaluate_results
    expected = []
    for histogram in HISTOGRAMS:
        p = np.asarray(histogram, float) / np.sum(histogram)
        expected.append(sum(x * math.log(x * 9) for x in p if x > 0))  # KL(p || uniform) = sum p log(9p)
    assert results["emotion_distribution_kl"] == pytest.approx(np.mean(expected), abs=1e-6)


def test_evaluate_module_requires_emotion_inputs(evaluate_results):
    loaded, _ = evaluate_results
    with pytest.raises(ValueError, match="predicted_emotions"):
        loaded.compute(predictions=["a"], references=[["a"]])


# ---------------------------------------------------------------------------------------------- majority rule
MAJORITY_CASES = [
    ([0, 0, 4, 0, 0, 0, 0, 1, 0], "contentment"),
    ([0, 0, 0, 0, 0, 0, 0, 0.6, 0.4], "sadness"),
    ([2, 2, 0, 0, 0, 0, 0, 0, 0], None),  # tie
    ([0, 3, 0, 3, 0, 0, 0, 0, 0], None),  # tie at exactly 0.5
    ([0, 3, 0, 1, 0, 0, 0, 0, 2], None),  # top share exactly 0.5
    # 3 of 6 annotators stored as float32 shares summing to 0.9999999: the top share computes as 0.50000005
    (np.asarray([0.5, 0.1666666, 0.3333333, 0, 0, 0, 0, 0, 0], np.float32), None),
    ([1, 1, 1, 1, 1, 1, 1, 1, 1], None),  # no majority at all
    ([0, 0, 0, 0, 0, 0, 0, 0, 1], "something else"),  # a single annotation
    ([0, 0, 0, 0, 0, 0, 2, 0, 1], "fear"),
    ([0] * 9, None),  # no annotation at all
    (np.asarray([4, 1, 1, 1, 0, 0, 0, 0, 0], np.float32) / 7, "amusement"),  # 4 of 7
]


@pytest.mark.parametrize("histogram, expected", MAJORITY_CASES)
def test_majority_rule(histogram, expected):
    assert metric.majority_emotion(histogram, ARTEMIS_EMOTIONS) == expected


def test_majority_rule_checks_the_histogram_length():
    with pytest.raises(ValueError, match="one per emotion"):
        metric.majority_emotion([1, 0], ARTEMIS_EMOTIONS)
    assert metric.majority_emotion([1, 3], ["yes", "no"]) == "no"  # any taxonomy


def test_the_project_has_one_majority_rule():
    """The metric module owns the rule; nothing else in the repository defines one."""
    import re

    owners = []
    for path in REPO_ROOT.rglob("*.py"):
        if ".venv" in path.parts or "tests" in path.parts or "build" in path.parts:
            continue
        if re.search(r"^def (_\w*)?majority_emotion\(", path.read_text(encoding="utf-8"), re.M):
            owners.append(path.relative_to(REPO_ROOT).as_posix())
    assert owners == ["sevlm/evaluation/metric.py"]


def test_accuracy_with_no_majority_is_nan():
    accuracy, per_emotion, kept = metric.emotion_accuracy(["awe"], [None], ARTEMIS_EMOTIONS)
    assert math.isnan(accuracy) and kept == 0 and all(math.isnan(v) for v in per_emotion.values())


# ------------------------------------------------------------------------------------ EA, unique, KL, VAD
def test_emotional_alignment_differs_from_consistency():
    """A hand-made set where the paper's EA (classifier label vs. the annotators' majority) and the consistency with
    the model's own emotion disagree."""
    explanations = ["so calm here", "a sad face", "a storm", "nothing"]
    labels = [toy_text_classifier(text) for text in explanations]  # contentment, sadness, fear, something else
    predicted = ["contentment", "awe", "fear", "something else"]  # the model names these...
    majorities = ["contentment", "sadness", None, "amusement"]  # ...the annotators mostly felt these
    assert metric.emotional_alignment(labels, majorities) == pytest.approx(2 / 3)  # 3 with a majority: 2 right
    assert metric.emotion_explanation_consistency(predicted, labels) == pytest.approx(3 / 4)
    assert math.isnan(metric.emotional_alignment(labels, [None] * 4))
    with pytest.raises(ValueError):
        metric.emotional_alignment(labels, majorities[:2])


def test_accuracy_of_the_scores_argmax():
    scores = [[0.1, 0.9, 0, 0, 0, 0, 0, 0, 0], [0.5, 0.2, 0.3, 0, 0, 0, 0, 0, 0]]
    assert metric.scored_emotions(scores) == ["awe", "amusement"]
    accuracy, _, kept = metric.emotion_accuracy(metric.scored_emotions(scores), ["awe", "contentment"])
    assert accuracy == 0.5 and kept == 2


def test_bleu_4_fast_needs_no_java(monkeypatch):
    monkeypatch.setattr(metric.shutil, "which", lambda name: None)  # no Java: still computed
    perfect = metric.bleu_4_fast(["The sky is calm, and peaceful!"], [["the sky is calm and peaceful"]])
    assert perfect == pytest.approx(1.0)
    assert metric.bleu_4_fast(["nothing alike here at all"], [["the sky is calm and peaceful"]]) < 0.01
    assert metric.simple_tokens("Don't STOP, café!") == ["don't", "stop", "café"]


def test_unique_share():
    assert metric.unique_share(["a b", "a b ", " c", "d"]) == pytest.approx(3 / 4)
    assert metric.unique_share(["x"] * 4) == pytest.approx(1 / 4)


def test_kl_known_values():
    eps = metric.KL_EPSILON
    # p = (1/2, 1/2, 0...), q = (1/4, 1/4, 1/2, 0...): KL = log 2, up to the epsilon smoothing
    q = [0.25, 0.25, 0.5] + [0] * 6
    expected = math.log(0.5 / ((0.25 + eps) / (1 + 9 * eps)))
    assert metric.emotion_distribution_kl([[1, 1] + [0] * 7], [q]) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(math.log(2), abs=1e-6)
    # the model gives the annotators' only class probability 0: large but finite
    zero = metric.emotion_distribution_kl([[1] + [0] * 8], [[0, 1] + [0] * 7])
    assert zero == pytest.approx(math.log((1 + 9 * eps) / eps), rel=1e-9)
    # identical distributions: 0
    assert metric.emotion_distribution_kl([[1, 3] + [0] * 7], [[0.25, 0.75] + [0] * 7]) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="emotion_scores"):
        metric.emotion_distribution_kl([[1] * 9], [[-1] * 9])


def test_vad_profiles_and_distance():
    table = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1], [-0.5, 0.5, 0.5]], dtype=np.float32)
    np.testing.assert_allclose(metric.vad_profile([1, 2, 3], table), [0.5, 0.5, 0])  # token 3 has no VAD
    assert metric.vad_profile([0, 3], table) is None
    np.testing.assert_allclose(metric.references_vad_profile([[4], [0], [1]], table), [0.5, 0, 0.5])
    assert metric.references_vad_profile([[0], [3]], table) is None
    distance, excluded = metric.vad_distance([[0, 0, 0], [3, 4, 0], None], [[0, 0, 0], [0, 0, 0], [1, 1, 1]])
    assert distance == pytest.approx(2.5) and excluded == 1
    distance, excluded = metric.vad_distance([None], [[1, 1, 1]])
    assert math.isnan(distance) and excluded == 1


# ------------------------------------------------------------------------------------------------ bad inputs
def test_stuck_meteor_is_stopped_with_a_clear_error():
    # A timeout far below METEOR's start-up time stands in for a process that never answers.
    with pytest.raises(RuntimeError, match="did not answer within"):
        metric.meteor_score({0: ["a calm sky"]}, {0: ["the calm sky"]}, timeout=0.05)


def test_missing_java_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(metric.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Java 17"):
        metric.caption_metrics(["a"], [["a"]])


@pytest.mark.parametrize(
    "predictions, references, error, message",
    [
        (["a", "b"], [["a"]], ValueError, "2 predictions but 1"),
        (["a"], ["a string"], TypeError, "list of reference strings"),
        (["a"], [["", "  "]], ValueError, "no non-empty reference"),
        ([None], [["a"]], TypeError, "must be strings"),
    ],
)
def test_caption_input_errors(predictions, references, error, message):
    with pytest.raises(error, match=message):
        metric.caption_metrics(predictions, references)


def test_compute_checks_lengths():
    with pytest.raises(ValueError, match="emotion_histograms"):
        metric.compute_sevlm_metrics(["awe"], ["a"], [["a"]], [])


def test_clean_caption():
    assert metric.clean_caption(" a\u2028b\r\nc ||| d\x85e ") == "a b c d e"
