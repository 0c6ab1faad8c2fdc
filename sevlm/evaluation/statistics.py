"""Uncertainty, slices and paired comparisons of SEVLM evaluations, from per-painting statistics.

The unit of resampling is the painting: ArtEmis samples paintings and collects several annotations for each, so a
painting's annotations are not independent draws. Every metric is recomputed on each resample from the per-painting
statistics the metric module keeps (`sevlm.evaluation.metric`: `painting_statistics`, `metrics_from_statistics`):

- BLEU from summed clipped n-gram matches and lengths, METEOR from summed METEOR 1.5 alignment statistics, ROUGE-L
  and every emotion metric as (weighted) means: identical to a full recomputation on the resample.
- CIDEr-D as the mean of per-painting scores whose idf comes from the whole evaluated set (a full recomputation
  would recount the document frequencies on each resample, with duplicated paintings counted twice).
- `unique` as the mean of 1 / (paintings sharing the explanation) in the set resampled (resampling with replacement
  would otherwise make every painting drawn twice look like a duplicate explanation).

Intervals are percentile bootstrap intervals (95%). A paired comparison draws the same resamples of the paintings
both runs scored for both runs; its two-sided p-value is the share of resampled differences at least as far from
the observed difference as the observed difference is from 0 (the bootstrap distribution shifted to the null),
(1 + count) / (1 + resamples).

    from sevlm.evaluation import statistics
    intervals = statistics.bootstrap_intervals(metric, painting_statistics, num_resamples=1000, seed=42)
"""

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from sevlm.io import check_output_folder, display_path, staged_output, write_json_atomic
from sevlm.names import emotion_key

CONFIDENCE = 0.95
# Resamples drawn and scored together: [block, paintings] draw counts (100 x 7,933 float64 = 6 MB).
RESAMPLE_BLOCK = 100
MIN_SLICE_SIZE = 30
STATISTICS_FILE = "painting_statistics.json"
COMPARISON_FILES = ("comparison.json", "comparison.md")
STATISTICS_FORMAT = 1
INDEX_COLUMNS = ("majority", "predicted", "explanation_emotion", "scored", "explanation_group")

# Report labels and scales: shares and caption scores in percent (as the paper's table), divergences and VAD raw.
METRIC_LABELS = {
    "emotion_accuracy": "ACC (generated emotion vs. majority)",
    "emotion_accuracy_scores": "ACC of the scores' argmax",
    "bleu_1": "BLEU-1",
    "bleu_2": "BLEU-2",
    "bleu_3": "BLEU-3",
    "bleu_4": "BLEU-4",
    "meteor": "METEOR",
    "rouge_l": "ROUGE-L",
    "cider": "CIDEr",
    "emotional_alignment": "EA (emotional alignment)",
    "emotion_explanation_consistency": "Explanation-emotion consistency",
    "unique": "Unique explanations",
    "emotion_distribution_kl": "KL(annotators ‖ scores), nats",
    "emotion_js_divergence": "JS(annotators, scores), nats",
    "emotion_accuracy_any_annotator": "ACC against any annotator",
    "emotion_calibration_error": "ECE of the scores (10 bins)",
    "emotion_macro_f1": "Macro F1 (vs. majority)",
    "vad_distance": "VAD distance",
}
RAW_SCALE = {"emotion_distribution_kl", "emotion_js_divergence", "vad_distance"}


# ---------------------------------------------------------------------------------------------- resampling
def resample_counts(num_paintings, num_resamples, seed, block=RESAMPLE_BLOCK):
    """Bootstrap resamples as blocks of draw counts [rows, num_paintings] (row r: how many times each painting was
    drawn in resample r; each resample draws num_paintings paintings with replacement). One generator seeded with
    `seed` draws them in order, so the same seed gives the same resamples whatever the block size."""
    rng = np.random.default_rng(seed)
    for start in range(0, num_resamples, block):
        rows = min(block, num_resamples - start)
        draws = rng.integers(0, num_paintings, size=(rows, num_paintings))
        draws += np.arange(rows)[:, None] * num_paintings  # row r's draws land in row r's cells
        yield (
            np.bincount(draws.ravel(), minlength=rows * num_paintings).reshape(rows, num_paintings).astype(np.float64)
        )


def bootstrap_distribution(metric, statistics, num_resamples, seed, num_emotions=None, progress=True):
    """{metric key: array [num_resamples]} of every metric recomputed on each resample of the paintings."""
    from tqdm.auto import tqdm

    count = len(statistics["majority"])
    blocks = resample_counts(count, num_resamples, seed)
    parts = [
        metric.metrics_from_statistics(statistics, counts, num_emotions)
        for counts in tqdm(
            blocks,
            total=math.ceil(num_resamples / RESAMPLE_BLOCK),
            desc="Bootstrap",
            unit="block",
            disable=not progress,
        )
    ]
    return {key: np.concatenate([part[key] for part in parts]) for key in metric.STATISTIC_KEYS}


def percentile_interval(values, confidence=CONFIDENCE):
    """[low, high] of the finite values (the percentile bootstrap interval); None when no value is finite (a
    metric without inputs, or one undefined on every resample)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    low, high = np.percentile(finite, [50 * (1 - confidence), 50 * (1 + confidence)])
    return [float(low), float(high)]


def bootstrap_intervals(metric, statistics, num_resamples, seed, num_emotions=None, progress=True):
    """{metric key: [low, high] or None}: 95% percentile bootstrap intervals over paintings."""
    if num_resamples < 1:
        return {}
    distribution = bootstrap_distribution(metric, statistics, num_resamples, seed, num_emotions, progress)
    return {key: percentile_interval(values) for key, values in distribution.items()}


def interval_settings(num_resamples, seed):
    """What metrics.json says about its intervals."""
    return {
        "resamples": num_resamples,
        "seed": seed,
        "confidence": CONFIDENCE,
        "method": "percentile bootstrap",
        "unit": "painting",
        "cider_idf": "held fixed at the full set's",
        "unique": "full-set multiplicities held fixed",
    }


def point_estimates(metric, statistics, num_emotions=None):
    """{metric key: float} on every painting of `statistics` once."""
    return {
        key: float(values[0]) for key, values in metric.metrics_from_statistics(statistics, None, num_emotions).items()
    }


# ------------------------------------------------------------------------------------------------- slices
def read_slice_column(dataset_path, split, column):
    """{painting_id: value as text} of a corpus column with one plain value per painting (art_style, a year, a
    museum, ...). Errors name the columns that can be used."""
    from datasets import ClassLabel, Value

    from sevlm.data.schema import load_corpus

    dataset = load_corpus(dataset_path, [split])[split]
    scalar = [name for name, feature in dataset.features.items() if isinstance(feature, (Value, ClassLabel))]
    if column not in dataset.features:
        raise ValueError(
            f"--slice_by {column}: {dataset_path} (split {split}) has no such column; columns with one "
            f"value per painting: {scalar}."
        )
    if column not in scalar:
        raise ValueError(
            f"--slice_by {column}: the column holds {type(dataset.features[column]).__name__} values, not "
            f"one plain value per painting; use one of {scalar}."
        )
    feature = dataset.features[column]
    columns = dataset.select_columns(["painting_id", column]).to_dict()
    values = [
        feature.int2str(value) if isinstance(feature, ClassLabel) and value is not None else value
        for value in columns[column]
    ]
    return {
        painting_id: "(none)" if value is None else str(value)
        for painting_id, value in zip(columns["painting_id"], values)
    }


def slice_metrics(metric, statistics, values, column, num_resamples, seed, num_emotions=None, min_size=MIN_SLICE_SIZE):
    """Every metric per value of `values` (one text per painting, in the statistics' order), with its painting
    counts and bootstrap intervals (resampled within the slice). Slices under `min_size` paintings are marked
    `"small": true`: their numbers and intervals are shown but are not stable. Largest slices first."""
    from tqdm.auto import tqdm

    groups = {}
    for row, value in enumerate(values):
        groups.setdefault(value, []).append(row)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    slices = []
    for value, rows in tqdm(ordered, desc=f"Slices by {column}", unit="slice", disable=len(ordered) < 2):
        part = metric.subset_statistics(statistics, rows)
        slices.append(
            {
                "value": value,
                "num_paintings": len(rows),
                "num_paintings_with_majority": int((part["majority"] >= 0).sum()),
                "small": len(rows) < min_size,
                "metrics": point_estimates(metric, part, num_emotions),
                "confidence_intervals": bootstrap_intervals(
                    metric, part, num_resamples, seed, num_emotions, progress=False
                ),
            }
        )
    return {"column": column, "min_size": min_size, "resamples": num_resamples, "seed": seed, "slices": slices}


# ----------------------------------------------------------------------------------------- saved statistics
def reference_digest(references):
    """A short fingerprint of a painting's references: two runs of one split must agree on it."""
    return hashlib.blake2b("\n".join(references).encode("utf-8"), digest_size=8).hexdigest()


def save_painting_statistics(
    path, painting_ids, references, statistics, emotions, dataset_path, split, classifier=None
):
    """`painting_statistics.json` of an evaluation: what `--compare` and later slicing need, without the dataset."""
    record = {
        "format": STATISTICS_FORMAT,
        "dataset_path": os.path.abspath(dataset_path),
        "split": split,
        "emotions": list(emotions),
        "emotion_classifier": classifier,
        "painting_ids": list(painting_ids),
        "reference_digests": [reference_digest(refs) for refs in references],
        "columns": {key: np.asarray(values).tolist() for key, values in statistics.items()},
    }
    write_json_atomic(path, record, indent=None)


def load_painting_statistics(run_dir):
    """(record without columns, statistics arrays) of an evaluation output folder; clear errors for folders made
    before the statistics were saved."""
    path = Path(run_dir) / STATISTICS_FILE
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(
            f"--compare: {display_path(run_dir)} is not a folder (pass two sevlm-eval output folders)."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"--compare: {display_path(run_dir)} has no {STATISTICS_FILE} (made by an older sevlm-eval, or not "
            "an evaluation folder). Re-score it: sevlm-eval --predictions_file RUN/predictions.jsonl "
            "--dataset_path DATA --split SPLIT --output_dir NEW_RUN."
        )
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("format") != STATISTICS_FORMAT:
        raise ValueError(
            f"{display_path(path)} has format {record.get('format')!r}; this version reads format {STATISTICS_FORMAT}."
        )
    statistics = {
        key: np.asarray(values, dtype=np.int64 if key in INDEX_COLUMNS else np.float64)
        for key, values in record.pop("columns").items()
    }
    for key in ("bleu", "meteor"):  # keep the 2-D shape of an empty run
        statistics[key] = statistics[key].reshape(len(record["painting_ids"]), -1)
    return record, statistics


# --------------------------------------------------------------------------------------------- comparison
def compare_runs(metric, run_a, run_b, num_resamples, seed, progress=True):
    """Paired comparison of two evaluations of the same split over the paintings both scored: per metric A, B,
    B - A, a paired-bootstrap 95% interval of B - A and a two-sided p-value. Refuses runs of different splits,
    taxonomies or references."""
    from tqdm.auto import tqdm

    record_a, statistics_a = load_painting_statistics(run_a)
    record_b, statistics_b = load_painting_statistics(run_b)
    check_comparable(record_a, record_b, run_a, run_b)
    rows_b = {painting_id: row for row, painting_id in enumerate(record_b["painting_ids"])}
    common = [
        (row, rows_b[painting_id]) for row, painting_id in enumerate(record_a["painting_ids"]) if painting_id in rows_b
    ]
    if not common:
        raise ValueError(f"--compare: {display_path(run_a)} and {display_path(run_b)} scored no painting in common.")
    changed = [
        record_a["painting_ids"][a]
        for a, b in common
        if record_a["reference_digests"][a] != record_b["reference_digests"][b]
    ]
    if changed:
        raise ValueError(
            f"--compare: the references of {len(changed)} shared paintings differ between the runs "
            f"(first: {changed[0]}): they were evaluated on different versions of the data."
        )
    part_a = metric.subset_statistics(statistics_a, [a for a, _ in common])
    part_b = metric.subset_statistics(statistics_b, [b for _, b in common])
    size_a, size_b = len(record_a["emotions"]), len(record_b["emotions"])
    a, b = point_estimates(metric, part_a, size_a), point_estimates(metric, part_b, size_b)
    differences = {key: [] for key in metric.STATISTIC_KEYS}
    blocks = resample_counts(len(common), num_resamples, seed)
    for counts in tqdm(
        blocks,
        total=math.ceil(num_resamples / RESAMPLE_BLOCK),
        desc="Paired bootstrap",
        unit="block",
        disable=not progress or num_resamples < 1,
    ):
        resampled_a = metric.metrics_from_statistics(part_a, counts, size_a)
        resampled_b = metric.metrics_from_statistics(part_b, counts, size_b)
        for key in differences:
            differences[key].append(resampled_b[key] - resampled_a[key])
    metrics = {}
    for key in metric.STATISTIC_KEYS:
        observed = b[key] - a[key]
        values = np.concatenate(differences[key]) if differences[key] else np.zeros(0)
        metrics[key] = {
            "a": a[key],
            "b": b[key],
            "difference": observed,
            "interval": percentile_interval(values) if values.size else None,
            "p_value": paired_p_value(values, observed) if values.size else None,
        }
    return {
        "run_a": display_path(run_a),
        "run_b": display_path(run_b),
        "dataset_path": record_a["dataset_path"],
        "split": record_a["split"],
        "emotions": record_a["emotions"],
        "num_paintings_a": len(record_a["painting_ids"]),
        "num_paintings_b": len(record_b["painting_ids"]),
        "num_common_paintings": len(common),
        "bootstrap": {
            "resamples": num_resamples,
            "seed": seed,
            "confidence": CONFIDENCE,
            "method": "paired percentile bootstrap",
        },
        "metrics": metrics,
        "notes": comparison_notes(record_a, record_b),
    }


def check_comparable(record_a, record_b, run_a, run_b):
    """Refuse runs of different splits or taxonomies, naming what differs."""
    names = f"{display_path(run_a)} and {display_path(run_b)}"
    if record_a["split"] != record_b["split"]:
        raise ValueError(
            f"--compare: {names} are evaluations of different splits ({record_a['split']!r} and "
            f"{record_b['split']!r}); compare runs of the same split."
        )
    taxonomy_a = sorted(emotion_key(name) for name in record_a["emotions"])
    taxonomy_b = sorted(emotion_key(name) for name in record_b["emotions"])
    if taxonomy_a != taxonomy_b:
        raise ValueError(
            f"--compare: {names} use different emotion taxonomies ({record_a['emotions']} and "
            f"{record_b['emotions']}); compare runs on the same corpus."
        )


def comparison_notes(record_a, record_b):
    notes = [
        "CIDEr per painting keeps each run's full-set idf; the other metrics are recomputed exactly on every resample."
    ]
    if record_a["dataset_path"] != record_b["dataset_path"]:
        notes.append(
            f"The runs read the split from different places ({record_a['dataset_path']} and "
            f"{record_b['dataset_path']}); their shared paintings have the same references."
        )
    if record_a.get("emotion_classifier") != record_b.get("emotion_classifier"):
        notes.append(
            "EA and consistency were judged by different text-emotion classifiers "
            f"({record_a.get('emotion_classifier')} and {record_b.get('emotion_classifier')}): their difference "
            "mixes the models with the classifiers."
        )
    return notes


def paired_p_value(differences, observed):
    """Two-sided p-value of "no difference": the share of resampled differences at least as far from the observed
    difference as it is from 0, (1 + count) / (1 + resamples); None when undefined."""
    differences = np.asarray(differences, dtype=np.float64)
    finite = differences[np.isfinite(differences)]
    if not finite.size or not math.isfinite(observed):
        return None
    extreme = int(np.sum(np.abs(finite - observed) >= abs(observed)))
    return (1 + extreme) / (1 + finite.size)


COMPARISON_OWNER = "comparison"


def check_comparison_output(output_dir, overwrite=False):
    """Refuse, naming them, comparison files in `output_dir` that an earlier comparison wrote (unless `overwrite`) or
    that it did not write (always); returns their paths."""
    check_output_folder(output_dir, COMPARISON_OWNER, COMPARISON_FILES, overwrite, "--overwrite", "--output_dir")
    return [Path(output_dir) / name for name in COMPARISON_FILES]


def write_comparison(output_dir, comparison, overwrite=False):
    """comparison.json and comparison.md in `output_dir` (see `check_comparison_output`)."""
    with staged_output(output_dir, COMPARISON_OWNER, COMPARISON_FILES, overwrite, "--overwrite", "--output_dir") as staging:
        write_json_atomic(staging / COMPARISON_FILES[0], comparison)
        (staging / COMPARISON_FILES[1]).write_text(comparison_markdown(comparison), encoding="utf-8")
    return [Path(output_dir) / name for name in COMPARISON_FILES]


# ------------------------------------------------------------------------------------------------- reports
def format_value(key, value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.4f}" if key in RAW_SCALE else f"{100 * value:.1f}"


def format_interval(key, interval):
    return "–" if interval is None else f"[{format_value(key, interval[0])}, {format_value(key, interval[1])}]"


def intervals_markdown(metrics, intervals, settings):
    """The report's table of every metric with its 95% interval."""
    lines = [
        f"Percentile bootstrap over paintings: {settings['resamples']} resamples, seed {settings['seed']}. BLEU, "
        "METEOR, ROUGE-L and the emotion metrics are recomputed exactly on each resample; CIDEr keeps the idf of the "
        "full set and Unique the full set's duplicate counts. Shares in percent. The EA classifier's own accuracy is "
        "a property of the classifier, not of these paintings: it has no interval.",
        "",
        "| Metric | Value | 95% interval |",
        "|---|---:|---:|",
    ]
    for key, interval in intervals.items():
        value = format_value(key, metrics.get(key))
        lines.append(f"| {METRIC_LABELS.get(key, key)} | {value} | {format_interval(key, interval)} |")
    return "\n".join(lines)


def slices_markdown(slices):
    """One row per slice: its counts, then each metric as "value [low, high]"."""
    keys = [key for key in METRIC_LABELS if any(_finite(entry["metrics"].get(key)) for entry in slices["slices"])]
    lines = [
        f"Every metric per value of `{slices['column']}` (shares in percent; 95% bootstrap intervals resampled within "
        f"the slice, {slices['resamples']} resamples). Slices under {slices['min_size']} paintings are marked "
        "*small*: their numbers are shown, not to be trusted. CIDEr keeps the idf of the whole evaluated set.",
        "",
        f"| {slices['column']} | Paintings | With majority | " + " | ".join(METRIC_LABELS[key] for key in keys) + " |",
        "|---|---:|---:|" + "---:|" * len(keys),
    ]
    for entry in slices["slices"]:
        label = f"{entry['value']} (*small*)" if entry["small"] else entry["value"]
        intervals = entry["confidence_intervals"]
        cells = [
            format_value(key, entry["metrics"].get(key))
            + (f" {format_interval(key, intervals.get(key))}" if intervals else "")
            for key in keys
        ]
        lines.append(
            f"| {label} | {entry['num_paintings']} | {entry['num_paintings_with_majority']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def comparison_markdown(comparison):
    settings = comparison["bootstrap"]
    lines = [
        "# SEVLM comparison",
        "",
        f"- A: `{comparison['run_a']}` ({comparison['num_paintings_a']} paintings)",
        f"- B: `{comparison['run_b']}` ({comparison['num_paintings_b']} paintings)",
        f"- Split `{comparison['split']}` of `{comparison['dataset_path']}`; compared over the "
        f"{comparison['num_common_paintings']} paintings both runs scored",
        f"- Paired bootstrap over paintings: {settings['resamples']} resamples, seed {settings['seed']}; p: "
        "two-sided, (1 + resampled differences at least as far from B - A as B - A is from 0) / (1 + resamples)",
        *(f"- Note: {note}" for note in comparison["notes"]),
        "",
        "Shares in percent (differences in percentage points).",
        "",
        "| Metric | A | B | B - A | 95% interval of B - A | p |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, row in comparison["metrics"].items():
        if not (_finite(row["a"]) or _finite(row["b"])):
            continue
        p = "–" if row["p_value"] is None else f"{row['p_value']:.3f}"
        difference = format_value(key, row["difference"])
        if difference != "–" and row["difference"] >= 0:
            difference = "+" + difference
        lines.append(
            f"| {METRIC_LABELS.get(key, key)} | {format_value(key, row['a'])} | {format_value(key, row['b'])} | "
            f"{difference} | {format_interval(key, row['interval'])} | {p} |"
        )
    return "\n".join(lines) + "\n"


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------- calibration
def plot_reliability_diagram(bins, path, title="Reliability of the emotion scores (top class vs. majority)"):
    """Accuracy against mean confidence per confidence bin (`emotion_calibration_bins`), with the diagonal of perfect
    calibration and the number of paintings in each bin."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    from sevlm.io import replace_file

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = bins[0]["high"] - bins[0]["low"]
    filled = [row for row in bins if row["count"]]
    centres = [(row["low"] + row["high"]) / 2 for row in filled]
    accuracy = [row["accuracy"] for row in filled]
    confidence = [row["confidence"] for row in filled]
    top.bar(centres, accuracy, width=width * 0.9, color="tab:blue", edgecolor="black", label="accuracy")
    top.bar(
        centres,
        np.abs(np.subtract(confidence, accuracy)),
        bottom=np.minimum(confidence, accuracy),
        width=width * 0.9,
        fill=False,
        edgecolor="tab:red",
        hatch="//",
        label="gap to mean confidence",
    )
    top.scatter(centres, confidence, color="tab:red", marker="_", s=300, zorder=3, label="mean confidence")
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy (majority emotion)")
    top.set_title(title, fontsize=10)
    top.legend(loc="best", fontsize=8)
    bottom.bar(
        [(row["low"] + row["high"]) / 2 for row in bins],
        [row["count"] for row in bins],
        width=width * 0.9,
        color="gray",
    )
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("confidence (top score)")
    bottom.set_ylabel("paintings")
    figure.tight_layout()
    with replace_file(path, "wb") as handle:
        figure.savefig(handle, dpi=120, format="png")
    plt.close(figure)


__all__ = [
    "bootstrap_distribution",
    "bootstrap_intervals",
    "check_comparison_output",
    "compare_runs",
    "comparison_markdown",
    "interval_settings",
    "intervals_markdown",
    "load_painting_statistics",
    "paired_p_value",
    "percentile_interval",
    "plot_reliability_diagram",
    "point_estimates",
    "read_slice_column",
    "resample_counts",
    "save_painting_statistics",
    "slice_metrics",
    "slices_markdown",
    "write_comparison",
]
