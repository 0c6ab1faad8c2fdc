"""SEVLM evaluation protocol: emotion accuracy, COCO caption metrics, emotional alignment, uniqueness, and two
distribution measures (emotion-distribution KL, VAD distance).

Usable two ways, both offline:

    import evaluate
    metric = evaluate.load("path/to/sevlm/evaluation/metric.py")   # or: from sevlm.evaluation import metric
    metric.compute(predictions=explanations, references=reference_lists,
                   predicted_emotions=emotions, emotion_histograms=histograms)

or as plain functions (`compute_sevlm_metrics`, `caption_metrics`, ...) after importing this file.

The caption metrics run the COCO caption toolkit (pycocoevalcap: PTB tokenizer, BLEU-1..4, METEOR 1.5, ROUGE-L,
CIDEr). Its tokenizer and METEOR are Java programs: Java (17) must be on PATH.
"""

import contextlib
import io
import math
import re
import shutil
import threading
from collections import Counter

import datasets
import evaluate
import numpy as np

# The class names and the rule by which two names are one class belong to the model's configuration (installed with
# SEVLM, so `evaluate.load` of this file finds it too).
from configuration_sevlm import ARTEMIS_EMOTIONS, emotion_key

# Added to the model's emotion scores before renormalising them, so the KL divergence stays finite when the model
# gives a class probability 0.
KL_EPSILON = 1e-8

# A painting has a majority emotion when its top share is strictly above one half. The tolerance keeps a 50/50
# split stored as float32 (shares summing to 1.0000001) from passing as a majority; no real majority is that close
# (the nearest share above 1/2 is 1/2 + 1/(2n)).
MAJORITY_SHARE = 0.5
MAJORITY_TOLERANCE = 1e-6


def majority_emotion(histogram, emotions=ARTEMIS_EMOTIONS):
    """The emotion holding strictly more than half of `histogram` (counts or shares, in `emotions` order), else None.

    This is the project's one majority rule (the reference emotion of emotion accuracy and of emotional alignment):
    a share of exactly 0.5 is not a majority, and a tie can never exceed 0.5, so ties give None.
    """
    values = np.asarray(histogram, dtype=np.float64)
    if values.shape != (len(emotions),):
        raise ValueError(f"Histogram {list(histogram)} must hold {len(emotions)} values, one per emotion {list(emotions)}.")
    total = values.sum()
    if not np.isfinite(total) or total <= 0:
        return None  # no annotation, no majority
    top = int(values.argmax())
    if values[top] / total > MAJORITY_SHARE + MAJORITY_TOLERANCE:
        return emotions[top]
    return None


# METEOR normally scores thousands of sentences a second once started; past this the process is taken as stuck.
METEOR_TIMEOUT_BASE = 300.0
METEOR_TIMEOUT_PER_ITEM = 0.1

CAPTION_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")


# --------------------------------------------------------------------------------------------- emotion metrics
def normalise_emotion(name):
    """Class names are compared by `emotion_key` (case, Unicode form, `_` for a space, extra spaces ignored)."""
    return emotion_key(name) if name is not None else None


def emotion_accuracy(predicted_emotions, majority_emotions, emotions=ARTEMIS_EMOTIONS):
    """Accuracy against the majority emotion, over paintings that have one (`majority_emotions[i]` is None otherwise).

    Returns (accuracy, per-emotion accuracy dict, number of paintings with a majority). Accuracies of empty sets
    are NaN: no painting, no number.
    """
    correct, total = Counter(), Counter()
    for predicted, majority in zip(predicted_emotions, majority_emotions, strict=True):
        if majority is None:
            continue
        total[majority] += 1
        correct[majority] += normalise_emotion(predicted) == normalise_emotion(majority)
    kept = sum(total.values())
    accuracy = sum(correct.values()) / kept if kept else math.nan
    per_emotion = {name: correct[name] / total[name] if total[name] else math.nan for name in emotions}
    return accuracy, per_emotion, kept


def emotional_alignment(explanation_emotions, majority_emotions):
    """Emotional alignment (EA) as ArtEmis and SEVLM define it: over paintings that have a majority emotion, the
    share whose generated explanation a text classifier labels as that majority emotion.

    `majority_emotions[i]` is None for a painting without a majority (left out). NaN when no painting has one.
    """
    pairs = [(label, majority) for label, majority in zip(explanation_emotions, majority_emotions, strict=True) if majority is not None]
    if not pairs:
        return math.nan
    return sum(normalise_emotion(label) == normalise_emotion(majority) for label, majority in pairs) / len(pairs)


def emotion_explanation_consistency(predicted_emotions, explanation_emotions):
    """Share of explanations whose emotion (as judged by a text classifier) equals the emotion the model itself
    named, over all paintings. Not the paper's EA (see `emotional_alignment`): it asks whether the explanation
    fits the model's own choice, not the annotators'."""
    pairs = list(zip(predicted_emotions, explanation_emotions, strict=True))
    if not pairs:
        return math.nan
    return sum(normalise_emotion(a) == normalise_emotion(b) for a, b in pairs) / len(pairs)


def scored_emotions(emotion_scores, emotions=ARTEMIS_EMOTIONS):
    """The class with the highest score, per painting (what the `art-emotion` pipeline shows as the emotion)."""
    chosen = []
    for row, scores in enumerate(emotion_scores):
        values = _distribution(scores, row, "emotion_scores")
        if values.size != len(emotions):
            raise ValueError(f"emotion_scores[{row}] has {values.size} values but there are {len(emotions)} emotions.")
        chosen.append(emotions[int(values.argmax())])
    return chosen


def unique_share(explanations):
    """Distinct explanations / all explanations (exact strings, surrounding spaces ignored)."""
    if not explanations:
        return math.nan
    return len({text.strip() for text in explanations}) / len(explanations)


def emotion_distribution_kl(emotion_histograms, emotion_scores, epsilon=KL_EPSILON):
    """Mean KL(annotators' histogram || model's scores), in nats.

    The histogram is normalised to sum 1; classes no annotator chose contribute 0 (0 log 0 = 0). The scores get
    `epsilon` added and are renormalised, so a class the annotators chose but the model scored 0 costs a large
    but finite amount instead of infinity.
    """
    divergences = []
    for row, (histogram, scores) in enumerate(zip(emotion_histograms, emotion_scores, strict=True)):
        p = _distribution(histogram, row, "emotion_histograms")
        q = _distribution(scores, row, "emotion_scores", epsilon=epsilon)
        if p.shape != q.shape:
            raise ValueError(f"Row {row}: histogram has {p.size} classes but the scores have {q.size}.")
        chosen = p > 0
        divergences.append(float(np.sum(p[chosen] * np.log(p[chosen] / q[chosen]))))
    return float(np.mean(divergences)) if divergences else math.nan


def _distribution(values, row, name, epsilon=0.0):
    values = np.asarray(values, dtype=np.float64) + epsilon
    if values.ndim != 1 or np.any(values < 0) or not np.isfinite(values).all() or values.sum() <= 0:
        raise ValueError(f"{name}[{row}] = {values.tolist()} is not a list of non-negative numbers with a positive sum.")
    return values / values.sum()


# ------------------------------------------------------------------------------------------------- VAD metric
def vad_profile(token_ids, vad_table):
    """Mean (valence, arousal, dominance) over the tokens whose row in `vad_table` ([vocab, 3]) is non-zero.

    Tokens without a lexicon entry have an all-zero row and carry no emotion, so they are left out rather than
    pulling the mean to neutral. Returns None when no token has a VAD value.
    """
    table = np.asarray(vad_table, dtype=np.float64)
    rows = table[np.asarray(list(token_ids), dtype=np.int64)].reshape(-1, 3)
    rows = rows[np.any(rows != 0, axis=1)]
    return rows.mean(axis=0) if len(rows) else None


def references_vad_profile(references_token_ids, vad_table):
    """Mean of the references' VAD profiles (references without a profile left out); None when none has one."""
    profiles = [vad_profile(ids, vad_table) for ids in references_token_ids]
    profiles = [profile for profile in profiles if profile is not None]
    return np.mean(profiles, axis=0) if profiles else None


def vad_distance(prediction_vad, reference_vad):
    """Mean Euclidean distance between paired VAD profiles.

    Pairs where either side is None (a text without any VAD-bearing token) are excluded. Returns
    (mean distance, number of excluded pairs); the mean is NaN when every pair is excluded.
    """
    distances, excluded = [], 0
    for predicted, reference in zip(prediction_vad, reference_vad, strict=True):
        if predicted is None or reference is None:
            excluded += 1
            continue
        distances.append(float(np.linalg.norm(np.asarray(predicted, float) - np.asarray(reference, float))))
    return (float(np.mean(distances)) if distances else math.nan), excluded


# --------------------------------------------------------------------------------------------- caption metrics
def require_java():
    """The PTB tokenizer and METEOR are Java programs: fail early and clearly when Java is missing."""
    if shutil.which("java") is None:
        raise RuntimeError(
            "Java was not found on PATH. The COCO caption metrics need Java 17 for PTB tokenisation and METEOR "
            "(e.g. `apt-get install openjdk-17-jre-headless`)."
        )


def clean_caption(text):
    """One line of plain text for the Java tools.

    The PTB tokenizer reads one caption per line and also breaks lines at \\r, \\u2028, \\x85 ..., which would
    silently shift every later caption onto the wrong painting; METEOR's stdin protocol separates fields with
    "|||". Both are turned into spaces.
    """
    if not isinstance(text, str):
        raise TypeError(f"Captions must be strings, got {type(text).__name__}: {text!r}")
    return re.sub(r"\s+", " ", text.replace("|||", " ")).strip()


def caption_metrics(predictions, references):
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr of `predictions` (one string per painting) against `references` (a list
    of strings per painting), with the COCO caption toolkit's protocol: PTB tokenisation (lower-cased,
    punctuation removed), corpus-level BLEU with the closest reference length, METEOR 1.5, ROUGE-L and CIDEr-D.

    Scores are on pycocoevalcap's scale (BLEU in [0, 1]; CIDEr may exceed 1). An empty prediction (or one that is
    all punctuation) is scored as it is: it matches nothing, so it earns 0 on every metric for its painting.
    """
    predictions, references = _check_caption_inputs(predictions, references)
    if not predictions:
        return {key: math.nan for key in CAPTION_KEYS}
    require_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    tokenized_predictions, tokenized_references = ptb_tokenize(predictions, references)
    with contextlib.redirect_stdout(io.StringIO()):  # BleuScorer prints its length statistics
        bleu, _ = Bleu(4).compute_score(tokenized_references, tokenized_predictions, verbose=0)
    rouge, _ = Rouge().compute_score(tokenized_references, tokenized_predictions)
    cider, _ = Cider().compute_score(tokenized_references, tokenized_predictions)
    meteor = meteor_score(tokenized_predictions, tokenized_references)
    scores = dict(zip(CAPTION_KEYS[:4], bleu))
    scores.update(meteor=meteor, rouge_l=rouge, cider=cider)
    return {key: float(value) for key, value in scores.items()}


def _check_caption_inputs(predictions, references):
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions but {len(references)} reference lists.")
    cleaned_references = []
    for row, refs in enumerate(references):
        if isinstance(refs, str):
            raise TypeError(f"references[{row}] is a string; pass a list of reference strings per painting.")
        refs = [clean_caption(ref) for ref in refs]
        if not any(refs):
            raise ValueError(f"references[{row}] holds no non-empty reference explanation.")
        cleaned_references.append([ref for ref in refs if ref])
    return [clean_caption(text) for text in predictions], cleaned_references


def simple_tokens(text):
    """Lower-cased runs of letters, digits and apostrophes: a light stand-in for the PTB tokenizer, without Java."""
    return re.findall(r"[\w']+", text.lower())


def bleu_4_fast(predictions, references):
    """Corpus BLEU-4 with `simple_tokens` instead of the Java PTB tokenizer: the cheap number the training loop
    monitors (`bleu_4_fast`). It tracks `caption_metrics`' `bleu_4` closely but is not the COCO protocol; report
    `bleu_4` from `caption_metrics` (eval_sevlm.py)."""
    from pycocoevalcap.bleu.bleu import Bleu

    predictions, references = list(predictions), list(references)
    if not predictions:
        return math.nan
    candidates = {i: [" ".join(simple_tokens(text)) or "<empty>"] for i, text in enumerate(predictions)}
    refs = {i: [" ".join(simple_tokens(ref)) or "<empty>" for ref in group] for i, group in enumerate(references)}
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(refs, candidates, verbose=0)
    return float(bleu[3])


def ptb_tokenize(predictions, references):
    """Tokenise predictions and references in ONE Java call (the PTB tokenizer works line by line, so this equals
    tokenising them separately as pycocoevalcap's COCOEvalCap does). Returns ({i: [prediction]}, {i: refs})."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    captions = {("prediction", i): [{"caption": text}] for i, text in enumerate(predictions)}
    captions.update({("reference", i): [{"caption": ref} for ref in refs] for i, refs in enumerate(references)})
    try:
        tokenized = PTBTokenizer().tokenize(captions)
    except PermissionError as error:
        raise RuntimeError(
            f"pycocoevalcap's PTB tokenizer writes a temporary file beside its jar and could not: {error}. "
            "Make the pycocoevalcap/tokenizer folder writable (or install pycocoevalcap in a writable environment)."
        ) from error
    for key, items in captions.items():
        if len(tokenized.get(key, ())) != len(items):
            raise RuntimeError(
                "The PTB tokenizer (Java) returned fewer lines than it was given; check that `java -version` "
                "works and reports Java 17."
            )
    tokenized_predictions = {i: tokenized[("prediction", i)] for i in range(len(predictions))}
    tokenized_references = {i: tokenized[("reference", i)] for i in range(len(references))}
    return tokenized_predictions, tokenized_references


def meteor_score(tokenized_predictions, tokenized_references, timeout=None):
    """Corpus METEOR 1.5 from pycocoevalcap's Java process, which is always shut down afterwards.

    A watchdog kills the process after `timeout` seconds (default: 5 minutes plus 0.1 s per painting, far above
    its normal speed) so a stuck METEOR becomes an error instead of a hang.
    """
    from pycocoevalcap.meteor.meteor import Meteor

    if timeout is None:
        timeout = METEOR_TIMEOUT_BASE + METEOR_TIMEOUT_PER_ITEM * len(tokenized_predictions)
    meteor = Meteor()
    timed_out = threading.Event()

    def kill_stuck_process():
        timed_out.set()
        meteor.meteor_p.kill()

    watchdog = threading.Timer(timeout, kill_stuck_process)
    watchdog.start()
    try:
        score, _ = meteor.compute_score(tokenized_references, tokenized_predictions)
    except (ValueError, BrokenPipeError, OSError) as error:
        # The Java process died or was killed mid-answer; pycocoevalcap leaves its lock held in that case, and its
        # __del__ would then wait on it forever.
        meteor.meteor_p.kill()
        if meteor.lock.locked():
            meteor.lock.release()
        if timed_out.is_set():
            raise RuntimeError(f"METEOR (Java, meteor-1.5.jar) did not answer within {timeout:g} s and was stopped.") from error
        message = meteor.meteor_p.stderr.read().decode(errors="replace").strip()
        raise RuntimeError(f"METEOR (Java, meteor-1.5.jar) failed: {message or error}") from error
    finally:
        watchdog.cancel()
        _close_meteor(meteor)
    return score


def _close_meteor(meteor):
    # pycocoevalcap only stops the Java process in __del__; stop it now so no JVM outlives the call.
    process = meteor.meteor_p
    if process.poll() is None:
        process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        try:
            pipe.close()
        except OSError:  # BrokenPipeError: stdin still held unsent bytes for the process that is now gone
            pass


# ---------------------------------------------------------------------------------------------- all together
def compute_sevlm_metrics(
    predicted_emotions,
    explanations,
    references,
    emotion_histograms,
    emotions=ARTEMIS_EMOTIONS,
    explanation_emotions=None,
    emotion_scores=None,
    prediction_vad=None,
    reference_vad=None,
):
    """Every SEVLM metric for one evaluation set (one entry per painting in every list).

    Args:
        predicted_emotions: the emotion the model named, per painting.
        explanations: the model's explanation (the text after "because"), per painting.
        references: all reference explanations of the painting.
        emotion_histograms: the annotators' emotion distribution, in `emotions` order (counts or shares).
        emotions: class names in histogram order (default: the 9 ArtEmis classes).
        explanation_emotions: a text classifier's emotion for each explanation (for `emotional_alignment` and
            `emotion_explanation_consistency`).
        emotion_scores: the model's class probabilities in `emotions` order (for `emotion_accuracy_scores` and
            `emotion_distribution_kl`).
        prediction_vad, reference_vad: VAD profiles (3 numbers or None) of each explanation and of its references
            (see `vad_profile` / `references_vad_profile`), for `vad_distance`.

    Metrics whose optional inputs are not given, and accuracies over empty sets, are NaN.
    """
    emotions = tuple(emotions)
    count = len(explanations)
    for name, values in (("predicted_emotions", predicted_emotions), ("references", references), ("emotion_histograms", emotion_histograms)):
        if len(values) != count:
            raise ValueError(f"Got {count} explanations but {len(values)} {name}.")
    known = {normalise_emotion(name) for name in emotions}
    majorities = [majority_emotion(histogram, emotions) for histogram in emotion_histograms]
    accuracy, per_emotion, with_majority = emotion_accuracy(predicted_emotions, majorities, emotions)

    results = {"emotion_accuracy": accuracy}
    results["emotion_accuracy_scores"] = (
        emotion_accuracy(scored_emotions(emotion_scores, emotions), majorities, emotions)[0]
        if emotion_scores is not None
        else math.nan
    )
    results.update(caption_metrics(explanations, references))
    if explanation_emotions is not None:
        results["emotional_alignment"] = emotional_alignment(explanation_emotions, majorities)
        results["emotion_explanation_consistency"] = emotion_explanation_consistency(predicted_emotions, explanation_emotions)
    else:
        results["emotional_alignment"] = results["emotion_explanation_consistency"] = math.nan
    results["unique"] = unique_share(explanations)
    results["emotion_distribution_kl"] = (
        emotion_distribution_kl(emotion_histograms, emotion_scores) if emotion_scores is not None else math.nan
    )
    if prediction_vad is not None and reference_vad is not None:
        results["vad_distance"], results["num_vad_excluded"] = vad_distance(prediction_vad, reference_vad)
    else:
        results["vad_distance"], results["num_vad_excluded"] = math.nan, count
    results["per_emotion_accuracy"] = per_emotion
    results["num_paintings"] = count
    results["num_paintings_with_majority"] = with_majority
    results["num_empty_explanations"] = sum(not clean_caption(text) for text in explanations)
    results["num_invalid_emotions"] = sum(normalise_emotion(name) not in known for name in predicted_emotions)
    return results


# ------------------------------------------------------------------------------------------ evaluate module
_DESCRIPTION = """\
The SEVLM / ArtEmis evaluation protocol for affective explanations of artworks (any emotion taxonomy): emotion
accuracy against the annotators' majority emotion, BLEU-1..4 / METEOR / ROUGE-L / CIDEr of the explanation against
all references (COCO caption toolkit), emotional alignment (EA: the explanation's classified emotion against the
annotators' majority), the share of unique explanations, and beyond the paper: the accuracy of the emotion scores'
argmax, the explanation's agreement with the model's own emotion, the KL divergence between the annotators' emotion
histogram and the model's emotion scores, and the distance between VAD profiles.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): the generated explanation per painting (the text after "because").
    references (`list[list[str]]`): all reference explanations per painting.
    predicted_emotions (`list[str]`): the predicted emotion per painting. Required.
    emotion_histograms (`list[list[float]]`): the annotators' emotion distribution per painting. Required.
    emotions (`list[str]`, optional): class names in histogram order; defaults to the 9 ArtEmis classes.
    explanation_emotions (`list[str]`, optional): a text classifier's emotion per explanation (EA, consistency).
    emotion_scores (`list[list[float]]`, optional): the model's class probabilities per painting (accuracy of
        their argmax, KL).
    prediction_vad, reference_vad (`list[list[float] | None]`, optional): VAD profiles (VAD distance).
Returns:
    A dict with emotion_accuracy, emotion_accuracy_scores, bleu_1..bleu_4, meteor, rouge_l, cider,
    emotional_alignment, emotion_explanation_consistency, unique, emotion_distribution_kl, vad_distance,
    per_emotion_accuracy and counts (see the metric card). NaN marks a
    metric whose inputs were not given.
Examples:
    >>> metric = evaluate.load("metrics/sevlm")
    >>> results = metric.compute(
    ...     predictions=["the sky is calm"], references=[["the sky is calm and peaceful"]],
    ...     predicted_emotions=["contentment"], emotion_histograms=[[0, 0, 4, 0, 0, 0, 0, 1, 0]])
    >>> results["emotion_accuracy"]
    1.0
"""

_CITATION = """\
@inproceedings{zhang2024sevlm,
  title={Training A Small Emotional Vision Language Model for Visual Art Comprehension},
  author={Zhang, Jing and Zheng, Liang and Wang, Meng and Guo, Dan},
  booktitle={ECCV},
  year={2024}
}
@inproceedings{achlioptas2021artemis,
  title={ArtEmis: Affective Language for Visual Art},
  author={Achlioptas, Panos and Ovsjanikov, Maks and Haydarov, Kilichbek and Elhoseiny, Mohamed and Guibas, Leonidas},
  booktitle={CVPR},
  year={2021}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Sevlm(evaluate.Metric):
    """The SEVLM evaluation protocol as an `evaluate` metric (see `compute_sevlm_metrics`)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
            reference_urls=["https://arxiv.org/abs/2403.11150", "https://github.com/tylin/coco-caption"],
        )

    def _compute(self, predictions, references, predicted_emotions=None, emotion_histograms=None, **kwargs):
        if predicted_emotions is None or emotion_histograms is None:
            raise ValueError(
                "The sevlm metric needs `predicted_emotions` and `emotion_histograms` besides predictions/references; "
                "for caption metrics alone call `caption_metrics` from this module."
            )
        return compute_sevlm_metrics(predicted_emotions, predictions, references, emotion_histograms, **kwargs)
