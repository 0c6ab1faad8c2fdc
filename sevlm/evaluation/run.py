"""An evaluation run (`sevlm-eval`): load the split, generate through the one prediction function (or read a
predictions file), score with `sevlm.evaluation.metric`, write metrics.json, predictions.jsonl, report.md,
confusion_matrix.png and eval_args.json."""

import json
import logging
import math
import os
from dataclasses import asdict
from pathlib import Path

from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm import DEMO_CORPUS, DEMO_MODEL
from sevlm.evaluation import metric as sevlm_metric
from sevlm.evaluation import statistics as stats
from sevlm.generation import generation_kwargs as given_generation_kwargs
from sevlm.generation import generation_problems
from sevlm.io import (
    check_output_folder,
    display_path,
    json_safe,
    replace_file,
    staged_output,
    write_json_atomic,
    write_text_atomic,
)
from sevlm.loading import load_model_and_processor, pick_device
from sevlm.names import check_distinct, emotion_key, match_emotion

logger = logging.getLogger("eval_sevlm")

OUTPUT_OWNER = "evaluation"
OUTPUT_FILES = (
    "metrics.json", "predictions.jsonl", "report.md", "confusion_matrix.png", "eval_args.json", stats.STATISTICS_FILE,
    "reliability_diagram.png", "slices.json",
)

# Published ArtEmis v1.0 test results (SEVLM paper, Table 1), in percent: ACC, B1, B2, B3, B4, METEOR, ROUGE-L.
PUBLISHED_ROWS = {
    "NLX-GPT (published, ArtEmis v1.0 test)": (63.6, 53.8, 29.9, 16.3, 9.3, 13.8, 30.3),
    "SEVLM (published, ArtEmis v1.0 test)": (65.6, 54.2, 30.3, 16.4, 9.2, 13.9, 30.4),
}
TABLE_COLUMNS = (
    ("ACC", "emotion_accuracy"),
    ("B1", "bleu_1"),
    ("B2", "bleu_2"),
    ("B3", "bleu_3"),
    ("B4", "bleu_4"),
    ("METEOR", "meteor"),
    ("ROUGE-L", "rouge_l"),
    ("CIDEr", "cider"),
    ("EA", "emotional_alignment"),
    ("Unique", "unique"),
)


def check_arguments(args):
    """Impossible values are argument errors before anything is loaded."""
    problems = []
    if args.batch_size < 1:
        problems.append(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.max_samples is not None and args.max_samples < 1:
        problems.append(f"--max_samples must be at least 1 (leave it out to evaluate every painting), got {args.max_samples}")
    if args.bootstrap < 0:
        problems.append(f"--bootstrap must be 0 (no intervals) or more, got {args.bootstrap}")
    if args.compare is not None and len(args.compare) != 2:
        problems.append(f"--compare takes two evaluation folders (RUN_A RUN_B), got {len(args.compare)}")
    if args.compare is not None and args.slice_by:
        problems.append("--slice_by applies to an evaluation, not to --compare (which compares whole runs)")
    if args.min_slice_size < 1:
        problems.append(f"--min_slice_size must be at least 1, got {args.min_slice_size}")
    problems += [problem.rstrip(".") for problem in generation_problems(args)]
    if problems:
        raise ValueError("; ".join(problems) + ".")


# ------------------------------------------------------------------------------------------------ loading
def load_split(args):
    """The evaluated split as (evaluation view, emotion list): one row per painting with `painting_id`, `image`,
    `references`, `emotion_histogram` (in the list's order)."""
    from sevlm.data.schema import corpus_emotions, load_corpus
    from sevlm.data.views import evaluation_view

    if not os.path.isdir(args.dataset_path):
        hint = " Build the demo corpus first: sevlm-demo-corpus" if args.dataset_path == DEMO_CORPUS else ""
        raise FileNotFoundError(f"No prepared corpus at {display_path(args.dataset_path)}.{hint}")
    dataset = load_corpus(args.dataset_path, [args.split])
    split = dataset[args.split]
    if len(split) == 0:
        others = [name for name in dataset if len(dataset[name])]
        raise ValueError(
            f"The {args.split!r} split of {display_path(args.dataset_path)} holds no paintings: nothing can be scored. "
            f"Evaluate a split that has some (--split {others[0] if others else 'NAME'}), or prepare the corpus again "
            "with a test split (sevlm-prepare --test_size 0.1)."
        )
    if args.max_samples is not None:
        split = split.select(range(min(args.max_samples, len(split))))
    return evaluation_view(split), corpus_emotions(split)


def painting_table(view, emotions):
    """{painting_id: references, histogram, majority emotion} from the evaluation view, without decoding images."""
    metric = sevlm_metric
    columns = view.select_columns(["painting_id", "references", "emotion_histogram"]).to_dict()
    table = {}
    for painting_id, references, histogram in zip(columns["painting_id"], columns["references"], columns["emotion_histogram"]):
        table[painting_id] = {
            "references": list(references),
            "histogram": list(histogram),
            "majority_emotion": metric.majority_emotion(histogram, emotions),
        }
    return table


def check_same_emotions(model_emotions, dataset_emotions, model_name):
    """The model must know exactly the dataset's classes (the order may differ: scores are re-ordered by name)."""
    if {emotion_key(name) for name in model_emotions} != {emotion_key(name) for name in dataset_emotions}:
        raise ValueError(
            f"The model {model_name} predicts {list(model_emotions)} but the dataset's emotions are {list(dataset_emotions)}: "
            "evaluate a model on a corpus of its own taxonomy."
        )


# --------------------------------------------------------------------------------------------- generation
# The paper's decoding, unless flags say otherwise.
PROTOCOL_GENERATION = {"max_new_tokens": 25, "num_beams": 1, "do_sample": False}


def generation_kwargs(args):
    return {**PROTOCOL_GENERATION, **given_generation_kwargs(args)}


def generate_predictions(model, processor, view, emotions, args):
    """Free generation (the paper's protocol: the emotion is the text before "because") and the emotion scores,
    for every painting, through the project's one prediction function."""
    from tqdm.auto import tqdm

    from pipeline_sevlm import predict_batch

    painting_ids = view.select_columns(["painting_id"]).to_dict()["painting_id"]
    images = view.select_columns(["image"])
    rows = []
    for start in tqdm(range(0, len(view), args.batch_size), desc="Generating", unit="batch"):
        results = predict_batch(
            model, processor, images[start : start + args.batch_size]["image"],
            emotion_source="generation", generate_kwargs=generation_kwargs(args),
        )
        for offset, result in enumerate(results):
            rows.append(
                {
                    "painting_id": painting_ids[start + offset],
                    "emotion": result["emotion"],
                    "emotion_scores": _in_order(result["scores"], emotions),
                    "explanation": result["explanation"],
                }
            )
    return rows


def _in_order(scores, emotions):
    """{name: p} with the dataset's names in the dataset's order (matched without regard to case)."""
    keyed = {emotion_key(name): value for name, value in scores.items()}
    return {name: float(keyed[emotion_key(name)]) for name in emotions}


# -------------------------------------------------------------------------------------- predictions file
def read_predictions_file(path, paintings, emotions):
    """Rows of a predictions.jsonl, checked against the dataset split while reading; errors name the line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Predictions file {path} does not exist.")
    rows, seen, empty = [], {}, []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error}).") from error
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}.")
            for key in ("painting_id", "emotion", "explanation"):
                if not isinstance(row.get(key), str):
                    raise ValueError(f"{where}: needs a string {key!r}, got {row.get(key)!r}.")
            painting_id = row["painting_id"]
            if painting_id not in paintings:
                raise ValueError(f"{where}: painting_id {painting_id!r} is not in the evaluated split.")
            if painting_id in seen:
                raise ValueError(f"{where}: painting_id {painting_id!r} already appeared on line {seen[painting_id]}.")
            seen[painting_id] = number
            if not row["explanation"].strip():
                empty.append(number)
            row["emotion_scores"] = scores_from_row(row.get("emotion_scores"), where, emotions)
            rows.append({key: row[key] for key in ("painting_id", "emotion", "emotion_scores", "explanation")})
    if not rows:
        raise ValueError(f"{path} holds no predictions.")
    if empty:
        logger.warning("%s: empty explanations on lines %s; they are scored as empty (0 on every caption metric).", path, empty)
    if len(rows) < len(paintings):
        logger.warning("%s covers %d of the split's %d paintings; only those are scored.", path, len(rows), len(paintings))
    return rows


def scores_from_row(scores, where, emotions):
    """Emotion scores as {name: p} in the dataset's order, from a dict (name -> p) or a list (dataset order); None if
    absent. Every value must be a finite, non-negative number, and they must not all be 0."""
    if scores is None:
        return None
    if isinstance(scores, dict):
        check_distinct(list(scores), f"{where}: emotion_scores")  # "Awe" and "awe" in one row: which one counts?
        keyed = {emotion_key(name): value for name, value in scores.items()}
        unknown = [name for name in scores if match_emotion(name, emotions) is None]
        if unknown:
            raise ValueError(f"{where}: emotion_scores names {unknown}, which are not the corpus's emotions {list(emotions)}.")
        missing = [name for name in emotions if emotion_key(name) not in keyed]
        if missing:
            raise ValueError(f"{where}: emotion_scores lacks {missing}.")
        values = [keyed[emotion_key(name)] for name in emotions]
    elif isinstance(scores, list):
        values = scores
        if len(values) != len(emotions):
            raise ValueError(
                f"{where}: emotion_scores must map the {len(emotions)} emotions to numbers (or list {len(emotions)} numbers "
                f"in the dataset's order {list(emotions)}); got {len(values)} values."
            )
    else:
        raise ValueError(f"{where}: emotion_scores must be an object (emotion -> probability) or a list, got {type(scores).__name__}.")
    for name, value in zip(emotions, values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: emotion_scores[{name!r}] is {value!r}, not a number.")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{where}: emotion_scores[{name!r}] is {value!r}; scores must be finite and non-negative.")
    if not sum(values) > 0:
        raise ValueError(f"{where}: emotion_scores are all 0; they must have a positive sum.")
    return dict(zip(emotions, (float(value) for value in values)))


# ------------------------------------------------------------------------------------------------ scoring
def load_or_train_classifier(args, emotions):
    """(classifier, its folder, its saved training results). Trained on the dataset first when missing."""
    from sevlm.evaluation.classifier import CONFIG_NAME, TextEmotionClassifier, read_results, train_from_dataset

    directory = args.emotion_classifier or os.path.join(args.dataset_path, "emotion_classifier")
    if os.path.isfile(os.path.join(directory, CONFIG_NAME)):
        classifier, results = TextEmotionClassifier.load(directory), read_results(directory)
    else:
        # EA depends on the classifier: say loudly that a new one is being made.
        logger.warning("No emotion classifier at %s: training one on %s (train split) first.", directory, args.dataset_path)
        classifier, results = train_from_dataset(args.dataset_path, directory)
        logger.warning("Emotion classifier trained: validation accuracy %s.", results.get("validation_accuracy"))
    if [emotion_key(name) for name in classifier.labels] != [emotion_key(name) for name in emotions]:
        raise ValueError(
            f"The emotion classifier in {directory} labels {classifier.labels}, but the dataset's emotions are "
            f"{list(emotions)}: train one for this dataset (sevlm-emotion-classifier --dataset_path "
            f"{args.dataset_path} --output_dir NEW_DIR) and pass --emotion_classifier NEW_DIR."
        )
    return classifier, directory, results


def classifier_metrics(results):
    """The classifier's held-out accuracy and chance rate for metrics.json; warns when it is near chance."""
    from sevlm.evaluation.classifier import chance_words, is_near_chance

    accuracy = results.get("validation_accuracy")
    chance = results.get("validation_chance_accuracy")
    if accuracy is None:
        logger.warning("The emotion classifier has no held-out accuracy on record: EA cannot be judged.")
    elif is_near_chance(results):
        logger.warning(
            "The emotion classifier's held-out accuracy %.3f %s: emotional alignment judged by it says little about "
            "the explanations.", accuracy, chance_words(results),
        )
    return {
        "emotion_classifier_accuracy": accuracy if accuracy is not None else math.nan,
        "emotion_classifier_chance_accuracy": chance if chance is not None else math.nan,
    }


def vad_profiles(explanations, references, tokenizer, vad_table, metric):
    """VAD profile of each explanation and the mean profile of its references, from the model's VAD table.

    Texts are tokenised as training tokenises explanations (`processing_sevlm.explanation_ids`)."""
    from processing_sevlm import explanation_ids

    table = vad_table.detach().float().cpu().numpy()
    predicted = [metric.vad_profile(ids, table) for ids in explanation_ids(tokenizer, explanations)]
    referenced = [metric.references_vad_profile(explanation_ids(tokenizer, refs), table) for refs in references]
    return predicted, referenced


def score(rows, paintings, emotions, classifier, metric, model=None, processor=None):
    """All metrics for `rows` (predictions), with the references and histograms of `paintings`."""
    explanations = [row["explanation"] for row in rows]
    references = [paintings[row["painting_id"]]["references"] for row in rows]
    inputs = {
        "predicted_emotions": [row["emotion"] for row in rows],
        "explanations": explanations,
        "references": references,
        "emotion_histograms": [paintings[row["painting_id"]]["histogram"] for row in rows],
        "emotions": tuple(emotions),
        "explanation_emotions": classifier.predict(explanations),
    }
    if all(row["emotion_scores"] is not None for row in rows):
        inputs["emotion_scores"] = [[row["emotion_scores"][name] for name in emotions] for row in rows]
    else:
        logger.warning("Some predictions have no emotion_scores: emotion_accuracy_scores and emotion_distribution_kl are not computed.")
    if model is not None and getattr(model, "vad_table", None) is not None:
        inputs["prediction_vad"], inputs["reference_vad"] = vad_profiles(
            explanations, references, processor.tokenizer, model.vad_table, metric
        )
    else:
        logger.warning("No model VAD table: vad_distance is not computed.")
    metrics, painting_stats = metric.compute_sevlm_metrics(**inputs, return_statistics=True)
    return metrics, inputs["explanation_emotions"], painting_stats


# ------------------------------------------------------------------------------------------------ outputs
def write_predictions(path, rows, paintings, explanation_emotions):
    with replace_file(path) as handle:
        for row, explanation_emotion in zip(rows, explanation_emotions):
            painting = paintings[row["painting_id"]]
            record = {
                "painting_id": row["painting_id"],
                "emotion": row["emotion"],
                "emotion_scores": row["emotion_scores"],
                "explanation": row["explanation"],
                "explanation_emotion": explanation_emotion,
                "majority_emotion": painting["majority_emotion"],
                "references": painting["references"],
            }
            handle.write(json.dumps(json_safe(record), ensure_ascii=False) + "\n")


def confusion_counts(rows, paintings, emotions):
    """KxK counts (rows: majority emotion, columns: predicted emotion) and how many predictions fell outside."""
    index = {emotion_key(name): i for i, name in enumerate(emotions)}
    counts = [[0] * len(emotions) for _ in emotions]
    outside = 0
    for row in rows:
        majority = paintings[row["painting_id"]]["majority_emotion"]
        if majority is None:
            continue
        predicted = index.get(emotion_key(row["emotion"]))
        if predicted is None:
            outside += 1
        else:
            counts[index[emotion_key(majority)]][predicted] += 1
    return counts, outside


def plot_confusion_matrix(counts, outside, emotions, path):
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    labels = list(emotions)
    side = max(5.0, 0.75 * len(labels) + 2.5)
    figure, axes = plt.subplots(figsize=(side + 1, side))
    peak = max(max(row) for row in counts) or 1
    image = axes.imshow(counts, cmap="Blues", vmin=0, vmax=peak)
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            # Dark text on light cells, white on dark ones.
            axes.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black", fontsize=9)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted emotion")
    axes.set_ylabel("majority emotion (annotators)")
    title = f"Paintings with a majority emotion: {sum(map(sum, counts)) + outside}"
    if outside:
        title += f"\n({outside} predictions outside the {len(labels)} classes not shown)"
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    with replace_file(path, "wb") as handle:
        figure.savefig(handle, dpi=120, format="png")
    plt.close(figure)


def _percent(value):
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def is_artemis_shaped(emotions):
    """True for the 9 ArtEmis classes: only then are the paper's published rows a meaningful reference."""
    return [emotion_key(name) for name in emotions] == list(ARTEMIS_EMOTIONS)


def metrics_table(metrics, name, emotions=ARTEMIS_EMOTIONS):
    """Markdown table in the paper's column order; our scores in percent like the published rows (which appear only
    for ArtEmis-shaped data)."""
    lines = [
        "| Model | " + " | ".join(label for label, _ in TABLE_COLUMNS) + " |",
        "|---|" + "---:|" * len(TABLE_COLUMNS),
    ]
    if is_artemis_shaped(emotions):
        for label, values in PUBLISHED_ROWS.items():
            cells = [f"{value:.1f}" for value in values] + ["–"] * (len(TABLE_COLUMNS) - len(values))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(f"| **{name}** | " + " | ".join(_percent(metrics.get(key)) for _, key in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def write_report(path, metrics, args, name, emotions, classifier_dir, settings, slices=None):
    per_emotion = "\n".join(
        f"| {emotion} | {_percent(accuracy)} | {_percent(metrics['per_emotion_precision'][emotion])} | "
        f"{_percent(metrics['per_emotion_f1'][emotion])} |"
        for emotion, accuracy in metrics["per_emotion_accuracy"].items()
    )
    intervals = metrics.get("confidence_intervals")
    settings_of_intervals = metrics.get("confidence_interval_settings")
    uncertainty = (
        f"\n## 95% confidence intervals\n\n{stats.intervals_markdown(metrics, intervals, settings_of_intervals)}\n"
        if intervals else "\nNo confidence intervals (--bootstrap 0).\n"
    )
    sliced = f"\n## Slices by {slices['column']}\n\n" + stats.slices_markdown(slices) + "\n" if slices else ""
    has_bins = metrics["emotion_calibration_bins"] is not None
    reliability = "\n![reliability diagram](reliability_diagram.png)\n" if has_bins else ""
    js = stats.format_value("emotion_js_divergence", metrics["emotion_js_divergence"])
    kl, vad = metrics["emotion_distribution_kl"], metrics["vad_distance"]
    classifier_accuracy = metrics["emotion_classifier_accuracy"]
    classifier_chance = metrics["emotion_classifier_chance_accuracy"]
    from sevlm.evaluation.classifier import chance_words, is_near_chance

    held_out = {"validation_accuracy": classifier_accuracy, "validation_chance_accuracy": classifier_chance}
    near_chance = all(isinstance(value, float) and math.isfinite(value) for value in (classifier_accuracy, classifier_chance))
    warning = (
        f"\n> **Warning:** the EA classifier's held-out accuracy ({_percent(classifier_accuracy)}) "
        f"{chance_words(held_out)}: EA and consistency judged by it say little.\n"
        if near_chance and is_near_chance(held_out) else ""
    )
    comparison = (
        "The published rows are from the SEVLM paper on the real ArtEmis v1.0 test split (official split, preprocessed "
        "text); scores on another corpus or split (such as the demo corpus) are not comparable with them. "
        if is_artemis_shaped(emotions)
        else f"This corpus has its own taxonomy ({', '.join(emotions)}): no published numbers apply to it. "
    )
    text = f"""# SEVLM evaluation

- Model: `{name}`
- Dataset: `{args.dataset_path}`, split `{args.split}`: {metrics['num_paintings']} paintings, \
{metrics['num_paintings_with_majority']} with a majority emotion (accuracy and EA are over those)
- Emotions: {", ".join(emotions)}
- {settings}
- Emotional alignment judged by the text-emotion classifier in `{classifier_dir}` (held-out accuracy \
{_percent(classifier_accuracy)}, chance {_percent(classifier_chance)})
{warning}
All scores in percent. {comparison}EA is only comparable between models judged by the same classifier. Caption
metrics: COCO caption toolkit (PTB tokenizer, BLEU, METEOR 1.5, ROUGE-L, CIDEr-D). ACC: the freely generated emotion
against the annotators' majority; EA: the classifier's label of the generated explanation against that majority.

{metrics_table(metrics, name, emotions)}
{uncertainty}
## Beyond the paper

| Metric | Value |
|---|---:|
| Accuracy of the emotion scores' argmax (what the `art-emotion` pipeline shows) | {_percent(metrics['emotion_accuracy_scores'])} |
| Explanation-emotion consistency (classifier label = the model's own emotion) | {_percent(metrics['emotion_explanation_consistency'])} |
| EA classifier held-out accuracy / chance | {_percent(classifier_accuracy)} / {_percent(classifier_chance)} |
| Emotion-distribution KL (annotators ‖ model, nats) | {"–" if kl is None or math.isnan(kl) else f"{kl:.4f}"} |
| Emotion-distribution JS divergence (annotators, model; nats, at most ln 2) | {js} |
| Accuracy against any annotator's emotion (not only the majority) | \
{_percent(metrics["emotion_accuracy_any_annotator"])} |
| Expected calibration error of the scores' top class vs. the majority (10 equal-width bins) | \
{_percent(metrics["emotion_calibration_error"])} |
| Macro F1 of the generated emotion vs. the majority | {_percent(metrics["emotion_macro_f1"])} |
| VAD distance (explanation vs. references) | {"–" if vad is None or math.isnan(vad) else f"{vad:.4f}"} |
| Pairs left out of the VAD distance (no VAD-bearing token) | {metrics['num_vad_excluded']} |
| Empty explanations | {metrics['num_empty_explanations']} |
| Predicted emotions outside the {len(emotions)} classes | {metrics['num_invalid_emotions']} |

## Per emotion (paintings with a majority emotion)

Recall (= ACC per majority emotion): of the paintings whose majority is the emotion, the share predicted as it;
precision: of the paintings predicted as the emotion, the share whose majority it is.

| Emotion | Recall (ACC) | Precision | F1 |
|---|---:|---:|---:|
{per_emotion}

![confusion matrix](confusion_matrix.png)
{reliability}{sliced}"""
    write_text_atomic(path, text)


# --------------------------------------------------------------------------------------------------- main
def resolve_defaults(args):
    if args.compare:
        if args.output_dir is None:  # outputs/eval/compare/<model>-<split>-vs-<model>-<split>
            labels = ["-".join(Path(run).resolve().parts[-2:]) for run in args.compare]
            args.output_dir = os.path.join("outputs", "eval", "compare", "-vs-".join(labels))
        return args
    if args.predictions_file is None and args.model_name_or_path is None:
        args.model_name_or_path = DEMO_MODEL
    if args.output_dir is None:
        # The folder sevlm-publish looks for: outputs/eval/<name>/<split>.
        source = args.model_name_or_path or os.path.dirname(os.path.abspath(args.predictions_file))
        args.output_dir = os.path.join("outputs", "eval", Path(source).resolve().name, args.split)
    return args


def evaluate_model(args):
    """The whole evaluation for parsed arguments; returns the metrics dict (also written to metrics.json)."""
    from transformers import set_seed

    check_arguments(args)
    # An earlier evaluation is replaced only when asked, only its own files, and only once the new one is complete:
    # checked here, before minutes of generation.
    check_output_folder(args.output_dir, OUTPUT_OWNER, OUTPUT_FILES, args.overwrite, "--overwrite", "--output_dir")
    set_seed(args.seed)
    metric = sevlm_metric
    metric.require_java()  # fail before minutes of generation, not after

    view, emotions = load_split(args)
    paintings = painting_table(view, emotions)
    # A --slice_by column is checked before minutes of generation.
    slice_values = stats.read_slice_column(args.dataset_path, args.split, args.slice_by) if args.slice_by else None
    # A predictions file is checked before any model is loaded: its errors should come at once.
    rows = read_predictions_file(args.predictions_file, paintings, emotions) if args.predictions_file else None
    model = processor = None
    if args.model_name_or_path:
        model, processor = load_model_and_processor(args.model_name_or_path, pick_device(args.device))
        check_same_emotions(model.config.emotions, emotions, args.model_name_or_path)
    if rows is not None:
        settings = f"Predictions read from `{args.predictions_file}`"
    else:
        rows = generate_predictions(model, processor, view, emotions, args)
        settings = "Generation: " + ", ".join(f"{key}={value}" for key, value in generation_kwargs(args).items())
    classifier, classifier_dir, classifier_results = load_or_train_classifier(args, emotions)
    metrics, explanation_emotions, painting_stats = score(rows, paintings, emotions, classifier, metric, model, processor)
    metrics.update(classifier_metrics(classifier_results))
    resampling = (args.bootstrap, args.seed, len(emotions))
    metrics["confidence_intervals"] = stats.bootstrap_intervals(metric, painting_stats, *resampling)
    metrics["confidence_interval_settings"] = stats.interval_settings(args.bootstrap, args.seed)
    slices = None
    if slice_values is not None:
        values = [slice_values[row["painting_id"]] for row in rows]
        slices = stats.slice_metrics(metric, painting_stats, values, args.slice_by, *resampling, args.min_slice_size)

    name = args.predictions_file or args.model_name_or_path
    with staged_output(args.output_dir, OUTPUT_OWNER, OUTPUT_FILES, args.overwrite, "--overwrite", "--output_dir") as staging:
        write_json_atomic(staging / "metrics.json", metrics)
        write_predictions(staging / "predictions.jsonl", rows, paintings, explanation_emotions)
        plot_confusion_matrix(*confusion_counts(rows, paintings, emotions), emotions, staging / "confusion_matrix.png")
        if metrics["emotion_calibration_bins"] is not None:
            stats.plot_reliability_diagram(metrics["emotion_calibration_bins"], staging / "reliability_diagram.png")
        stats.save_painting_statistics(
            staging / stats.STATISTICS_FILE, [row["painting_id"] for row in rows],
            [paintings[row["painting_id"]]["references"] for row in rows], painting_stats, emotions, args.dataset_path,
            args.split, classifier=os.path.abspath(classifier_dir),
        )
        if slices is not None:
            write_json_atomic(staging / "slices.json", slices)
        write_report(staging / "report.md", metrics, args, name, emotions, classifier_dir, settings, slices)
        write_json_atomic(staging / "eval_args.json", asdict(args))
        written = sorted(path.name for path in staging.iterdir())
    print(metrics_table(metrics, name, emotions))
    print(f"\nWrote {', '.join(written)} to {args.output_dir}")
    return metrics


def compare_evaluations(args):
    """--compare RUN_A RUN_B: comparison.json and comparison.md in --output_dir; returns the comparison."""
    check_arguments(args)
    stats.check_comparison_output(args.output_dir, args.overwrite)  # before minutes of resampling
    comparison = stats.compare_runs(sevlm_metric, *args.compare, args.bootstrap, args.seed)
    paths = stats.write_comparison(args.output_dir, comparison, overwrite=args.overwrite)
    print(stats.comparison_markdown(comparison))
    print(f"Wrote {', '.join(str(path) for path in paths)}")
    return comparison
