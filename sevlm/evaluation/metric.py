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

# The VAD profile of a text's token ids is the VAD module's (one definition for the evaluation and the search index).
from sevlm.vad import vad_profile

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
    """Mean KL(annotators' histogram || model's scores), in nats (see `emotion_distribution_kls`)."""
    divergences = emotion_distribution_kls(emotion_histograms, emotion_scores, epsilon)
    return float(np.mean(divergences)) if divergences else math.nan


def emotion_distribution_kls(emotion_histograms, emotion_scores, epsilon=KL_EPSILON):
    """KL(annotators' histogram || model's scores) per painting, in nats.

    The histogram is normalised to sum 1; classes no annotator chose contribute 0 (0 log 0 = 0). The scores get
    `epsilon` added and are renormalised, so a class the annotators chose but the model scored 0 costs a large
    but finite amount instead of infinity.
    """
    return [_kl(p, q) for p, q in _distribution_pairs(emotion_histograms, emotion_scores, epsilon)]


def emotion_js_divergence(emotion_histograms, emotion_scores):
    """Mean Jensen-Shannon divergence between the annotators' histogram and the model's scores, in nats (see
    `emotion_js_divergences`)."""
    divergences = emotion_js_divergences(emotion_histograms, emotion_scores)
    return float(np.mean(divergences)) if divergences else math.nan


def emotion_js_divergences(emotion_histograms, emotion_scores):
    """Jensen-Shannon divergence per painting: (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2, p the annotators'
    histogram and q the model's scores (both normalised), in nats: 0 for equal distributions, ln 2 for disjoint
    ones. Unlike the KL it is symmetric and finite without smoothing (m > 0 wherever p or q is)."""
    divergences = []
    for p, q in _distribution_pairs(emotion_histograms, emotion_scores):
        middle = (p + q) / 2
        divergences.append((_kl(p, middle) + _kl(q, middle)) / 2)
    return divergences


def _distribution_pairs(emotion_histograms, emotion_scores, epsilon=0.0):
    """(histogram, scores) per painting, each normalised to sum 1 (the scores after adding `epsilon`)."""
    for row, (histogram, scores) in enumerate(zip(emotion_histograms, emotion_scores, strict=True)):
        p = _distribution(histogram, row, "emotion_histograms")
        q = _distribution(scores, row, "emotion_scores", epsilon=epsilon)
        if p.shape != q.shape:
            raise ValueError(f"Row {row}: histogram has {p.size} classes but the scores have {q.size}.")
        yield p, q


def _kl(p, q):
    chosen = p > 0  # 0 log 0 = 0
    return float(np.sum(p[chosen] * np.log(p[chosen] / q[chosen])))


def _distribution(values, row, name, epsilon=0.0):
    values = np.asarray(values, dtype=np.float64) + epsilon
    if values.ndim != 1 or np.any(values < 0) or not np.isfinite(values).all() or values.sum() <= 0:
        raise ValueError(f"{name}[{row}] = {values.tolist()} is not a list of non-negative numbers with a positive sum.")
    return values / values.sum()


def emotion_accuracy_any_annotator(predicted_emotions, emotion_histograms, emotions=ARTEMIS_EMOTIONS):
    """Share of paintings whose predicted emotion at least one annotator chose (emotions are subjective: a painting
    with 3 votes for awe and 2 for fear counts fear as right here). Over paintings with at least one annotation;
    NaN when none has one."""
    hits = [hit for hit in any_annotator_hits(predicted_emotions, emotion_histograms, emotions) if hit is not None]
    return float(np.mean(hits)) if hits else math.nan


def any_annotator_hits(predicted_emotions, emotion_histograms, emotions=ARTEMIS_EMOTIONS):
    """Per painting: 1.0 when an annotator chose the predicted emotion, 0.0 when none did (or the name is not one
    of `emotions`), None for a painting without annotations."""
    index = {normalise_emotion(name): i for i, name in enumerate(emotions)}
    hits = []
    for predicted, histogram in zip(predicted_emotions, emotion_histograms, strict=True):
        values = np.asarray(histogram, dtype=np.float64)
        if not values.sum() > 0:
            hits.append(None)
            continue
        chosen = index.get(normalise_emotion(predicted))
        hits.append(float(chosen is not None and values[chosen] > 0))
    return hits


# Expected calibration error: confidences grouped into equal-width bins [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0].
CALIBRATION_BINS = 10


def calibration_bin(confidences, num_bins=CALIBRATION_BINS):
    """The bin of each confidence in [0, 1]: bin b holds [b / num_bins, (b + 1) / num_bins), the last also 1.0."""
    return np.minimum(np.floor(np.asarray(confidences, dtype=np.float64) * num_bins), num_bins - 1).astype(np.int64)


def score_confidences(emotion_scores, emotions=ARTEMIS_EMOTIONS):
    """The top class probability of each painting's scores (normalised to sum 1): the model's confidence in the
    emotion it scores highest (`scored_emotions`)."""
    confidences = []
    for row, scores in enumerate(emotion_scores):
        values = _distribution(scores, row, "emotion_scores")
        if values.size != len(emotions):
            raise ValueError(f"emotion_scores[{row}] has {values.size} values but there are {len(emotions)} emotions.")
        confidences.append(float(values.max()))
    return confidences


def calibration_bins(confidences, correct, num_bins=CALIBRATION_BINS):
    """The reliability table: per confidence bin (`calibration_bin`), its bounds, the number of paintings, their
    mean confidence and their accuracy (None for an empty bin)."""
    confidences, correct = np.asarray(confidences, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    bins = calibration_bin(confidences, num_bins)
    table = []
    for b in range(num_bins):
        members = bins == b
        count = int(members.sum())
        table.append({
            "low": b / num_bins,
            "high": (b + 1) / num_bins,
            "count": count,
            "confidence": float(confidences[members].mean()) if count else None,
            "accuracy": float(correct[members].mean()) if count else None,
        })
    return table


def emotion_calibration_error(emotion_scores, majority_emotions, emotions=ARTEMIS_EMOTIONS, num_bins=CALIBRATION_BINS):
    """Expected calibration error (ECE) of the scores' top class against the annotators' majority emotion, over
    paintings that have one: sum over the `num_bins` equal-width confidence bins of (bin size / paintings) x
    |accuracy in the bin - mean confidence in the bin|. 0 is perfectly calibrated; NaN without a majority."""
    confidences, correct = _calibration_inputs(emotion_scores, majority_emotions, emotions)
    if not confidences:
        return math.nan
    table = calibration_bins(confidences, correct, num_bins)
    total = len(confidences)
    return float(sum(row["count"] / total * abs(row["accuracy"] - row["confidence"]) for row in table if row["count"]))


def _calibration_inputs(emotion_scores, majority_emotions, emotions):
    """(confidences, correct) of the paintings that have a majority emotion."""
    scored = scored_emotions(emotion_scores, emotions)
    confidences = score_confidences(emotion_scores, emotions)
    kept = [
        (confidence, float(normalise_emotion(name) == normalise_emotion(majority)))
        for confidence, name, majority in zip(confidences, scored, majority_emotions, strict=True)
        if majority is not None
    ]
    return [confidence for confidence, _ in kept], [hit for _, hit in kept]


def emotion_precision_recall_f1(predicted_emotions, majority_emotions, emotions=ARTEMIS_EMOTIONS):
    """Per emotion e, over paintings with a majority emotion: precision (of the paintings predicted e, the share
    whose majority is e; NaN when e was never predicted), recall (of the paintings whose majority is e, the share
    predicted e: `per_emotion_accuracy`; NaN without such a painting) and F1 = 2 TP / (2 TP + FP + FN) (NaN when e
    is neither predicted nor a majority). Predictions outside `emotions` count against recall only.

    Returns ({"precision": {e: p}, "recall": {...}, "f1": {...}}, macro F1): the macro F1 averages F1 over the
    emotions that were predicted or are a majority (scikit-learn's convention)."""
    index = {normalise_emotion(name): i for i, name in enumerate(emotions)}
    size = len(emotions)
    confusion = np.zeros((size, size + 1))  # rows: majority; columns: predicted, the last one "outside the classes"
    for predicted, majority in zip(predicted_emotions, majority_emotions, strict=True):
        if majority is not None:
            confusion[index[normalise_emotion(majority)], index.get(normalise_emotion(predicted), size)] += 1
    precision, recall, f1 = _precision_recall_f1(confusion[None])
    table = {
        "precision": dict(zip(emotions, precision[0].tolist())),
        "recall": dict(zip(emotions, recall[0].tolist())),
        "f1": dict(zip(emotions, f1[0].tolist())),
    }
    return table, _macro(f1)[0]


def _precision_recall_f1(confusions):
    """Per-class precision, recall and F1 of confusion matrices [R, K, K + 1] (majority x predicted, the last
    column: predictions outside the classes); NaN where undefined."""
    size = confusions.shape[1]
    true_positives = confusions[:, np.arange(size), np.arange(size)]
    predicted = confusions[:, :, :size].sum(axis=1)
    actual = confusions.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, true_positives / predicted, np.nan)
        recall = np.where(actual > 0, true_positives / actual, np.nan)
        denominator = predicted + actual  # 2 TP + FP + FN
        f1 = np.where(denominator > 0, 2 * true_positives / denominator, np.nan)
    return precision, recall, f1


def _macro(f1):
    """Mean F1 over the defined classes, per row of [R, K]; NaN for a row without any."""
    defined = np.isfinite(f1)
    with np.errstate(invalid="ignore"):
        return np.where(defined.any(axis=1), np.nansum(f1, axis=1) / defined.sum(axis=1), np.nan)


# ------------------------------------------------------------------------------------------------- VAD metric
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
    distances = vad_distances(prediction_vad, reference_vad)
    kept = [distance for distance in distances if distance is not None]
    return (float(np.mean(kept)) if kept else math.nan), len(distances) - len(kept)


def vad_distances(prediction_vad, reference_vad):
    """Euclidean distance of each pair of VAD profiles; None where either side is None."""
    distances = []
    for predicted, reference in zip(prediction_vad, reference_vad, strict=True):
        if predicted is None or reference is None:
            distances.append(None)
        else:
            distances.append(float(np.linalg.norm(np.asarray(predicted, float) - np.asarray(reference, float))))
    return distances


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
    with _running_meteor(timeout, len(tokenized_predictions)) as meteor:
        score, _ = meteor.compute_score(tokenized_references, tokenized_predictions)
    return score


@contextlib.contextmanager
def _running_meteor(timeout, count):
    """pycocoevalcap's METEOR process under a watchdog (see `meteor_score`); its failures become RuntimeErrors."""
    from pycocoevalcap.meteor.meteor import Meteor

    if timeout is None:
        timeout = METEOR_TIMEOUT_BASE + METEOR_TIMEOUT_PER_ITEM * count
    meteor = Meteor()
    timed_out = threading.Event()

    def kill_stuck_process():
        timed_out.set()
        meteor.meteor_p.kill()

    watchdog = threading.Timer(timeout, kill_stuck_process)
    watchdog.start()
    try:
        yield meteor
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


# ------------------------------------------------------------------- caption metrics from per-painting counts
# The corpus caption metrics are sums or means over paintings of per-painting statistics, so they can be recomputed
# for any multiset of paintings (a bootstrap resample, a slice, the paintings two runs share) without re-running the
# Java tools: `caption_statistics` computes the statistics once, `metrics_from_statistics` aggregates them.
#   BLEU: per painting, the test length, the closest reference length and the clipped n-gram matches and n-gram
#         counts (n = 1..4): exact.
#   METEOR: per painting, METEOR 1.5's 23 alignment statistics (what its `SCORE` command returns); the corpus score
#         is computed from their sums as meteor-1.5.jar does (`meteor_from_sums`): exact.
#   ROUGE-L: the mean of per-painting scores: exact.
#   CIDEr(-D): the mean of per-painting scores whose document frequencies (idf) come from the whole evaluated set;
#         a full recomputation on a resample would recount them on the resample, so idf is held fixed here.
BLEU_COLUMNS = 10  # test length, closest reference length, n-grams in the test (n = 1..4), clipped matches (n = 1..4)
METEOR_STATS_LENGTH = 23
# METEOR 1.5's parameters for English as pycocoevalcap runs it (`-l en -norm`, task "default"): alpha, beta, gamma,
# delta, and the weights of its exact, stem, synonym and paraphrase stages.
METEOR_ALPHA, METEOR_BETA, METEOR_GAMMA, METEOR_DELTA = 0.85, 0.20, 0.60, 0.75
METEOR_STAGE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)


def caption_statistics(predictions, references):
    """The caption metrics of `caption_metrics` (the same protocol and numbers, under "scores") together with the
    per-painting statistics they are made of ("bleu" [N, 10], "meteor" [N, 23], "rouge_l" [N], "cider" [N]), from
    ONE PTB tokenisation and ONE METEOR run."""
    predictions, references = _check_caption_inputs(predictions, references)
    if not predictions:
        return {
            "scores": {key: math.nan for key in CAPTION_KEYS},
            "bleu": np.zeros((0, BLEU_COLUMNS)), "meteor": np.zeros((0, METEOR_STATS_LENGTH)),
            "rouge_l": np.zeros(0), "cider": np.zeros(0),
        }
    require_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    tokenized_predictions, tokenized_references = ptb_tokenize(predictions, references)
    with contextlib.redirect_stdout(io.StringIO()):  # BleuScorer prints its length statistics
        bleu, _ = Bleu(4).compute_score(tokenized_references, tokenized_predictions, verbose=0)
    rouge, rouge_items = Rouge().compute_score(tokenized_references, tokenized_predictions)
    cider, cider_items = Cider().compute_score(tokenized_references, tokenized_predictions)
    meteor, meteor_items = meteor_statistics(tokenized_predictions, tokenized_references)
    scores = dict(zip(CAPTION_KEYS[:4], bleu))
    scores.update(meteor=meteor, rouge_l=rouge, cider=cider)
    return {
        "scores": {key: float(value) for key, value in scores.items()},
        "bleu": bleu_counts(tokenized_predictions, tokenized_references),
        "meteor": meteor_items,
        "rouge_l": np.asarray(rouge_items, dtype=np.float64),
        "cider": np.asarray(cider_items, dtype=np.float64),
    }


def bleu_counts(tokenized_predictions, tokenized_references):
    """[N, 10] per painting: test length, closest reference length (BLEU's "closest" rule, as pycocoevalcap's Bleu
    uses), n-grams in the test for n = 1..4, and their clipped matches against the references."""
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    rows = []
    for key in tokenized_predictions:
        counts = cook_test(tokenized_predictions[key][0], cook_refs(tokenized_references[key]), eff="closest")
        rows.append([counts["testlen"], counts["reflen"], *counts["guess"], *counts["correct"]])
    return np.asarray(rows, dtype=np.float64).reshape(-1, BLEU_COLUMNS)


def bleu_from_counts(sums):
    """Corpus BLEU-1..4 [R, 4] from summed `bleu_counts` [R, 10], with pycocoevalcap's smoothing constants."""
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    tiny, small = 1e-15, 1e-9
    test_length, reference_length = sums[:, 0], sums[:, 1]
    guesses, matches = sums[:, 2:6], sums[:, 6:10]
    products = np.cumprod((matches + tiny) / (guesses + small), axis=1)
    bleu = products ** (1.0 / np.arange(1, 5))
    ratio = (test_length + tiny) / (reference_length + small)
    with np.errstate(divide="ignore", over="ignore"):
        brevity = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return bleu * brevity[:, None]


def meteor_statistics(tokenized_predictions, tokenized_references, timeout=None):
    """(corpus METEOR, [N, 23] statistics) from ONE METEOR 1.5 process: each painting is aligned once (`SCORE`),
    then the corpus score is METEOR's own aggregate of those statistics (`EVAL`), exactly as pycocoevalcap's
    `Meteor.compute_score` computes it."""
    lines = []
    with _running_meteor(timeout, len(tokenized_predictions)) as meteor:
        process = meteor.meteor_p
        for key in tokenized_predictions:
            hypothesis = tokenized_predictions[key][0].replace("|||", "").replace("  ", " ")
            request = " ||| ".join(("SCORE", " ||| ".join(tokenized_references[key]), hypothesis))
            process.stdin.write(f"{request}\n".encode())
            process.stdin.flush()
            lines.append(process.stdout.readline().decode().strip())
        process.stdin.write(("EVAL ||| " + " ||| ".join(lines) + "\n").encode())
        process.stdin.flush()
        for _ in lines:
            process.stdout.readline()  # the per-painting scores: recomputed from the statistics when needed
        score = float(process.stdout.readline().strip())
    statistics = np.asarray([[float(value) for value in line.split()] for line in lines], dtype=np.float64)
    if statistics.shape != (len(lines), METEOR_STATS_LENGTH):
        expected = (len(lines), METEOR_STATS_LENGTH)
        raise RuntimeError(f"METEOR returned statistics of shape {statistics.shape}, not {expected}.")
    return score, statistics


def meteor_aggregable(statistics):
    """The per-painting METEOR statistics as METEOR adds them up: a painting matched perfectly (every word of both
    sides matched, in one chunk) adds no chunk to the total."""
    statistics = np.array(statistics, dtype=np.float64).reshape(-1, METEOR_STATS_LENGTH)
    # per stage: test content words, reference content words, test function words, reference function words
    stages = statistics[:, 4:20].reshape(-1, 4, 4)
    test_matches = stages[:, :, 0].sum(axis=1) + stages[:, :, 2].sum(axis=1)
    reference_matches = stages[:, :, 1].sum(axis=1) + stages[:, :, 3].sum(axis=1)
    perfect = (test_matches == statistics[:, 0]) & (reference_matches == statistics[:, 1]) & (statistics[:, 20] == 1)
    statistics[perfect, 20] = 0
    return statistics


def meteor_from_sums(sums):
    """Corpus METEOR [R] from summed `meteor_aggregable` statistics [R, 23] (METEOR 1.5's scoring: weighted
    precision and recall over content and function words, their harmonic mean, and the fragmentation penalty)."""
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    weights, delta = np.asarray(METEOR_STAGE_WEIGHTS), METEOR_DELTA
    test_length, reference_length, test_function, reference_function = sums[:, 0], sums[:, 1], sums[:, 2], sums[:, 3]
    stages = sums[:, 4:20].reshape(-1, 4, 4)
    chunks, test_word_matches, reference_word_matches = sums[:, 20], sums[:, 21], sums[:, 22]
    test_weighted = delta * (test_length - test_function) + (1 - delta) * test_function
    reference_weighted = delta * (reference_length - reference_function) + (1 - delta) * reference_function
    weighted = stages * weights[:, None]  # each stage's matches times the stage's weight
    test_matched = weighted[:, :, 0].sum(axis=1) * delta + weighted[:, :, 2].sum(axis=1) * (1 - delta)
    reference_matched = weighted[:, :, 1].sum(axis=1) * delta + weighted[:, :, 3].sum(axis=1) * (1 - delta)
    test_total = stages[:, :, 0].sum(axis=1) + stages[:, :, 2].sum(axis=1)
    reference_total = stages[:, :, 1].sum(axis=1) + stages[:, :, 3].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = test_matched / test_weighted
        recall = reference_matched / reference_weighted
        f_mean = 1 / ((1 - METEOR_ALPHA) / precision + METEOR_ALPHA / recall)
        everything_in_one_chunk = (test_total == test_length) & (reference_total == reference_length) & (chunks == 1)
        average_matches = (test_word_matches + reference_word_matches) / 2
        fragmentation = np.where(everything_in_one_chunk, 0.0, chunks / average_matches)
        score = f_mean * (1 - METEOR_GAMMA * fragmentation**METEOR_BETA)
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))


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
    return_statistics=False,
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
        emotion_scores: the model's class probabilities in `emotions` order (for `emotion_accuracy_scores`,
            `emotion_distribution_kl`, `emotion_js_divergence` and `emotion_calibration_error`).
        prediction_vad, reference_vad: VAD profiles (3 numbers or None) of each explanation and of its references
            (see `vad_profile` / `references_vad_profile`), for `vad_distance`.
        return_statistics: also return the per-painting statistics every metric is made of (`painting_statistics`),
            for bootstrap intervals, slices and paired comparisons (`metrics_from_statistics`).

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
    captions = caption_statistics(explanations, references) if return_statistics else None
    results.update(captions["scores"] if return_statistics else caption_metrics(explanations, references))
    if explanation_emotions is not None:
        results["emotional_alignment"] = emotional_alignment(explanation_emotions, majorities)
        results["emotion_explanation_consistency"] = emotion_explanation_consistency(predicted_emotions, explanation_emotions)
    else:
        results["emotional_alignment"] = results["emotion_explanation_consistency"] = math.nan
    results["unique"] = unique_share(explanations)
    results.update(_spread_metrics(predicted_emotions, majorities, emotion_histograms, emotion_scores, emotions))
    if prediction_vad is not None and reference_vad is not None:
        results["vad_distance"], results["num_vad_excluded"] = vad_distance(prediction_vad, reference_vad)
    else:
        results["vad_distance"], results["num_vad_excluded"] = math.nan, count
    results["per_emotion_accuracy"] = per_emotion
    table, results["emotion_macro_f1"] = emotion_precision_recall_f1(predicted_emotions, majorities, emotions)
    results.update({f"per_emotion_{name}": values for name, values in table.items()})
    results["num_paintings"] = count
    results["num_paintings_with_majority"] = with_majority
    results["num_empty_explanations"] = sum(not clean_caption(text) for text in explanations)
    results["num_invalid_emotions"] = sum(normalise_emotion(name) not in known for name in predicted_emotions)
    if not return_statistics:
        return results
    with_vad = prediction_vad is not None and reference_vad is not None
    statistics = painting_statistics(
        predicted_emotions, explanations, emotion_histograms, emotions, captions, explanation_emotions, emotion_scores,
        vad_distances(prediction_vad, reference_vad) if with_vad else None,
    )
    return results, statistics


def _spread_metrics(predicted_emotions, majorities, emotion_histograms, emotion_scores, emotions):
    """The metrics of the annotators' spread: KL and JS divergence of the scores from the annotators' histogram,
    accuracy against any annotator, calibration of the scores against the majority (and its reliability table)."""
    results = {}
    if emotion_scores is not None:
        results["emotion_distribution_kl"] = emotion_distribution_kl(emotion_histograms, emotion_scores)
        results["emotion_js_divergence"] = emotion_js_divergence(emotion_histograms, emotion_scores)
    else:
        results["emotion_distribution_kl"] = results["emotion_js_divergence"] = math.nan
    results["emotion_accuracy_any_annotator"] = emotion_accuracy_any_annotator(
        predicted_emotions, emotion_histograms, emotions
    )
    if emotion_scores is not None:
        results["emotion_calibration_error"] = emotion_calibration_error(emotion_scores, majorities, emotions)
        calibration = _calibration_inputs(emotion_scores, majorities, emotions)
        results["emotion_calibration_bins"] = calibration_bins(*calibration)
    else:
        results["emotion_calibration_error"], results["emotion_calibration_bins"] = math.nan, None
    return results


# ----------------------------------------------------------------------------- per-painting statistics, resampled
# The metrics that `metrics_from_statistics` recomputes from `painting_statistics`, in report order.
STATISTIC_KEYS = (
    "emotion_accuracy", "emotion_accuracy_scores", *CAPTION_KEYS, "emotional_alignment",
    "emotion_explanation_consistency", "unique", "emotion_distribution_kl", "emotion_js_divergence",
    "emotion_accuracy_any_annotator", "emotion_calibration_error", "emotion_macro_f1", "vad_distance",
)


def painting_statistics(predicted_emotions, explanations, emotion_histograms, emotions, captions,
                        explanation_emotions=None, emotion_scores=None, vad=None):
    """Per painting, everything the metrics are made of, as arrays of length N (row i: painting i):

    - "majority", "predicted", "explanation_emotion", "scored": class indices (in `emotions`) of the majority
      emotion, the predicted emotion, the classifier's label of the explanation and the scores' argmax; -1 for no
      majority or a name outside the classes.
    - "confidence", "kl", "js": the scores' top probability and their KL / JS divergence from the histogram.
    - "any_annotator": 1 when an annotator chose the predicted emotion, 0 if not, NaN without annotations.
    - "explanation_group": the same number for paintings with the same explanation (surrounding spaces ignored),
      and "unique_weight": 1 / (number of paintings in the group): its mean is `unique_share`. A subset
      (`subset_statistics`) recounts the groups; a resample keeps the weights of the set it resamples (like
      CIDEr's idf), since resampling with replacement would otherwise count every painting drawn twice as a
      duplicate explanation.
    - "vad_distance" (NaN where excluded), and the caption statistics of `caption_statistics`: "bleu" [N, 10],
      "meteor" [N, 23], "rouge_l", "cider".

    Keys whose inputs were not given (explanation_emotion; scored, confidence, kl, js; vad_distance) are absent.
    """
    emotions = tuple(emotions)
    groups = {}
    group = np.asarray([groups.setdefault(text.strip(), len(groups)) for text in explanations], dtype=np.int64)
    statistics = {
        "majority": _class_indices([majority_emotion(h, emotions) for h in emotion_histograms], emotions),
        "predicted": _class_indices(predicted_emotions, emotions),
        "any_annotator": _floats(any_annotator_hits(predicted_emotions, emotion_histograms, emotions)),
        "explanation_group": group,
        "unique_weight": _unique_weights(group),
    }
    for key in ("bleu", "meteor", "rouge_l", "cider"):
        statistics[key] = np.asarray(captions[key], dtype=np.float64)
    if explanation_emotions is not None:
        statistics["explanation_emotion"] = _class_indices(explanation_emotions, emotions)
    if emotion_scores is not None:
        statistics["scored"] = _class_indices(scored_emotions(emotion_scores, emotions), emotions)
        statistics["confidence"] = np.asarray(score_confidences(emotion_scores, emotions), dtype=np.float64)
        statistics["kl"] = np.asarray(emotion_distribution_kls(emotion_histograms, emotion_scores), dtype=np.float64)
        statistics["js"] = np.asarray(emotion_js_divergences(emotion_histograms, emotion_scores), dtype=np.float64)
    if vad is not None:
        statistics["vad_distance"] = _floats(vad)
    return statistics


def subset_statistics(statistics, rows):
    """The statistics of the paintings at `rows` (in that order) as an evaluation of those paintings alone: the
    explanation groups are recounted for `unique` (CIDEr keeps the idf of the set the statistics came from)."""
    rows = np.asarray(rows, dtype=np.int64)
    subset = {key: values[rows] for key, values in statistics.items()}
    if "explanation_group" in subset:
        subset["unique_weight"] = _unique_weights(subset["explanation_group"])
    return subset


def _unique_weights(groups):
    """1 / (paintings in the same explanation group), per painting."""
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse].astype(np.float64)


def _class_indices(names, emotions):
    index = {normalise_emotion(name): i for i, name in enumerate(emotions)}
    found = [index.get(normalise_emotion(name), -1) if name is not None else -1 for name in names]
    return np.asarray(found, dtype=np.int64)


def _floats(values):
    return np.asarray([math.nan if value is None else value for value in values], dtype=np.float64)


def metrics_from_statistics(statistics, weights=None, num_emotions=None, num_bins=CALIBRATION_BINS):
    """Every metric of `STATISTIC_KEYS` recomputed from `painting_statistics`, once per row of `weights` [R, N]
    (how many times each painting counts: a bootstrap resample's draw counts, 0/1 for a subset; None: every
    painting once, which gives the point estimates). Returns {metric: array [R]}; NaN where a metric's paintings
    are absent (no majority in a resample, inputs not given).

    Equal to `compute_sevlm_metrics` on the same paintings, except CIDEr, whose idf stays that of the full set
    (see the note above `BLEU_COLUMNS`). `num_emotions`: the number of classes (default: the largest index seen).
    """
    count = len(statistics["majority"])
    weights = np.ones((1, count)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.shape[1] != count:
        raise ValueError(f"weights have {weights.shape[1]} columns but there are {count} paintings.")
    present = weights.sum(axis=1) > 0
    missing = np.full(len(weights), math.nan)

    def mean(values):
        """Weighted mean over the finite entries of `values`."""
        values = np.asarray(values, dtype=np.float64)
        kept = np.isfinite(values)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weights @ np.where(kept, values, 0.0)) / (weights @ kept.astype(np.float64))

    majority, predicted = statistics["majority"], statistics["predicted"]
    with_majority = majority >= 0

    def against_majority(indices):
        return mean(np.where(with_majority, (indices == majority).astype(np.float64), math.nan))

    results = {"emotion_accuracy": against_majority(predicted)}
    results["emotion_accuracy_scores"] = against_majority(statistics["scored"]) if "scored" in statistics else missing
    bleu = bleu_from_counts(weights @ statistics["bleu"])
    for n in range(4):
        results[f"bleu_{n + 1}"] = np.where(present, bleu[:, n], math.nan)
    meteor = meteor_from_sums(weights @ meteor_aggregable(statistics["meteor"]))
    results["meteor"] = np.where(present, meteor, math.nan)
    results["rouge_l"], results["cider"] = mean(statistics["rouge_l"]), mean(statistics["cider"])
    if "explanation_emotion" in statistics:
        labels = statistics["explanation_emotion"]
        results["emotional_alignment"] = against_majority(labels)
        consistent = (labels == predicted) & (predicted >= 0)  # a name outside the classes matches nothing
        results["emotion_explanation_consistency"] = mean(consistent.astype(np.float64))
    else:
        results["emotional_alignment"] = results["emotion_explanation_consistency"] = missing
    results["unique"] = mean(statistics["unique_weight"])
    results["emotion_distribution_kl"] = mean(statistics["kl"]) if "kl" in statistics else missing
    results["emotion_js_divergence"] = mean(statistics["js"]) if "js" in statistics else missing
    results["emotion_accuracy_any_annotator"] = mean(statistics["any_annotator"])
    if "scored" in statistics:
        hits = (statistics["scored"] == majority).astype(np.float64)
        results["emotion_calibration_error"] = _calibration_error(
            weights, statistics["confidence"], hits, with_majority, num_bins
        )
    else:
        results["emotion_calibration_error"] = missing
    size = num_emotions or max(int(majority.max(initial=-1)), int(predicted.max(initial=-1)), 0) + 1
    results["emotion_macro_f1"] = _macro(_precision_recall_f1(_confusions(weights, majority, predicted, size))[2])
    results["vad_distance"] = mean(statistics["vad_distance"]) if "vad_distance" in statistics else missing
    return results


def _calibration_error(weights, confidences, hits, kept, num_bins):
    """ECE per row of `weights` (see `emotion_calibration_error`)."""
    members = np.eye(num_bins)[calibration_bin(np.where(kept, confidences, 0.0), num_bins)] * kept[:, None]
    counts = weights @ members
    gaps = np.abs(weights @ (members * hits[:, None]) - weights @ (members * confidences[:, None]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return gaps.sum(axis=1) / counts.sum(axis=1)


def _confusions(weights, majority, predicted, size):
    """Weighted confusion matrices [R, K, K + 1] over the paintings with a majority (column K: outside)."""
    cells = np.where(majority >= 0, majority * (size + 1) + np.where(predicted >= 0, predicted, size), -1)
    members = np.zeros((len(cells), size * (size + 1)))
    kept = cells >= 0
    members[np.flatnonzero(kept), cells[kept]] = 1
    return (weights @ members).reshape(-1, size, size + 1)


# ------------------------------------------------------------------------------------------ evaluate module
_DESCRIPTION = """\
The SEVLM / ArtEmis evaluation protocol for affective explanations of artworks (any emotion taxonomy): emotion
accuracy against the annotators' majority emotion, BLEU-1..4 / METEOR / ROUGE-L / CIDEr of the explanation against
all references (COCO caption toolkit), emotional alignment (EA: the explanation's classified emotion against the
annotators' majority), the share of unique explanations, and beyond the paper: the accuracy of the emotion scores'
argmax, the explanation's agreement with the model's own emotion, the KL and Jensen-Shannon divergences between the
annotators' emotion histogram and the model's emotion scores, the accuracy against any annotator's emotion, the
expected calibration error of the scores, per-emotion precision / recall / F1 with their macro F1, and the distance
between VAD profiles.
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
    emotional_alignment, emotion_explanation_consistency, unique, emotion_distribution_kl, emotion_js_divergence,
    emotion_accuracy_any_annotator, emotion_calibration_error (and its reliability table,
    emotion_calibration_bins), vad_distance, per_emotion_accuracy, per_emotion_precision / _recall / _f1,
    emotion_macro_f1 and counts (see the metric card). NaN marks a metric whose inputs were not given.
Examples:
    >>> metric = evaluate.load("sevlm/evaluation/metric.py")
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
