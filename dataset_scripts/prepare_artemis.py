"""Turn the ArtEmis release and the WikiArt images into a `datasets.DatasetDict` (train / validation / test).

One row per painting:

    painting_id        str         "art_style/painting" (Unicode NFC)
    art_style          str
    painting           str
    image              Image()     JPEG, long side at most --max_image_side, aspect kept
    emotions           list[str]   one per annotation
    explanations       list[str]   aligned with `emotions`
    emotion_histogram  list[float] 9 shares summing to 1, in ARTEMIS_EMOTIONS order
    source             list[str]   per annotation: "v1" or "contrastive"

Usage (see `--help` and the README's Data section):

    python -m dataset_scripts.prepare_artemis --artemis_csv artemis_dataset_release_v0.csv \
        --wikiart_dir wikiart --output_dir data/artemis-v1 [--contrastive_csv Contrastive.csv] [--parquet]

Every annotation or painting left out is counted by reason in `<output_dir>/prepare_report.json`.
"""

import argparse
import csv
import hashlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
from datasets import Dataset, DatasetDict, DatasetInfo, Features, Image, List, NamedSplit, Value
from datasets.table import InMemoryTable, embed_table_storage
from datasets.utils.logging import is_progress_bar_enabled
from PIL import Image as PILImage
from PIL import ImageOps
from tqdm.auto import tqdm

try:
    from configuration_sevlm import ARTEMIS_EMOTIONS
except ImportError:  # run as `python dataset_scripts/prepare_artemis.py`: put the repo root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from configuration_sevlm import ARTEMIS_EMOTIONS

# The split is a pure function of (seed, painting_id): a painting lands in the same split in the v1.0 and the
# v2.0 Combined corpus, whatever else is filtered, so results on the two stay comparable.
SPLIT_SEED = 2021
SPLIT_FRACTIONS = (("train", 0.85), ("validation", 0.05), ("test", 0.10))
MAX_REPETITION = 40
MAX_IMAGE_SIDE = 448
JPEG_QUALITY = 90
MAX_EXAMPLES = 20
PARQUET_SHARD_BYTES = 500 * 2**20
REPORT_NAME = "prepare_report.json"

V1_COLUMNS = ("art_style", "painting", "emotion", "utterance", "repetition")
# Contrastive.csv also has anchor_art_style / anchor_painting (the v1.0 painting it was matched to); the
# annotation itself belongs to art_style/painting, so the anchor is not needed here.
CONTRASTIVE_COLUMNS = ("art_style", "painting", "emotion", "utterance")

FEATURES = Features(
    {
        "painting_id": Value("string"),
        "art_style": Value("string"),
        "painting": Value("string"),
        "image": Image(),
        "emotions": List(Value("string")),
        "explanations": List(Value("string")),
        "emotion_histogram": List(Value("float32"), length=len(ARTEMIS_EMOTIONS)),
        "source": List(Value("string")),
    }
)
TEXT_FEATURES = Features({name: feature for name, feature in FEATURES.items() if name != "image"})

# Why an annotation (or a whole painting) was left out; the report counts each under exactly one reason.
MALFORMED_ROW = "malformed_row"
UNKNOWN_EMOTION = "unknown_emotion"
EMPTY_UTTERANCE = "empty_utterance"
REPETITION_FILTER = "repetition_filter"
NO_VALID_ANNOTATIONS = "no_valid_annotations"
CONTRASTIVE_ONLY = "contrastive_only"
MISSING_IMAGE = "missing_image"
UNREADABLE_IMAGE = "unreadable_image"

EMOTION_NAMES = {name: name for name in ARTEMIS_EMOTIONS}
EMOTION_INDEX = {name: index for index, name in enumerate(ARTEMIS_EMOTIONS)}


# ---------------------------------------------------------------------------------------------- small helpers
def nfc(text):
    """NFC form: WikiArt names come in NFC in v1.0 and NFD in v2.0; one form makes them the same key."""
    return unicodedata.normalize("NFC", text)


def normalize_emotion(text):
    """Canonical class name ("Something_Else " -> "something else"), or None when it is not an ArtEmis class."""
    return EMOTION_NAMES.get(text.strip().lower().replace("_", " "))


def emotion_histogram(emotions):
    """Share of each ARTEMIS_EMOTIONS class among `emotions` (9 floats summing to 1)."""
    counts = [0] * len(ARTEMIS_EMOTIONS)
    for emotion in emotions:
        counts[EMOTION_INDEX[emotion]] += 1
    return [count / len(emotions) for count in counts]


def split_of(painting_id, seed=SPLIT_SEED):
    """The split of a painting: sha256(seed:painting_id) read as a number in [0, 1), cut at 0.85 and 0.90."""
    digest = hashlib.sha256(f"{seed}:{painting_id}".encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    bound = 0.0
    for split, fraction in SPLIT_FRACTIONS:
        bound += fraction
        if position < bound:
            return split
    return SPLIT_FRACTIONS[-1][0]


def progress(iterable, **kwargs):
    """tqdm that follows `datasets.disable_progress_bars()`."""
    return tqdm(iterable, disable=not is_progress_bar_enabled(), mininterval=0.5, **kwargs)


# ----------------------------------------------------------------------------------------------------- report
class PrepareReport:
    """Counts of what was read, kept and dropped (by reason), with the first examples of each drop."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.status = "running"
        self.error = None
        self.annotations_read = Counter()
        self.dropped_annotations = Counter()
        self.dropped_paintings = Counter()
        self.examples = defaultdict(list)
        self.splits = {}

    def drop_annotation(self, reason, example):
        self.dropped_annotations[reason] += 1
        self._remember(reason, example)

    def drop_painting(self, reason, annotation_count, example):
        self.dropped_paintings[reason] += 1
        self.dropped_annotations[reason] += annotation_count
        self._remember(reason, example)

    def _remember(self, reason, example):
        if len(self.examples[reason]) < MAX_EXAMPLES:
            self.examples[reason].append(example)

    def to_dict(self):
        kept_annotations = sum(counts["annotations"] for counts in self.splits.values())
        kept_paintings = sum(counts["paintings"] for counts in self.splits.values())
        return {
            "status": self.status,
            "error": self.error,
            "inputs": self.inputs,
            "annotations": {
                "read": dict(self.annotations_read),
                "kept": kept_annotations,
                "dropped": dict(self.dropped_annotations),
            },
            "paintings": {
                "kept": kept_paintings,
                "dropped": dict(self.dropped_paintings),
            },
            "splits": self.splits,
            "examples": dict(self.examples),
        }

    def write(self, output_dir):
        path = Path(output_dir) / REPORT_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    def summary(self):
        """A few lines for the terminal."""
        data = self.to_dict()
        read = sum(self.annotations_read.values())
        lines = [
            f"Annotations read: {read} ({', '.join(f'{k} {v}' for k, v in sorted(self.annotations_read.items()))})",
            f"Kept: {data['annotations']['kept']} annotations on {data['paintings']['kept']} paintings",
        ]
        for split, counts in self.splits.items():
            lines.append(f"  {split:<10} {counts['paintings']:>7} paintings {counts['annotations']:>8} annotations")
        for reason, count in sorted(self.dropped_annotations.items()):
            paintings = self.dropped_paintings.get(reason, 0)
            lines.append(f"Dropped ({reason}): {count} annotations" + (f", {paintings} paintings" if paintings else ""))
        return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- CSV stage
def read_annotation_rows(path, required_columns):
    """Yield (line_number, art_style, painting, emotion, utterance, repetition) per CSV record; check the header
    first. `repetition` is "" when the file has no such column (it is optional in Contrastive.csv)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file {path} does not exist; check the path given on the command line.")
    # utf-8-sig: a CSV re-saved by a spreadsheet starts with a byte-order mark that would hide the first column.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in required_columns if name not in header]
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {missing}; found {header}. Expected an ArtEmis CSV with columns "
                f"{list(required_columns)} (v1.0: artemis_dataset_release_v0.csv, v2.0: Contrastive.csv)."
            )
        # A column the file lacks reads from the padding cell appended below (always "").
        names = ("art_style", "painting", "emotion", "utterance", "repetition")
        positions = [header.index(name) if name in header else len(header) for name in names]
        width = len(header) + 1
        for fields in progress(reader, desc=f"Reading {path.name}", unit=" rows"):
            fields.extend([""] * (width - len(fields)))
            yield (reader.line_num, *(fields[position] for position in positions))


def new_painting(art_style, painting):
    return {"art_style": art_style, "painting": painting, "emotions": [], "explanations": [], "source": [],
            "repetition": 0}


def collect_paintings(csv_path, source, required_columns, paintings, report):
    """Add the valid annotations of one CSV to `paintings` ({painting_id: entry}); count the invalid ones."""
    name = Path(csv_path).name
    read = 0
    for line, raw_style, raw_painting, raw_emotion, utterance, repetition_text in read_annotation_rows(
        csv_path, required_columns
    ):
        read += 1
        art_style, painting = nfc(raw_style.strip()), nfc(raw_painting.strip())
        where = f"{name} line {line}"
        repetition_text = repetition_text.strip()
        try:
            repetition = int(float(repetition_text)) if repetition_text else 0
        except ValueError:
            repetition = None
        if not art_style or not painting or repetition is None:
            report.drop_annotation(MALFORMED_ROW, f"{where}: art_style={raw_style!r} painting={raw_painting!r} "
                                   f"repetition={repetition_text!r}")
            continue
        painting_id = f"{art_style}/{painting}"
        entry = paintings.get(painting_id)
        if entry is None:
            entry = paintings[painting_id] = new_painting(art_style, painting)
        # Recorded before the other checks: a painting is over the repetition limit whatever its rows hold.
        entry["repetition"] = max(entry["repetition"], repetition)
        emotion = normalize_emotion(raw_emotion)
        if emotion is None:
            report.drop_annotation(UNKNOWN_EMOTION, f"{where}: emotion {raw_emotion!r} ({painting_id})")
            continue
        utterance = utterance.strip()
        if not utterance:
            report.drop_annotation(EMPTY_UTTERANCE, f"{where}: empty utterance ({painting_id})")
            continue
        entry["emotions"].append(emotion)
        entry["explanations"].append(utterance)
        entry["source"].append(source)
    report.annotations_read[source] += read
    return paintings


def filter_paintings(paintings, max_repetition, contrastive_only, report):
    """Drop whole paintings: no valid annotation left, over the repetition limit, or (optionally) one emotion."""
    kept = {}
    for painting_id, entry in paintings.items():
        count = len(entry["emotions"])
        if count == 0:
            report.drop_painting(NO_VALID_ANNOTATIONS, 0, painting_id)
        elif entry["repetition"] > max_repetition:
            report.drop_painting(REPETITION_FILTER, count, f"{painting_id} (repetition {entry['repetition']})")
        elif contrastive_only and len(set(entry["emotions"])) < 2:
            report.drop_painting(CONTRASTIVE_ONLY, count, f"{painting_id} (only {entry['emotions'][0]!r})")
        else:
            kept[painting_id] = entry
    return kept


def content_fingerprint(split, table, params):
    """A fingerprint from the content, so that the same inputs save byte-identical folders (state.json included);
    `Dataset.from_dict` would otherwise draw a random one."""
    digest = hashlib.sha256(json.dumps([split, params], sort_keys=True).encode("utf-8"))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    digest.update(sink.getvalue())
    return digest.hexdigest()[:16]


def build_text_splits(paintings, split_seed, params):
    """{painting_id: entry} -> DatasetDict of the text columns, rows sorted by painting_id within each split."""
    by_split = {split: [] for split, _ in SPLIT_FRACTIONS}
    for painting_id in sorted(paintings):
        by_split[split_of(painting_id, split_seed)].append(painting_id)
    dataset_dict = DatasetDict()
    for split, painting_ids in by_split.items():
        entries = [paintings[painting_id] for painting_id in painting_ids]
        columns = {
            "painting_id": painting_ids,
            "art_style": [entry["art_style"] for entry in entries],
            "painting": [entry["painting"] for entry in entries],
            "emotions": [entry["emotions"] for entry in entries],
            "explanations": [entry["explanations"] for entry in entries],
            "emotion_histogram": [emotion_histogram(entry["emotions"]) for entry in entries],
            "source": [entry["source"] for entry in entries],
        }
        dataset_dict[split] = dataset_from_columns(columns, TEXT_FEATURES, split, params)
    return dataset_dict


def dataset_from_columns(columns, features, split, params):
    """A Dataset of already-encoded columns (strings, floats, image {"bytes", "path"} dicts), with a content
    fingerprint. Straight to Arrow: Dataset.from_dict would run every value through Features.encode_example,
    which takes longer than reading the whole CSV and changes nothing here."""
    table = pa.Table.from_pydict(columns, schema=features.arrow_schema)
    return Dataset(
        InMemoryTable(table),
        info=DatasetInfo(features=features),
        split=NamedSplit(split),
        fingerprint=content_fingerprint(split, table, params),
    )


def build_annotation_table(
    artemis_csv,
    contrastive_csv=None,
    max_repetition=MAX_REPETITION,
    contrastive_only=False,
    split_seed=SPLIT_SEED,
    report=None,
):
    """The CSV stage (no images): read, validate, merge, filter, group by painting and split.

    Returns a DatasetDict with every column but `image`; drops are counted in `report`.
    """
    report = report or PrepareReport({})
    paintings = {}
    collect_paintings(artemis_csv, "v1", V1_COLUMNS, paintings, report)
    if contrastive_csv is not None:
        collect_paintings(contrastive_csv, "contrastive", CONTRASTIVE_COLUMNS, paintings, report)
    paintings = filter_paintings(paintings, max_repetition, contrastive_only, report)
    params = {"max_repetition": max_repetition, "contrastive_only": contrastive_only, "split_seed": split_seed}
    return build_text_splits(paintings, split_seed, params)


# ------------------------------------------------------------------------------------------------ image stage
def index_wikiart_files(wikiart_dir, art_styles):
    """{(style, file name), both NFC: real path} for the style folders named by the annotations.

    Listing each folder once (instead of probing every name variant) finds a file whatever the normal form of its
    name on disk (NFD from a macOS copy or the v2.0 release, NFC elsewhere).
    """
    wikiart_dir = Path(wikiart_dir)
    if not wikiart_dir.is_dir():
        raise FileNotFoundError(
            f"--wikiart_dir {wikiart_dir} is not a folder. Pass the folder that holds one sub-folder per art style "
            "(e.g. wikiart/Impressionism/claude-monet_water-lilies-1916.jpg)."
        )
    style_folders = {nfc(entry.name): entry for entry in os.scandir(wikiart_dir) if entry.is_dir()}
    files = {}
    for style in sorted(art_styles):
        folder = style_folders.get(style)
        if folder is None:
            continue
        # Sorted: if both normal forms of a name exist on disk, the same one wins on every run.
        for entry in sorted(os.scandir(folder.path), key=lambda entry: entry.name, reverse=True):
            files[(style, nfc(entry.name))] = entry.path
    return files


def encode_painting_image(path, max_side, quality=JPEG_QUALITY):
    """Read an image file and return it as JPEG bytes, RGB, long side at most `max_side` (aspect kept).

    Raises OSError / ValueError / SyntaxError / DecompressionBombError for files PIL cannot read in full.
    """
    with PILImage.open(path) as image:
        # For JPEGs, decode at a reduced scale (at least max_side): much faster for large scans.
        image.draft("RGB", (max_side, max_side))
        image = ImageOps.exif_transpose(image)  # scans with an EXIF rotation would be stored on their side
        image = image.convert("RGB")  # decodes the whole file: truncated or corrupt data raise here
    image.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def read_images_batch(batch, max_image_side):
    """`datasets.map` function: image bytes (or an error message) for a batch of resolved image files."""
    images, errors = [], []
    for painting_id, path in zip(batch["painting_id"], batch["image_file"]):
        try:
            images.append({"bytes": encode_painting_image(path, max_image_side), "path": f"{painting_id}.jpg"})
            errors.append("")
        except (OSError, ValueError, SyntaxError, EOFError, PILImage.DecompressionBombError) as error:
            images.append(None)
            errors.append(f"{type(error).__name__}: {error}")
    return {"image": images, "image_error": errors}


def image_problem_message(kind, problems, total):
    """Error text for missing or unreadable images: the count, the first 20, and what to do."""
    listed = "\n  ".join(problems[:MAX_EXAMPLES])
    more = f"\n  ... and {len(problems) - MAX_EXAMPLES} more" if len(problems) > MAX_EXAMPLES else ""
    advice = (
        "Check that --wikiart_dir points at the WikiArt folder (one sub-folder per art style) and that the download "
        f"is complete, or pass --skip_missing_images to drop these paintings (they are counted in {REPORT_NAME})."
    )
    return f"{len(problems)} of {total} paintings have {kind} images:\n  {listed}{more}\n{advice}"


def resolve_image_files(text_splits, wikiart_dir, skip_missing_images, report):
    """Add `image_file` (the real path) to each split; drop or refuse paintings without an image file."""
    styles = {style for dataset in text_splits.values() for style in dataset.unique("art_style")}
    files = index_wikiart_files(wikiart_dir, styles)
    resolved, missing = DatasetDict(), []
    total = sum(len(dataset) for dataset in text_splits.values())
    for split, dataset in text_splits.items():
        paths = [files.get((style, f"{painting}.jpg")) for style, painting in zip(dataset["art_style"], dataset["painting"])]
        absent = [row for row, path in enumerate(paths) if path is None]
        if absent:
            painting_ids = dataset.select(absent)["painting_id"]
            missing.extend(f"{wikiart_dir}/{painting_id}.jpg" for painting_id in painting_ids)
            if skip_missing_images:
                counts = [len(emotions) for emotions in dataset.select(absent)["emotions"]]
                for painting_id, count in zip(painting_ids, counts):
                    report.drop_painting(MISSING_IMAGE, count, f"{wikiart_dir}/{painting_id}.jpg")
            present = [row for row, path in enumerate(paths) if path is not None]
            dataset, paths = dataset.select(present), [paths[row] for row in present]
        resolved[split] = dataset.add_column("image_file", paths)
    if missing and not skip_missing_images:
        raise FileNotFoundError(image_problem_message("missing", sorted(missing), total))
    return resolved


def read_images(resolved, max_image_side, num_proc, skip_missing_images, report, work_dir):
    """Decode, resize and re-encode every image (in parallel); drop or refuse the unreadable ones."""
    features = Features({**resolved["train"].features, "image": Image(), "image_error": Value("string")})
    with_images, unreadable = DatasetDict(), []
    for split, dataset in resolved.items():
        if len(dataset) == 0:  # map() on an empty dataset does not add the new columns
            with_images[split] = Dataset.from_dict({name: [] for name in features}, features=features, split=split)
            continue
        workers = min(num_proc, len(dataset)) if num_proc and num_proc > 1 else None
        dataset = dataset.map(
            read_images_batch,
            batched=True,
            batch_size=32,
            num_proc=workers if workers and workers > 1 else None,
            fn_kwargs={"max_image_side": max_image_side},
            features=features,
            # On disk, not in memory: 80k images are several GB.
            cache_file_name=str(Path(work_dir) / f"{split}.arrow"),
            load_from_cache_file=False,
            desc=f"Reading images ({split})",
        )
        errors = dataset["image_error"]
        bad = [row for row, error in enumerate(errors) if error]
        if bad:
            rows = dataset.select_columns(["painting_id", "image_file", "image_error", "emotions"]).select(bad)
            for row in rows:
                message = f"{row['image_file']}: {row['image_error']}"
                unreadable.append(message)
                if skip_missing_images:
                    report.drop_painting(UNREADABLE_IMAGE, len(row["emotions"]), message)
            dataset = dataset.select([row for row, error in enumerate(errors) if not error])
        with_images[split] = dataset
    if unreadable and not skip_missing_images:
        total = sum(len(dataset) for dataset in resolved.values())
        raise ValueError(image_problem_message("unreadable", unreadable, total))
    return with_images


def finish_splits(with_images, text_fingerprints, max_image_side):
    """Keep the schema's columns in its order, with a fingerprint derived from the text stage's content-based one."""
    finished = DatasetDict()
    for split, dataset in with_images.items():
        fingerprint = hashlib.sha256(f"{text_fingerprints[split]}:{max_image_side}".encode()).hexdigest()[:16]
        dataset = dataset.select_columns(list(FEATURES), new_fingerprint=fingerprint)
        # map(num_proc > 1) concatenates its shards and forgets the split name; restore it so that the saved
        # state.json does not depend on --num_proc.
        dataset._split = NamedSplit(split)
        finished[split] = dataset
    return finished


# --------------------------------------------------------------------------------------------------- parquet
def write_parquet(dataset_dict, hub_dir, shard_bytes=PARQUET_SHARD_BYTES):
    """Write `hub_dir/data/{split}-0000i-of-0000N.parquet` with the image bytes inside, plus a dataset card."""
    data_dir = Path(hub_dir) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    # `load_dataset` refuses a split without rows ("corresponds to no data"): leave empty splits out.
    splits = [split for split, dataset in dataset_dict.items() if len(dataset) > 0]
    written = []
    for split in splits:
        dataset = dataset_dict[split]
        count = max(1, math.ceil(dataset.data.nbytes / shard_bytes))
        for index in range(count):
            shard = dataset.shard(num_shards=count, index=index, contiguous=True)
            # to_parquet writes what the table holds; embedding first guarantees bytes, never local paths.
            shard = shard.with_format("arrow").map(embed_table_storage, batched=True, keep_in_memory=True)
            path = data_dir / f"{split}-{index:05d}-of-{count:05d}.parquet"
            shard.with_format(None).to_parquet(str(path))
            written.append(path)
    card = Path(hub_dir) / "README.md"
    card.write_text(dataset_card(splits), encoding="utf-8")
    return written


def dataset_card(splits):
    config = "\n".join(f"  - split: {split}\n    path: data/{split}-*" for split in splits)
    return (
        "---\nlicense: other\ntask_categories:\n- image-to-text\nconfigs:\n- config_name: default\n  data_files:\n"
        f"{config}\n---\n\n# ArtEmis (prepared for SEVLM)\n\n"
        "One row per WikiArt painting with its ArtEmis emotions and explanations and the 9-way emotion histogram.\n"
        "ArtEmis annotations: https://www.artemisdataset.org/ (research, non-commercial use). WikiArt images are\n"
        "subject to WikiArt's terms. Do not publish this folder where those terms forbid it.\n"
    )


# ------------------------------------------------------------------------------------------------------ entry
def prepare_output_dir(output_dir, overwrite):
    """Create the output folder; replace an earlier result only with `overwrite`."""
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        ours = (output_dir / "dataset_dict.json").exists() or (output_dir / REPORT_NAME).exists()
        if not overwrite:
            raise FileExistsError(
                f"--output_dir {output_dir} is not empty. Pass --overwrite to replace an earlier result, or choose "
                "another --output_dir."
            )
        if not ours:
            raise FileExistsError(
                f"--output_dir {output_dir} is not empty and holds no earlier prepare_artemis result; refusing to "
                "delete it even with --overwrite. Choose an empty or new --output_dir."
            )
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir


def prepare_artemis(
    artemis_csv,
    wikiart_dir,
    output_dir,
    contrastive_csv=None,
    max_repetition=MAX_REPETITION,
    max_image_side=MAX_IMAGE_SIDE,
    contrastive_only=False,
    skip_missing_images=False,
    split_seed=SPLIT_SEED,
    parquet=False,
    num_proc=1,
    overwrite=False,
):
    """Build and save the ArtEmis DatasetDict (see the module docstring); returns it, loaded from `output_dir`.

    Writes `output_dir` (save_to_disk), `output_dir/prepare_report.json` (also when it stops on an error) and,
    with `parquet=True`, `output_dir/hub/` (Parquet shards with embedded images and a dataset card).
    """
    if max_image_side < 1:
        raise ValueError(f"--max_image_side must be a positive number of pixels, got {max_image_side}.")
    output_dir = prepare_output_dir(output_dir, overwrite)
    inputs = {
        "artemis_csv": str(artemis_csv),
        "contrastive_csv": str(contrastive_csv) if contrastive_csv else None,
        "wikiart_dir": str(wikiart_dir),
        "max_repetition": max_repetition,
        "max_image_side": max_image_side,
        "contrastive_only": contrastive_only,
        "skip_missing_images": skip_missing_images,
        "split_seed": split_seed,
        "split_fractions": dict(SPLIT_FRACTIONS),
        "jpeg_quality": JPEG_QUALITY,
    }
    report = PrepareReport(inputs)
    started = time.perf_counter()
    try:
        text_splits = build_annotation_table(
            artemis_csv, contrastive_csv, max_repetition, contrastive_only, split_seed, report
        )
        resolved = resolve_image_files(text_splits, wikiart_dir, skip_missing_images, report)
        # Next to output_dir (same disk), removed afterwards: map() writes the decoded images there first.
        with tempfile.TemporaryDirectory(prefix=".prepare_artemis-", dir=output_dir.parent) as work_dir:
            with_images = read_images(resolved, max_image_side, num_proc, skip_missing_images, report, work_dir)
            text_fingerprints = {split: dataset._fingerprint for split, dataset in text_splits.items()}
            dataset_dict = finish_splits(with_images, text_fingerprints, max_image_side)
            report.splits = {
                split: {"paintings": len(dataset), "annotations": sum(len(e) for e in dataset["emotions"])}
                for split, dataset in dataset_dict.items()
            }
            # save_to_disk writes no data file for an empty split unless asked for one shard (and then cannot load it).
            shards = {split: 1 if len(dataset) == 0 else None for split, dataset in dataset_dict.items()}
            dataset_dict.save_to_disk(str(output_dir), num_shards=shards)
        if parquet:
            write_parquet(DatasetDict.load_from_disk(str(output_dir)), output_dir / "hub")
        report.status = "ok"
    except Exception as error:
        report.status = "failed"
        report.error = f"{type(error).__name__}: {error}"
        raise
    finally:
        report.inputs["seconds"] = round(time.perf_counter() - started, 1)
        path = report.write(output_dir)
        print(report.summary(), file=sys.stderr)
        print(f"Report: {path}", file=sys.stderr)
    return DatasetDict.load_from_disk(str(output_dir))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m dataset_scripts.prepare_artemis",
        description=(
            "Build the ArtEmis DatasetDict for SEVLM (one row per painting: image, emotions, explanations, "
            "emotion_histogram, source), split 85/5/10 by painting, saved with save_to_disk. Every dropped "
            f"annotation is counted by reason in <output_dir>/{REPORT_NAME}."
        ),
    )
    parser.add_argument("--artemis_csv", required=True,
                        help="ArtEmis v1.0 annotations: artemis_dataset_release_v0.csv "
                             "(columns art_style, painting, emotion, utterance, repetition).")
    parser.add_argument("--contrastive_csv", default=None,
                        help="Optional ArtEmis v2.0 Contrastive.csv (extra columns anchor_art_style, anchor_painting). "
                             "Its annotations are added to v1.0 with source 'contrastive': the v2.0 'Combined' corpus.")
    parser.add_argument("--wikiart_dir", required=True,
                        help="WikiArt image root: images at <wikiart_dir>/<art_style>/<painting>.jpg. File names are "
                             "matched whatever their Unicode normal form (NFC or NFD).")
    parser.add_argument("--output_dir", required=True,
                        help="Where to save the DatasetDict (load it with datasets.load_from_disk) and the report.")
    parser.add_argument("--max_repetition", type=int, default=MAX_REPETITION,
                        help="Drop all annotations of paintings whose `repetition` exceeds this (default: %(default)s, "
                             "the SEVLM recipe).")
    parser.add_argument("--max_image_side", type=int, default=MAX_IMAGE_SIDE,
                        help="Shrink images so that the long side is at most this many pixels, aspect kept; smaller "
                             "images are kept at their size (default: %(default)s). Stored as JPEG, quality "
                             f"{JPEG_QUALITY}.")
    parser.add_argument("--contrastive_only", action="store_true",
                        help="Keep only paintings with at least 2 distinct emotions (the contrastive training set).")
    parser.add_argument("--skip_missing_images", action="store_true",
                        help="Drop paintings whose image is missing or unreadable (counted in the report) instead of "
                             "stopping with an error.")
    parser.add_argument("--split_seed", type=int, default=SPLIT_SEED,
                        help="Seed of the split by painting: a painting's split is decided by sha256('<seed>:<painting_id>'), "
                             "so it is the same in every run and in v1.0 and Combined (default: %(default)s).")
    parser.add_argument("--parquet", action="store_true",
                        help="Also write <output_dir>/hub/data/{split}-0000i-of-0000N.parquet with the image bytes "
                             "embedded, plus a dataset card, ready for `huggingface-cli upload --repo-type dataset`.")
    parser.add_argument("--num_proc", type=int, default=1,
                        help="Processes that decode and resize images in parallel (default: %(default)s).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace an earlier result in --output_dir (otherwise a non-empty folder is an error).")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        prepare_artemis(
            artemis_csv=args.artemis_csv,
            wikiart_dir=args.wikiart_dir,
            output_dir=args.output_dir,
            contrastive_csv=args.contrastive_csv,
            max_repetition=args.max_repetition,
            max_image_side=args.max_image_side,
            contrastive_only=args.contrastive_only,
            skip_missing_images=args.skip_missing_images,
            split_seed=args.split_seed,
            parquet=args.parquet,
            num_proc=args.num_proc,
            overwrite=args.overwrite,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
