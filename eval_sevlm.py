"""Evaluate a SEVLM model (or a predictions file) on a prepared dataset split with the SEVLM/ArtEmis protocol.

    python eval_sevlm.py                                   # outputs/sevlm-demo on data/demo, split test
    python eval_sevlm.py --model_name_or_path DIR --dataset_path PREPARED --split test --output_dir OUT
    python eval_sevlm.py --predictions_file OUT/predictions.jsonl --dataset_path PREPARED --output_dir OUT2

Writes OUT/metrics.json, OUT/predictions.jsonl, OUT/report.md and OUT/confusion_matrix.png. The metrics
themselves live in metrics/sevlm/sevlm.py (also an `evaluate` module); this script produces their inputs.
"""

import importlib.util
import json
import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from configuration_sevlm import ARTEMIS_EMOTIONS
from dataset_scripts.views import evaluation_view

logger = logging.getLogger("eval_sevlm")

REPO_ROOT = Path(__file__).resolve().parent
METRIC_FILE = REPO_ROOT / "metrics" / "sevlm" / "sevlm.py"
DEMO_MODEL = "outputs/sevlm-demo"
DEMO_DATASET = "data/demo"

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


@dataclass
class EvalArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": f"Saved SEVLM folder or Hub id (loaded with trust_remote_code). Default: {DEMO_MODEL}, unless "
                          "--predictions_file is given (then the model is optional and only supplies the VAD table "
                          "for vad_distance)."},
    )
    dataset_path: str = field(default=DEMO_DATASET, metadata={"help": "Prepared dataset (DatasetDict saved with save_to_disk)."})
    split: str = field(default="test", metadata={"help": "Split to evaluate."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where the four outputs go. Default: outputs/eval/<model or predictions folder name>/<split>."}
    )
    predictions_file: str | None = field(
        default=None,
        metadata={"help": "Score an existing predictions.jsonl (rows with painting_id, emotion, explanation and optional "
                          "emotion_scores) instead of generating. Only the paintings in the file are scored."},
    )
    emotion_classifier: str | None = field(
        default=None,
        metadata={"help": "Text-emotion classifier for emotional alignment (EA). Default: <dataset_path>/emotion_classifier. "
                          "When the folder holds no classifier, one is trained on the dataset's train split and saved there first."},
    )
    batch_size: int = field(default=16, metadata={"help": "Paintings per generation batch."})
    num_beams: int = field(default=1, metadata={"help": "Beam width (1 = greedy, the paper's decoding)."})
    max_new_tokens: int = field(default=25, metadata={"help": "Most tokens generated after the prompt (the paper: 25)."})
    do_sample: bool = field(default=False, metadata={"help": "Sample instead of greedy/beam decoding."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (with --do_sample)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (with --do_sample)."})
    top_k: int = field(default=50, metadata={"help": "Top-k sampling cut-off (with --do_sample)."})
    seed: int = field(default=42, metadata={"help": "Random seed (matters with --do_sample)."})
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate only the first N paintings (quick checks)."})
    device: str | None = field(default=None, metadata={"help": "cuda, mps or cpu. Default: the best one available."})


# ------------------------------------------------------------------------------------------------ loading
def load_metric_module():
    """metrics/sevlm/sevlm.py as a module (it is not a package: it doubles as an `evaluate` metric script)."""
    name = "sevlm_metric"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, METRIC_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_split(args):
    """The evaluated split as dataset_scripts.views' evaluation view: one row per painting with `painting_id`,
    `image`, `references`, `majority_emotion`, `emotion_histogram`."""
    from datasets import load_from_disk

    if not os.path.isdir(args.dataset_path):
        hint = " Build the demo corpus first: python -m dataset_scripts.make_demo_corpus" if args.dataset_path == DEMO_DATASET else ""
        raise FileNotFoundError(f"No prepared dataset at {args.dataset_path}.{hint}")
    dataset = load_from_disk(args.dataset_path)
    if args.split not in dataset:
        raise ValueError(f"{args.dataset_path} has no split {args.split!r}; it has {list(dataset)}.")
    split = dataset[args.split]
    if args.max_samples is not None:
        split = split.select(range(min(args.max_samples, len(split))))
    return evaluation_view(split, ARTEMIS_EMOTIONS)


def painting_table(view):
    """{painting_id: references, histogram, majority emotion} from the evaluation view, without decoding images."""
    columns = view.select_columns(["painting_id", "references", "emotion_histogram", "majority_emotion"]).to_dict()
    table = {}
    for painting_id, references, histogram, majority in zip(
        columns["painting_id"], columns["references"], columns["emotion_histogram"], columns["majority_emotion"]
    ):
        table[painting_id] = {"references": list(references), "histogram": list(histogram), "majority_emotion": majority}
    return table


def pick_device(requested):
    import torch

    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load_model(path, device):
    from transformers import AutoModel, AutoProcessor

    if not os.path.exists(path) and path == DEMO_MODEL:
        raise FileNotFoundError(
            f"No model at {DEMO_MODEL}. Train the demo model first (train_sevlm.py) or pass --model_name_or_path."
        )
    model = AutoModel.from_pretrained(path, trust_remote_code=True).to(device).eval()
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
    return model, processor


# --------------------------------------------------------------------------------------------- generation
def generation_kwargs(args):
    kwargs = {"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams, "do_sample": args.do_sample}
    if args.do_sample:  # the sampling knobs mean nothing (and warn) under greedy/beam decoding
        kwargs.update(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    return kwargs


def generate_predictions(model, processor, view, args, device):
    """Generate `{emotion} because {explanation}` for every painting, plus the model's emotion scores."""
    import torch
    from tqdm.auto import tqdm

    order = _score_order(model.config.emotions)
    kwargs = generation_kwargs(args)
    painting_ids = view.select_columns(["painting_id"]).to_dict()["painting_id"]
    images = view.select_columns(["image"])
    rows = []
    with torch.no_grad():
        for start in tqdm(range(0, len(view), args.batch_size), desc="Generating", unit="batch"):
            batch_images = images[start : start + args.batch_size]["image"]
            pixel_values = processor(images=batch_images)["pixel_values"].to(device, model.dtype)
            # Encode each image once for both generation and emotion scoring.
            image_features = model.get_image_features(pixel_values)
            sequences = model.generate(encoder_hidden_states=image_features, **kwargs)
            scores = model.emotion_scores(encoder_hidden_states=image_features).float().cpu()
            for offset, parsed in enumerate(processor.post_process_generation(sequences)):
                probabilities = scores[offset, order].tolist()
                rows.append(
                    {
                        "painting_id": painting_ids[start + offset],
                        "emotion": parsed["emotion"],
                        "emotion_scores": dict(zip(ARTEMIS_EMOTIONS, probabilities)),
                        "explanation": parsed["explanation"],
                    }
                )
    return rows


def _score_order(model_emotions):
    """Column of each ArtEmis emotion in the model's `emotion_scores` (the model may list its classes differently)."""
    names = [name.lower() for name in model_emotions]
    missing = [name for name in ARTEMIS_EMOTIONS if name not in names]
    if missing:
        raise ValueError(f"The model's emotions {list(model_emotions)} lack {missing}: it cannot be scored on ArtEmis histograms.")
    return [names.index(name) for name in ARTEMIS_EMOTIONS]


# -------------------------------------------------------------------------------------- predictions file
def read_predictions_file(path, paintings):
    """Rows of a predictions.jsonl, checked against the dataset split; errors name the line."""
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
            row["emotion_scores"] = _scores_from_row(row.get("emotion_scores"), where)
            rows.append({key: row[key] for key in ("painting_id", "emotion", "emotion_scores", "explanation")})
    if not rows:
        raise ValueError(f"{path} holds no predictions.")
    if empty:
        logger.warning("%s: empty explanations on lines %s; they are scored as empty (0 on every caption metric).", path, empty)
    if len(rows) < len(paintings):
        logger.warning("%s covers %d of the split's %d paintings; only those are scored.", path, len(rows), len(paintings))
    return rows


def _scores_from_row(scores, where):
    """Emotion scores as a dict in ArtEmis order, from a dict (name -> p) or a list (ArtEmis order); None if absent."""
    if scores is None:
        return None
    if isinstance(scores, dict):
        lowered = {str(name).strip().lower(): value for name, value in scores.items()}
        missing = [name for name in ARTEMIS_EMOTIONS if name not in lowered]
        if missing:
            raise ValueError(f"{where}: emotion_scores lacks {missing}.")
        scores = [lowered[name] for name in ARTEMIS_EMOTIONS]
    if not isinstance(scores, list) or len(scores) != len(ARTEMIS_EMOTIONS) or not all(isinstance(x, (int, float)) for x in scores):
        raise ValueError(f"{where}: emotion_scores must map the 9 emotions to numbers (or list 9 numbers in ArtEmis order).")
    return dict(zip(ARTEMIS_EMOTIONS, scores))


# ------------------------------------------------------------------------------------------------ scoring
def load_or_train_classifier(args):
    from emotion_classifier_sevlm import CONFIG_NAME, TextEmotionClassifier, train_from_dataset

    directory = args.emotion_classifier or os.path.join(args.dataset_path, "emotion_classifier")
    if os.path.isfile(os.path.join(directory, CONFIG_NAME)):
        return TextEmotionClassifier.load(directory), directory
    # EA depends on the classifier: say loudly that a new one is being made.
    logger.warning("No emotion classifier at %s: training one on %s (train split) first.", directory, args.dataset_path)
    classifier, results = train_from_dataset(args.dataset_path, directory)
    logger.warning("Emotion classifier trained: validation accuracy %s.", results.get("validation_accuracy"))
    return classifier, directory


def vad_profiles(explanations, references, tokenizer, vad_table, metric):
    """VAD profile of each explanation and the mean profile of its references, from the model's VAD table.

    Texts are tokenised as the processor does for training (a leading space, no special tokens)."""
    table = vad_table.detach().float().cpu().numpy()

    def token_ids(texts):
        return tokenizer([" " + text.strip() for text in texts], add_special_tokens=False)["input_ids"] if texts else []

    predicted = [metric.vad_profile(ids, table) for ids in token_ids(explanations)]
    referenced = [metric.references_vad_profile(token_ids(refs), table) for refs in references]
    return predicted, referenced


def score(rows, paintings, classifier, metric, model=None, processor=None):
    """All metrics for `rows` (predictions), with the references and histograms of `paintings`."""
    explanations = [row["explanation"] for row in rows]
    references = [paintings[row["painting_id"]]["references"] for row in rows]
    inputs = {
        "predicted_emotions": [row["emotion"] for row in rows],
        "explanations": explanations,
        "references": references,
        "emotion_histograms": [paintings[row["painting_id"]]["histogram"] for row in rows],
        "emotions": ARTEMIS_EMOTIONS,
        "explanation_emotions": classifier.predict(explanations),
    }
    if all(row["emotion_scores"] is not None for row in rows):
        inputs["emotion_scores"] = [[row["emotion_scores"][name] for name in ARTEMIS_EMOTIONS] for row in rows]
    else:
        logger.warning("Some predictions have no emotion_scores: emotion_distribution_kl is not computed.")
    if model is not None and getattr(model, "vad_table", None) is not None:
        inputs["prediction_vad"], inputs["reference_vad"] = vad_profiles(
            explanations, references, processor.tokenizer, model.vad_table, metric
        )
    else:
        logger.warning("No model VAD table: vad_distance is not computed.")
    return metric.compute_sevlm_metrics(**inputs), inputs["explanation_emotions"]


# ------------------------------------------------------------------------------------------------ outputs
def json_safe(value):
    """NaN -> null, numpy scalars -> Python numbers: metrics.json stays strict JSON."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_predictions(path, rows, paintings, explanation_emotions):
    with open(path, "w", encoding="utf-8") as handle:
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


def confusion_counts(rows, paintings):
    """9x9 counts (rows: majority emotion, columns: predicted emotion) and how many predictions fell outside."""
    index = {name: i for i, name in enumerate(ARTEMIS_EMOTIONS)}
    counts = [[0] * len(ARTEMIS_EMOTIONS) for _ in ARTEMIS_EMOTIONS]
    outside = 0
    for row in rows:
        majority = paintings[row["painting_id"]]["majority_emotion"]
        if majority is None:
            continue
        predicted = index.get(row["emotion"].strip().lower())
        if predicted is None:
            outside += 1
        else:
            counts[index[majority]][predicted] += 1
    return counts, outside


def plot_confusion_matrix(counts, outside, path):
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    labels = list(ARTEMIS_EMOTIONS)
    figure, axes = plt.subplots(figsize=(8.5, 7.5))
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
        title += f"\n({outside} predictions outside the 9 classes not shown)"
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _percent(value):
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def metrics_table(metrics, name):
    """Markdown table in the paper's column order; our scores in percent like the published rows."""
    lines = [
        "| Model | " + " | ".join(label for label, _ in TABLE_COLUMNS) + " |",
        "|---|" + "---:|" * len(TABLE_COLUMNS),
    ]
    for label, values in PUBLISHED_ROWS.items():
        cells = [f"{value:.1f}" for value in values] + ["–"] * (len(TABLE_COLUMNS) - len(values))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(f"| **{name}** | " + " | ".join(_percent(metrics[key]) for _, key in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def write_report(path, metrics, args, name, classifier_dir, settings):
    per_emotion = "\n".join(
        f"| {emotion} | {_percent(accuracy)} |" for emotion, accuracy in metrics["per_emotion_accuracy"].items()
    )
    kl, vad = metrics["emotion_distribution_kl"], metrics["vad_distance"]
    text = f"""# SEVLM evaluation

- Model: `{name}`
- Dataset: `{args.dataset_path}`, split `{args.split}`: {metrics['num_paintings']} paintings, \
{metrics['num_paintings_with_majority']} with a majority emotion (accuracy is over those)
- {settings}
- Emotional alignment judged by the text-emotion classifier in `{classifier_dir}`

All scores in percent. The published rows are from the SEVLM paper on the real ArtEmis v1.0 test split; scores on
another corpus (such as the demo corpus) are not comparable with them. EA is only comparable between models judged
by the same classifier. Caption metrics: COCO caption toolkit (PTB tokenizer, BLEU, METEOR 1.5, ROUGE-L, CIDEr-D).

{metrics_table(metrics, name)}

## Beyond the paper

| Metric | Value |
|---|---:|
| Emotion-distribution KL (annotators ‖ model, nats) | {"–" if kl is None or math.isnan(kl) else f"{kl:.4f}"} |
| VAD distance (explanation vs. references) | {"–" if vad is None or math.isnan(vad) else f"{vad:.4f}"} |
| Pairs left out of the VAD distance (no VAD-bearing token) | {metrics['num_vad_excluded']} |
| Empty explanations | {metrics['num_empty_explanations']} |
| Predicted emotions outside the 9 classes | {metrics['num_invalid_emotions']} |

## Accuracy per majority emotion

| Emotion | ACC |
|---|---:|
{per_emotion}

![confusion matrix](confusion_matrix.png)
"""
    Path(path).write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------------- main
def resolve_defaults(args):
    if args.predictions_file is None and args.model_name_or_path is None:
        args.model_name_or_path = DEMO_MODEL
    if args.output_dir is None:
        # Same folder name as publish_sevlm.py looks for: outputs/eval/<name>/<split>.
        source = args.model_name_or_path or os.path.dirname(os.path.abspath(args.predictions_file))
        args.output_dir = os.path.join("outputs", "eval", Path(source).resolve().name, args.split)
    return args


def main(argv=None):
    from transformers import HfArgumentParser, set_seed

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = HfArgumentParser(EvalArguments, description=__doc__.split("\n\n")[0])
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    args = resolve_defaults(args)
    set_seed(args.seed)
    metric = load_metric_module()
    metric.require_java()  # fail before minutes of generation, not after

    view = load_split(args)
    paintings = painting_table(view)
    # A predictions file is checked before any model is loaded: its errors should come at once.
    rows = read_predictions_file(args.predictions_file, paintings) if args.predictions_file else None
    device = pick_device(args.device)
    model = processor = None
    if args.model_name_or_path:
        model, processor = load_model(args.model_name_or_path, device)
    if rows is not None:
        settings = f"Predictions read from `{args.predictions_file}`"
    else:
        rows = generate_predictions(model, processor, view, args, device)
        settings = "Generation: " + ", ".join(f"{key}={value}" for key, value in generation_kwargs(args).items())
    classifier, classifier_dir = load_or_train_classifier(args)
    metrics, explanation_emotions = score(rows, paintings, classifier, metric, model, processor)

    os.makedirs(args.output_dir, exist_ok=True)
    output = Path(args.output_dir)
    with open(output / "metrics.json", "w", encoding="utf-8") as handle:
        json.dump(json_safe(metrics), handle, indent=2)
    write_predictions(output / "predictions.jsonl", rows, paintings, explanation_emotions)
    plot_confusion_matrix(*confusion_counts(rows, paintings), output / "confusion_matrix.png")
    name = args.predictions_file or args.model_name_or_path
    write_report(output / "report.md", metrics, args, name, classifier_dir, settings)
    with open(output / "eval_args.json", "w", encoding="utf-8") as handle:
        json.dump(asdict(args), handle, indent=2)
    print(metrics_table(metrics, name))
    print(f"\nWrote metrics.json, predictions.jsonl, report.md and confusion_matrix.png to {args.output_dir}")
    return metrics


if __name__ == "__main__":
    main()
