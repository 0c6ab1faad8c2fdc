"""Prepare a SEVLM corpus of any emotion taxonomy: pictures with (emotion, explanation) annotations -> a
`datasets.DatasetDict` (train / validation / test) with one row per item, saved with `save_to_disk`.

Input, one annotation per row:
- a CSV file (UTF-8, header row) or a JSON Lines file (one object per line), with an image column (a path,
  relative to `--image_dir`, default: the file's folder), an emotion column and an explanation column;
- or an image folder in the Hugging Face `imagefolder` layout: `metadata.csv` or `metadata.jsonl` beside the
  images, whose `file_name` column names each image relative to the folder.

    python -m dataset_scripts.prepare_corpus --input reviews.csv --output_dir data/my-corpus \
        --emotions "delighted,satisfied,disappointed,frustrated"

The schema is `sevlm/data/schema.py` (`emotions` is a list of `ClassLabel` whose names are the corpus's emotion
list in class order; `emotion_histogram` has one share per class in that order). Annotations of one item (by
default: of one image) are grouped into one row; items are split by a hash of their id (`split_items`). Every
annotation or item left out is counted by reason, with examples naming file and line, in
`<output_dir>/prepare_report.json`, and so is every warning (an empty split, a split where no item has a majority
emotion, many classes).

This module also holds what every corpus builder shares: the report, CSV / JSON Lines reading and validation,
grouping, the hash split, the image stage, saving into an output folder (`sevlm.io.staged_output`: only the files an
earlier corpus wrote there are replaced), and Parquet export. `sevlm.data.artemis` (ArtEmis) and `sevlm.data.demo`
(the demo corpora) build on it.
"""

import csv
import functools
import hashlib
import io
import json
import math
import operator
import os
import posixpath
import re
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from datasets import Dataset, DatasetDict, DatasetInfo, Features, Image, NamedSplit, Value
from datasets.table import InMemoryTable, embed_table_storage
from datasets.utils.logging import is_progress_bar_enabled
from PIL import Image as PILImage
from tqdm.auto import tqdm

from processing_sevlm import load_image
from sevlm.data.schema import corpus_features
from sevlm.data.settings import (
    CORPUS_OWNER,
    JPEG_QUALITY,
    MAX_IMAGE_SIDE,
    MAX_READABLE_CLASSES,
    REPORT_NAME,
    SPLIT_SEED,
    TEST_SIZE,
    VALIDATION_SIZE,
)
from sevlm.io import check_new_file, check_output_folder, display_path, listed, staged_output, write_json_atomic
from sevlm.names import EmotionVocabulary

SPLITS = ("train", "validation", "test")
EVALUATED_SPLITS = ("validation", "test")
# The hash split: a pure function of (seed, item id), so an item keeps its split whatever else is added or
# filtered, on every machine (ArtEmis's `--split hash`; `prepare_corpus` with its default sizes gives the same).
SPLIT_FRACTIONS = (("train", 0.85), ("validation", 0.05), ("test", 0.10))
MAX_EXAMPLES = 20
PARQUET_SHARD_BYTES = 500 * 2**20
# A failed run writes its report beside the output folder, never into it: an earlier result stays untouched.
FAILED_REPORT_SUFFIX = ".prepare_report.failed.json"
IMAGE_FOLDER_METADATA = ("metadata.csv", "metadata.jsonl")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
# What a prepared corpus folder holds (`save_to_disk` of a DatasetDict, the report, with --parquet the Hub folder).
CORPUS_FILES = ("dataset_dict.json", *SPLITS, REPORT_NAME)
HUB_FOLDER = "hub"

# Why an annotation (or a whole item) was left out; the report counts each under exactly one reason.
MALFORMED_ROW = "malformed_row"
UNKNOWN_EMOTION = "unknown_emotion"
EMPTY_EXPLANATION = "empty_explanation"
DUPLICATE_ANNOTATION = "duplicate_annotation"
IMAGE_CONFLICT = "image_conflict"
NO_VALID_ANNOTATIONS = "no_valid_annotations"
MISSING_IMAGE = "missing_image"
UNREADABLE_IMAGE = "unreadable_image"


# ---------------------------------------------------------------------------------------------- small helpers
def nfc(text):
    """NFC form: the same name may come in NFC from one source and NFD from another; one form makes one key."""
    return unicodedata.normalize("NFC", text)


def progress(iterable, **kwargs):
    """tqdm that follows `datasets.disable_progress_bars()`."""
    return tqdm(iterable, disable=not is_progress_bar_enabled(), mininterval=0.5, **kwargs)


def printable(value):
    """Any string (also file names that are not valid UTF-8) as text that can be printed and written as JSON."""
    if isinstance(value, str):
        return display_path(value)
    if isinstance(value, dict):
        return {printable(key): printable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(item) for item in value]
    return value


def emotion_histogram(emotions, names):
    """Share of each class of `names` among `emotions` (class names), in class order; sums to 1."""
    index = class_index(tuple(names))
    counts = [0] * len(names)
    for emotion in emotions:
        counts[index[emotion]] += 1
    return [count / len(emotions) for count in counts]


@functools.lru_cache(maxsize=16)
def class_index(names):
    return {name: position for position, name in enumerate(names)}


def hash_position(item_id, seed=SPLIT_SEED):
    """sha256("<seed>:<item_id>") read as a number in [0, 1): where an item falls in the hash split."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(item_id, seed=SPLIT_SEED):
    """The split of an item: its `hash_position` cut at 0.85 and 0.90."""
    position = hash_position(item_id, seed)
    bound = 0.0
    for split, fraction in SPLIT_FRACTIONS:
        bound += fraction
        if position < bound:
            return split
    return SPLIT_FRACTIONS[-1][0]


def new_item(art_style, painting):
    return {"art_style": art_style, "painting": painting, "emotions": [], "explanations": [], "source": [],
            "split": None, "histogram": None, "annotations": set()}


# ----------------------------------------------------------------------------------------------------- report
class PrepareReport:
    """Counts of what was read, kept and dropped (by reason), with the first examples of each drop."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.status = "running"
        self.error = None
        self.emotions = None
        self.annotations_read = Counter()
        self.dropped_annotations = Counter()
        self.dropped_items = Counter()
        self.examples = defaultdict(list)
        self.warnings = {}
        self.dropped_test_items = []
        self.splits = {}
        self.sections = {}  # front-end specific parts (e.g. the split method, raw histogram rows)
        self.seconds = {}

    def drop_annotation(self, reason, example, count=1):
        self.dropped_annotations[reason] += count
        self._remember(reason, example)

    def drop_item(self, reason, annotation_count, example):
        self.dropped_items[reason] += 1
        self.dropped_annotations[reason] += annotation_count
        self._remember(reason, example)

    def warn(self, kind, message, example, console=False):
        """Something kept but worth knowing (e.g. one painting under two art styles, possibly in two splits); with
        `console`, also printed now."""
        warning = self.warnings.setdefault(kind, {"message": message, "count": 0, "examples": []})
        warning["count"] += 1
        if len(warning["examples"]) < MAX_EXAMPLES:
            warning["examples"].append(example)
        if console:
            print(display_path(f"warning: {message.rstrip('.')}: {example}"), file=sys.stderr)

    def _remember(self, reason, example):
        if len(self.examples[reason]) < MAX_EXAMPLES:
            self.examples[reason].append(example)

    def record_splits(self, dataset_dict):
        self.splits = {
            split: {"paintings": len(dataset), "annotations": sum(len(e) for e in dataset["emotions"])}
            for split, dataset in dataset_dict.items()
        }

    def to_dict(self):
        kept_annotations = sum(counts["annotations"] for counts in self.splits.values())
        kept_items = sum(counts["paintings"] for counts in self.splits.values())
        return printable({
            "status": self.status,
            "error": self.error,
            "inputs": self.inputs,
            "emotions": self.emotions,
            "annotations": {
                "read": dict(self.annotations_read),
                "kept": kept_annotations,
                "dropped": dict(self.dropped_annotations),
            },
            "paintings": {"kept": kept_items, "dropped": dict(self.dropped_items)},
            "splits": self.splits,
            "examples": dict(self.examples),
            "warnings": self.warnings,
            "dropped_test_paintings": self.dropped_test_items,
            **self.sections,
            "seconds": self.seconds,
        })

    def write(self, path):
        return write_json_atomic(path, self.to_dict())

    def summary(self):
        """A few lines for the terminal."""
        read = sum(self.annotations_read.values())
        kept = sum(counts["annotations"] for counts in self.splits.values())
        items = sum(counts["paintings"] for counts in self.splits.values())
        lines = [
            f"Annotations read: {read} ({', '.join(f'{k} {v}' for k, v in sorted(self.annotations_read.items()))})",
            f"Kept: {kept} annotations on {items} items",
        ]
        for split, counts in self.splits.items():
            lines.append(f"  {split:<10} {counts['paintings']:>7} items {counts['annotations']:>8} annotations")
        for reason, count in sorted(self.dropped_annotations.items()):
            dropped = self.dropped_items.get(reason, 0)
            lines.append(f"Dropped ({reason}): {count} annotations" + (f", {dropped} items" if dropped else ""))
        for kind, warning in sorted(self.warnings.items()):
            lines.append(f"Warning ({kind}): {warning['count']}: {warning['message']}")
        if self.dropped_test_items:
            lines.append(f"Test items dropped for their image: {len(self.dropped_test_items)} (listed in the report)")
        return display_path("\n".join(lines))


# -------------------------------------------------------------------------------------------- reading tables
def check_input_file(path, flag):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {display_path(path)} is not a file; check the path given on the command line.")
    return path


def utf8_error(path):
    """Error text for a file that is not valid UTF-8: the first bad line and byte."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                byte = line[error.start:error.start + 1].hex()
                return (
                    f"{display_path(path)} line {number}: byte 0x{byte} at column {error.start + 1} is not valid "
                    "UTF-8. The file must be UTF-8 encoded; re-save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 "
                    "in.csv > out.csv`, or 'CSV UTF-8' in a spreadsheet)."
                )
    return f"{display_path(path)} is not valid UTF-8; the file must be UTF-8 encoded."


def check_header(path, header, columns, required):
    """Every `required` column is in `header`, and no column that is read is named twice (which one would hold the
    labels?). Columns nobody reads may repeat (spreadsheets export empty header cells for unused columns)."""
    missing = [name for name in required if name not in header]
    if missing:
        raise ValueError(f"{display_path(path)}: missing column(s) {missing}; found {header}.")
    repeated = [name for name in dict.fromkeys(columns) if header.count(name) > 1]
    if repeated:
        raise ValueError(
            f"{display_path(path)}: the header names the column(s) {repeated} more than once ({header}); rename or "
            "remove the extra one(s), so that it is clear which column holds the values."
        )


def read_csv_records(path, columns, required):
    """Yield (line_number, values) per CSV record, `values` aligned with `columns`: the cell text, or None for a
    column the file lacks. The header is checked first (`check_header`). A record whose number of fields differs
    from the header's (an unquoted comma in a text, a row cut short) yields (line_number, what is wrong) instead:
    see `malformed_record`."""
    path = Path(path)
    records = 0
    try:
        # utf-8-sig: a CSV re-saved by a spreadsheet starts with a byte-order mark that would hide the first column.
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            check_header(path, header, columns, required)
            # A column the file lacks reads from a None cell appended to every record.
            width = len(header)
            pick = operator.itemgetter(*[header.index(name) if name in header else width for name in columns])
            rows = progress(reader, desc=f"Reading {display_path(path.name)}", unit=" rows") if is_progress_bar_enabled() else reader
            for fields in rows:
                if not fields:
                    continue  # a blank line
                records += 1
                if len(fields) != width:
                    more = len(fields) > width
                    yield reader.line_num, (
                        f"{len(fields)} fields where the header has {width}"
                        + (" (a text holding a comma must be in double quotes)" if more else " (the row is cut short)")
                    )
                    continue
                fields.append(None)
                yield reader.line_num, pick(fields)
    except UnicodeDecodeError:
        raise ValueError(utf8_error(path)) from None
    except csv.Error as error:
        raise ValueError(f"{display_path(path)} line {reader.line_num}: not a readable CSV record ({error}).") from None
    if records == 0:
        raise ValueError(f"{display_path(path)} holds no data rows (only a header, or nothing); nothing to prepare.")


def json_object(pairs):
    """`json.loads` hook: a dict that remembers the keys given twice (json.loads would silently keep the last)."""
    record = {}
    repeated = []
    for key, value in pairs:
        if key in record:
            repeated.append(key)
        record[key] = value
    if repeated:
        record[REPEATED_KEYS] = repeated
    return record


REPEATED_KEYS = object()  # json_object's key for the keys of a record given twice


def read_json_lines_records(path, columns, required):
    """Yield (line_number, values) per JSON Lines record, like `read_csv_records`; values are None for a key the
    record lacks. A line that is not a JSON object of text fields, lacks a `required` key, or gives a key that is
    read twice yields (line_number, what is wrong)."""
    path = Path(path)
    records = 0
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(progress(handle, desc=f"Reading {display_path(path.name)}", unit=" rows"), 1):
                if not line.strip():
                    continue
                records += 1
                if records == 1 and line.lstrip().startswith("["):
                    raise ValueError(f"{display_path(path)} holds a JSON array; write one JSON object per line "
                                     "(JSON Lines) instead.")
                try:
                    record = json.loads(line, object_pairs_hook=json_object)
                except json.JSONDecodeError as error:
                    yield number, f"not valid JSON ({error.msg})"
                    continue
                if not isinstance(record, dict):
                    yield number, f"a JSON {type(record).__name__}, not an object"
                    continue
                repeated = [name for name in record.get(REPEATED_KEYS, ()) if name in columns]
                if repeated:
                    yield number, f"the key(s) {repeated} given more than once"
                    continue
                values = []
                for name in columns:
                    value = record.get(name)
                    if isinstance(value, (dict, list)):
                        yield number, f"field {name!r} is a JSON {type(value).__name__}, not text"
                        break
                    values.append(None if value is None else str(value))
                else:
                    absent = [name for name, value in zip(columns, values) if value is None and name in required]
                    yield number, (f"no {absent} field" if absent else tuple(values))
    except UnicodeDecodeError:
        raise ValueError(utf8_error(path)) from None
    if records == 0:
        raise ValueError(f"{display_path(path)} holds no records; nothing to prepare.")


def malformed_record(path, line, problem, report, skip_malformed_rows):
    """A record the reader could not split into the expected fields: an error naming the file and line, or, with
    `skip_malformed_rows`, left out and counted in the report under `malformed_row`."""
    if not skip_malformed_rows:
        raise ValueError(
            f"{display_path(path)} line {line}: {problem}. Fix the file, or pass --skip_malformed_rows to leave such "
            f"rows out (each is counted in {REPORT_NAME}, with its line)."
        )
    report.drop_annotation(MALFORMED_ROW, display_path(f"{Path(path).name} line {line}: {problem}"))


# ---------------------------------------------------------------------------------------------- file lookup
INFOZIP_ESCAPE = re.compile(r"#U([0-9A-Fa-f]{4})|#L([0-9A-Fa-f]{6})")


def decode_infozip_escapes(name):
    """`joaqu#U00e3n.jpg` -> `joaquãn.jpg`: Info-ZIP stores non-ASCII names it cannot represent as `#Uxxxx`
    (`#Lxxxxxx` beyond the BMP)."""
    def replace(match):
        code = int(match.group(1) or match.group(2), 16)
        return match.group(0) if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else chr(code)

    return INFOZIP_ESCAPE.sub(replace, name) if "#" in name else name


def file_name_key(name):
    """How a name in an annotation file and a name on disk are compared: NFC, Info-ZIP escapes decoded."""
    return nfc(decode_infozip_escapes(name))


class FileFinder:
    """Finds a file named by a relative path whatever the Unicode normal form of each name on disk (NFD from a
    macOS copy or the ArtEmis v2.0 CSV, NFC elsewhere) and whatever Info-ZIP escaped (`#U00e3`).

    An exact name wins; otherwise each folder is listed once and matched by `file_name_key`. When several names
    on disk share a key, the same one (the first in sorted order) wins on every run.
    """

    def __init__(self, root):
        self.root = os.fspath(root)
        self.listings = {}

    def listing(self, folder):
        if folder not in self.listings:
            try:
                names = os.listdir(folder)
            except OSError:
                names = []
            keys = {}
            for name in sorted(names, reverse=True):
                keys[file_name_key(name)] = name
            self.listings[folder] = keys
        return self.listings[folder]

    def find(self, relative_parts):
        """The real path of root/part/part/..., or None."""
        path = self.root
        for part in relative_parts:
            candidate = os.path.join(path, part)
            if not os.path.lexists(candidate):
                name = self.listing(path).get(file_name_key(part))
                if name is None:
                    return None
                candidate = os.path.join(path, name)
            path = candidate
        return path if os.path.isfile(path) else None


# ------------------------------------------------------------------------------------------ text stage output
def content_fingerprint(split, table, params):
    """A fingerprint from the content, so that the same inputs save byte-identical folders (state.json included);
    `Dataset.from_dict` would otherwise draw a random one."""
    digest = hashlib.sha256(json.dumps([split, params], sort_keys=True).encode("utf-8"))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    digest.update(sink.getvalue())
    return digest.hexdigest()[:16]


def dataset_from_columns(columns, features, split, params):
    """A Dataset of already-encoded columns (strings, class ids, floats, image {"bytes", "path"} dicts), with a
    content fingerprint. Straight to Arrow: Dataset.from_dict would run every value through
    Features.encode_example, which takes longer than reading the whole CSV and changes nothing here."""
    table = pa.Table.from_pydict(columns, schema=features.arrow_schema)
    return Dataset(
        InMemoryTable(table),
        info=DatasetInfo(features=features),
        split=NamedSplit(split),
        fingerprint=content_fingerprint(split, table, params),
    )


def item_columns(items, item_ids, emotions):
    """Schema columns (all but `image`) of `items[item_id]` for `item_ids`, emotions as class ids."""
    index = {name: position for position, name in enumerate(emotions)}
    entries = [items[item_id] for item_id in item_ids]
    return {
        "painting_id": list(item_ids),
        "art_style": [entry["art_style"] for entry in entries],
        "painting": [entry["painting"] for entry in entries],
        "emotions": [[index[emotion] for emotion in entry["emotions"]] for entry in entries],
        "explanations": [entry["explanations"] for entry in entries],
        "emotion_histogram": [entry["histogram"] or emotion_histogram(entry["emotions"], emotions) for entry in entries],
        "source": [entry["source"] for entry in entries],
    }


def build_text_splits(items, emotions, params):
    """{item_id: entry with a `split`} -> DatasetDict of the text columns, rows sorted by id within each split."""
    features = corpus_features(emotions, with_image=False)
    by_split = {split: [] for split in SPLITS}
    for item_id in sorted(items):
        by_split[items[item_id]["split"]].append(item_id)
    return DatasetDict({
        split: dataset_from_columns(item_columns(items, item_ids, emotions), features, split, params)
        for split, item_ids in by_split.items()
    })


def drop_items_without_annotations(items, report):
    kept = {}
    for item_id, entry in items.items():
        if entry["emotions"]:
            kept[item_id] = entry
        else:
            report.drop_item(NO_VALID_ANNOTATIONS, 0, item_id)
    return kept


def check_something_kept(items, report, inputs_text):
    if items:
        return
    reasons = ", ".join(f"{reason} {count}" for reason, count in report.dropped_annotations.most_common())
    first = next(iter(report.examples.values()), ["-"])[0]
    raise ValueError(
        f"No annotation of {inputs_text} survived the checks (dropped: {reasons or 'none'}; e.g. {first}). "
        "Check the column names and the emotion list."
    )


# ----------------------------------------------------------------------------------------------------- splits
def check_split_size(value, flag):
    """A split size: a fraction in (0, 1) (float) or a count of items >= 1 (int); a whole float >= 1 is a count."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{flag} must be a number, got {value!r}.")
    if 0 < value < 1 and isinstance(value, float):
        return value
    if value >= 1 and value == int(value):
        return int(value)
    raise ValueError(f"{flag} must be a fraction of the items between 0 and 1 (e.g. 0.1) or a number of items of at "
                     f"least 1 (e.g. 3), got {value}.")


def check_split_sizes(validation_size, test_size):
    validation_size = check_split_size(validation_size, "--validation_size")
    test_size = check_split_size(test_size, "--test_size")
    if isinstance(validation_size, float) and isinstance(test_size, float) and validation_size + test_size >= 1:
        raise ValueError(f"--validation_size {validation_size} and --test_size {test_size} leave no share of the items "
                         "for training; their sum must be below 1.")
    return validation_size, test_size


def split_counts(positions, validation_size, test_size):
    """(validation count, test count) for items at hash `positions` (sorted, highest first).

    Two fractions cut the positions at 1 - validation - test and 1 - test (the hash split: an item keeps its split
    whatever else is in the corpus); an evaluated split left empty then takes the next item by position, so that
    every split has an item when there are at least 3 (one always stays in train). A count takes exactly that many
    items, by position; a fraction next to a count becomes the count round(fraction * items), at least 1.
    """
    total = len(positions)
    if isinstance(validation_size, float) and isinstance(test_size, float):
        train_bound = 1 - validation_size - test_size
        test = sum(position >= train_bound + validation_size for position in positions)
        validation = sum(train_bound <= position < train_bound + validation_size for position in positions)
        # One item always stays in train; with 3 items or more, validation and test get one each at least.
        test = min(max(test, 1), total - (2 if total >= 3 else 1)) if total >= 2 else 0
        validation = min(max(validation, 1), total - 1 - test) if total >= 3 else 0
        return validation, test
    counts = [size if isinstance(size, int) else max(1, round(size * total)) for size in (validation_size, test_size)]
    if sum(counts) >= total:
        raise ValueError(
            f"--validation_size {validation_size} and --test_size {test_size} ask for {counts[0]} + {counts[1]} items, "
            f"but the corpus has {total}: at least one must stay for training. Ask for fewer."
        )
    return tuple(counts)


def split_items(items, seed=SPLIT_SEED, validation_size=VALIDATION_SIZE, test_size=TEST_SIZE):
    """Give every item of {item_id: entry} its `split` by `hash_position` (see `split_counts`): the items of the
    highest positions go to test, the next ones to validation, the rest to train. With the default sizes and a
    corpus that gives every split an item, each item's split is `hash_split(item_id, seed)`."""
    validation_size, test_size = check_split_sizes(validation_size, test_size)
    ranked = sorted(((hash_position(item_id, seed), item_id) for item_id in items), reverse=True)
    validation, test = split_counts([position for position, _ in ranked], validation_size, test_size)
    for rank, (_, item_id) in enumerate(ranked):
        items[item_id]["split"] = "test" if rank < test else "validation" if rank < test + validation else "train"


def warn_about_splits(dataset_dict, emotions, report, advice):
    """Warn (report and console) about a split without items, and about an evaluated split where no item has a
    majority emotion (emotion accuracy is undefined there), by the metric's own majority rule."""
    from sevlm.evaluation.metric import majority_emotion

    for split in SPLITS:
        if split not in dataset_dict:
            continue
        dataset = dataset_dict[split]
        if len(dataset) == 0:
            report.warn("empty_split", f"a split without items; nothing can be evaluated on it. {advice}", split,
                        console=True)
        elif split in EVALUATED_SPLITS:
            histograms = dataset.select_columns(["emotion_histogram"]).with_format(None)[:]["emotion_histogram"]
            if all(majority_emotion(histogram, emotions) is None for histogram in histograms):
                report.warn(
                    "no_majority_in_split",
                    "no item of this split has a majority emotion (more than half of its annotations), so emotion "
                    f"accuracy is undefined there. {advice}",
                    f"{split} ({len(dataset)} item{'' if len(dataset) == 1 else 's'})",
                    console=True,
                )


def warn_many_classes(emotions, report):
    """Many classes prepare fine, but emotion lists, confusion matrices and prediction cards become unreadable."""
    if len(emotions) > MAX_READABLE_CLASSES:
        report.warn(
            "many_classes",
            f"more than {MAX_READABLE_CLASSES} emotion classes: emotion lists, reports, confusion matrices and "
            "prediction cards become hard to read, and each class has few examples. Check the emotion column "
            "(is it the label?) or merge classes",
            f"{len(emotions)} classes: {listed(emotions)}",
            console=True,
        )


# ------------------------------------------------------------------------------------------------ image stage
@dataclass
class ImageSource:
    """Where each item's picture is.

    `locate(item_id)` -> (the file as shown in messages, the real path or None, the name stored in the dataset);
    `flag` is the command-line flag to check when files are missing; `known_problems` maps the relative names of
    files known to be missing or broken in public downloads to what to do about them.
    """

    locate: Callable
    flag: str
    known_problems: dict = field(default_factory=dict)

    def advice_for(self, shown_names):
        notes = []
        for relative, note in self.known_problems.items():
            if any(relative in nfc(name) for name in shown_names):
                notes.append(f"{relative}: {note}")
        return notes


def decode_image(path, max_side, quality=JPEG_QUALITY):
    """Read an image file and return it as JPEG bytes, RGB, long side at most `max_side` (aspect kept).

    Decoded by the processor's own loader (`processing_sevlm.load_image`: EXIF orientation applied, 16-bit scaled,
    transparency on white), so training sees what inference sees; a JPEG is decoded at a reduced scale that still
    gives at least `max_side` (much faster for large scans). Raises ValueError for files that cannot be read in full.
    """
    image = load_image(path, draft_size=(max_side, max_side))
    image.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def read_images_batch(batch, max_image_side):
    """`datasets.map` function: image bytes (or an error message) for a batch of resolved image files."""
    images, errors = [], []
    for stored_name, path in zip(batch["image_name"], batch["image_file"]):
        try:
            images.append({"bytes": decode_image(os.fsdecode(path), max_image_side), "path": stored_name})
            errors.append("")
        except (OSError, ValueError, SyntaxError, EOFError, PILImage.DecompressionBombError) as error:
            images.append(None)
            errors.append(display_path(f"{type(error).__name__}: {error}"))
    return {"image": images, "image_error": errors}


def image_problem_message(kind, problems, total, source):
    """Error text for missing or unreadable images: the count, the first 20, and what to do."""
    listed = "\n  ".join(display_path(problem) for problem in problems[:MAX_EXAMPLES])
    more = f"\n  ... and {len(problems) - MAX_EXAMPLES} more" if len(problems) > MAX_EXAMPLES else ""
    known = source.advice_for(problems)
    known_text = "".join(f"\nKnown problem of the public download: {note}" for note in known)
    advice = (
        f"Check that {source.flag} points at the right folder and that the download is complete, or pass "
        f"--skip_missing_images to drop these items (they are counted in {REPORT_NAME}; dropping test items "
        "changes the test set)."
    )
    return f"{len(problems)} of {total} items have {kind} images:\n  {listed}{more}{known_text}\n{advice}"


def resolve_image_files(text_splits, source, skip_missing_images, report):
    """Add `image_file` (the real path, as bytes: file names need not be UTF-8) and `image_name` to each split;
    drop or refuse items without an image file."""
    resolved, missing = DatasetDict(), []
    total = sum(len(dataset) for dataset in text_splits.values())
    for split, dataset in text_splits.items():
        located = [source.locate(item_id) for item_id in dataset["painting_id"]]
        absent = [row for row, (_, path, _) in enumerate(located) if path is None]
        if absent:
            counts = [len(emotions) for emotions in dataset.select(absent)["emotions"]]
            for row, count in zip(absent, counts):
                shown = display_path(located[row][0])
                missing.append(shown)
                if skip_missing_images:
                    report.drop_item(MISSING_IMAGE, count, shown)
                    if split == "test":
                        report.dropped_test_items.append({"painting_id": dataset[row]["painting_id"], "reason": MISSING_IMAGE})
            present = [row for row, (_, path, _) in enumerate(located) if path is not None]
            dataset, located = dataset.select(present), [located[row] for row in present]
        dataset = dataset.add_column("image_file", [os.fsencode(path) for _, path, _ in located],
                                     feature=Value("binary"))
        resolved[split] = dataset.add_column("image_name", [name for _, _, name in located], feature=Value("string"))
    if missing:
        report.sections["known_problems_found"] = source.advice_for(missing)
        if not skip_missing_images:
            raise FileNotFoundError(image_problem_message("missing", sorted(missing), total, source))
    return resolved


def read_images(resolved, max_image_side, num_proc, skip_missing_images, report, work_dir, source):
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
                message = f"{display_path(os.fsdecode(row['image_file']))}: {row['image_error']}"
                unreadable.append(message)
                if skip_missing_images:
                    report.drop_item(UNREADABLE_IMAGE, len(row["emotions"]), message)
                    if split == "test":
                        report.dropped_test_items.append({"painting_id": row["painting_id"], "reason": UNREADABLE_IMAGE})
            dataset = dataset.select([row for row, error in enumerate(errors) if not error])
        with_images[split] = dataset
    if unreadable:
        report.sections["known_problems_found"] = report.sections.get("known_problems_found", []) + source.advice_for(unreadable)
        if not skip_missing_images:
            total = sum(len(dataset) for dataset in resolved.values())
            raise ValueError(image_problem_message("unreadable", unreadable, total, source))
    return with_images


def finish_splits(with_images, text_fingerprints, max_image_side, features):
    """Keep the schema's columns in its order, with a fingerprint derived from the text stage's content-based one."""
    finished = DatasetDict()
    for split, dataset in with_images.items():
        fingerprint = hashlib.sha256(f"{text_fingerprints[split]}:{max_image_side}".encode()).hexdigest()[:16]
        dataset = dataset.select_columns(list(features), new_fingerprint=fingerprint)
        # map(num_proc > 1) concatenates its shards and forgets the split name; restore it so that the saved
        # state.json does not depend on --num_proc.
        dataset._split = NamedSplit(split)
        finished[split] = dataset
    return finished


# --------------------------------------------------------------------------------------------------- parquet
def dataset_card(splits, card_text):
    """The Hub folder's README.md: a `huggingface_hub.DatasetCard` whose metadata maps each split to its Parquet
    files (`load_dataset(folder)` reads them), then `card_text`."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        license="other",
        task_categories=["image-to-text"],
        configs=[{"config_name": "default",
                  "data_files": [{"split": split, "path": f"data/{split}-*"} for split in splits]}],
    )
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{card_text}")


def write_parquet(dataset_dict, hub_dir, card_text, shard_bytes=PARQUET_SHARD_BYTES):
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
    dataset_card(splits, card_text).save(Path(hub_dir) / "README.md")
    return written


def code_names(names):
    """Class names as Markdown code spans: a name is shown as written, never read as markup."""
    return ", ".join(f"`{name.replace('`', chr(39))}`" for name in names)


# --------------------------------------------------------------------------------------------- the full run
def failed_report_path(output_dir):
    output_dir = Path(output_dir)
    return output_dir.parent / f"{output_dir.name}{FAILED_REPORT_SUFFIX}"


def is_failed_report(path):
    """Whether `path` is the report of a failed preparation run (which a later run may replace or remove)."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and report.get("status") == "failed" and {"inputs", "annotations"} <= set(report)


def check_failed_report_place(output_dir):
    """The failed-run report goes beside the output folder: it may replace an earlier failed report, never a file of
    someone else's."""
    path = failed_report_path(output_dir)
    if path.is_file() and not is_failed_report(path):
        raise FileExistsError(
            f"{display_path(path)} exists and is not the report of a failed preparation run, which a failed run would "
            "write there. Move it away, or choose another --output_dir."
        )
    return check_new_file(path, overwrite=True, what="The failed-run report")


def corpus_output_names(parquet=False):
    """The entries a preparation command writes into its output folder."""
    return (*CORPUS_FILES, *((HUB_FOLDER,) if parquet else ()))


def check_image_options(max_image_side, num_proc):
    if max_image_side < 1:
        raise ValueError(f"--max_image_side must be a positive number of pixels, got {max_image_side}.")
    if num_proc < 1:
        raise ValueError(f"--num_proc must be at least 1, got {num_proc}.")


def run_preparation(output_dir, report, text_stage, *, max_image_side=MAX_IMAGE_SIDE, num_proc=1,
                    skip_missing_images=False, parquet=False, overwrite=False, card_text="", split_advice=""):
    """The shared run of every preparation tool.

    Checks first, before any work: the options, and that the output folder can take a corpus (`staged_output`
    with the owner "prepared corpus": an earlier corpus there is replaced only with `overwrite`, and only its own
    entries; a file of someone else's in the way is an error) and the failed-run report beside it. Then runs
    `text_stage()` -> (text DatasetDict, ImageSource), the image stage, and saves the DatasetDict, the report and,
    with `parquet`, `hub/` with `card_text` (text or a function giving it) into a staging folder whose entries move
    into `output_dir` only when all are complete. Warns about empty splits and splits without a majority emotion
    (`split_advice` says what to do). A failed run leaves `output_dir` as it was and writes its report to
    `<output_dir>.prepare_report.failed.json` beside it. Returns the saved DatasetDict.
    """
    check_image_options(max_image_side, num_proc)
    names = corpus_output_names(parquet)
    check_output_folder(output_dir, CORPUS_OWNER, names, overwrite, "--overwrite", "--output_dir")
    failed_report = check_failed_report_place(output_dir)
    started = time.perf_counter()
    try:
        with staged_output(output_dir, CORPUS_OWNER, names, overwrite, "--overwrite", "--output_dir") as staging:
            text_splits, source = text_stage()
            report.seconds["csv_stage"] = round(time.perf_counter() - started, 2)
            images_started = time.perf_counter()
            # Beside the output (same disk), removed afterwards: map() writes the decoded images there first.
            with tempfile.TemporaryDirectory(prefix=".prepare-images-", dir=staging.parent) as work_dir:
                resolved = resolve_image_files(text_splits, source, skip_missing_images, report)
                with_images = read_images(resolved, max_image_side, num_proc, skip_missing_images, report, work_dir, source)
                text_fingerprints = {split: dataset._fingerprint for split, dataset in text_splits.items()}
                features = corpus_features(report.emotions)
                dataset_dict = finish_splits(with_images, text_fingerprints, max_image_side, features)
                report.seconds["image_stage"] = round(time.perf_counter() - images_started, 2)
                report.record_splits(dataset_dict)
                warn_about_splits(dataset_dict, report.emotions, report, split_advice)
                saving_started = time.perf_counter()
                # save_to_disk writes no data file for an empty split unless asked for one shard.
                shards = {split: 1 if len(dataset) == 0 else None for split, dataset in dataset_dict.items()}
                dataset_dict.save_to_disk(str(staging), num_shards=shards)
            if parquet:
                card = card_text() if callable(card_text) else card_text
                write_parquet(DatasetDict.load_from_disk(str(staging)), staging / HUB_FOLDER, card)
            report.seconds["save"] = round(time.perf_counter() - saving_started, 2)
            report.seconds["total"] = round(time.perf_counter() - started, 2)
            report.status = "ok"
            report.write(staging / REPORT_NAME)
        if is_failed_report(failed_report):
            failed_report.unlink()
    except BaseException as error:
        report.status = "failed"
        report.error = display_path(f"{type(error).__name__}: {error}")
        report.seconds["total"] = round(time.perf_counter() - started, 2)
        path = report.write(failed_report)
        print(report.summary(), file=sys.stderr)
        print(f"Report of the failed run: {display_path(path)} (the output folder was not touched)", file=sys.stderr)
        raise
    print(report.summary(), file=sys.stderr)
    print(f"Saved to {display_path(output_dir)} (report: {display_path(Path(output_dir) / REPORT_NAME)})", file=sys.stderr)
    return DatasetDict.load_from_disk(str(output_dir))


# ------------------------------------------------------------------------------------------ generic front end
@dataclass
class CorpusInput:
    """Where the annotations are and how to read them."""

    table: Path  # the CSV / JSON Lines file
    image_dir: Path  # relative image paths point here
    image_column: str
    json_lines: bool


def resolve_input(input_path, image_dir=None, image_column=None):
    """--input FILE_OR_FOLDER -> CorpusInput (an image folder reads its metadata.csv / metadata.jsonl)."""
    input_path = Path(input_path)
    if input_path.is_dir():
        found = [input_path / name for name in IMAGE_FOLDER_METADATA if (input_path / name).is_file()]
        if len(found) != 1:
            problem = "holds both" if found else "holds neither"
            raise FileNotFoundError(
                f"--input {display_path(input_path)} is a folder that {problem} of {list(IMAGE_FOLDER_METADATA)}. An "
                "image folder needs exactly one metadata file (Hugging Face imagefolder layout: a `file_name` column "
                "with each image's path relative to the folder), or pass the CSV / JSON Lines file itself."
            )
        table, default_column, default_dir = found[0], "file_name", input_path
    elif input_path.is_file():
        table, default_column, default_dir = input_path, "image", input_path.parent
    else:
        raise FileNotFoundError(f"--input {display_path(input_path)} does not exist; give a CSV or JSON Lines file, or "
                                "an image folder with metadata.csv / metadata.jsonl.")
    image_dir = Path(image_dir) if image_dir else default_dir
    if not image_dir.is_dir():
        raise FileNotFoundError(f"--image_dir {display_path(image_dir)} is not a folder.")
    json_lines = table.suffix.lower() in JSON_LINES_SUFFIXES
    if not json_lines and table.suffix.lower() != ".csv":
        raise ValueError(f"--input {display_path(table)}: expected a .csv or .jsonl file (or an image folder).")
    return CorpusInput(table, image_dir, image_column or default_column, json_lines)


def normalize_image_path(text):
    """The image path as written, in one spelling: NFC, `/` separators, no `./` or `a/../`."""
    text = nfc(text.strip()).replace("\\", "/")
    return posixpath.normpath(text) if text else ""


def collect_items(corpus_input, emotion_column, explanation_column, id_column, vocabulary, report,
                  skip_malformed_rows=False):
    """Read the annotation file into {item_id: entry}; count every row left out, by reason."""
    columns = [corpus_input.image_column, emotion_column, explanation_column] + ([id_column] if id_column else [])
    reader = read_json_lines_records if corpus_input.json_lines else read_csv_records
    name = display_path(corpus_input.table.name)
    source = corpus_input.table.name
    items, read = {}, report.annotations_read
    for line, values in reader(corpus_input.table, columns, columns):
        read[source] += 1
        where = f"{name} line {line}"
        if isinstance(values, str):  # a record that could not be split into the columns
            malformed_record(corpus_input.table, line, values, report, skip_malformed_rows)
            continue
        image, emotion, explanation = values[0], values[1], values[2]
        image = normalize_image_path(image or "")
        item_id = nfc((values[3] or "").strip()) if id_column else image
        if not image or not item_id:
            report.drop_annotation(MALFORMED_ROW, f"{where}: empty {'image' if not image else id_column!r} field")
            continue
        entry = items.get(item_id)
        if entry is None:
            folder, file_name = posixpath.split(image)
            entry = items[item_id] = new_item(posixpath.basename(folder), posixpath.splitext(file_name)[0])
            entry["image"], entry["image_line"] = image, where
        elif entry["image"] != image:
            report.drop_annotation(IMAGE_CONFLICT, f"{where}: item {item_id!r} has image {image!r} here but "
                                                   f"{entry['image']!r} on {entry['image_line']}")
            continue
        add_annotation(entry, emotion, explanation, source, vocabulary, report, where, item_id)
    return items


def add_annotation(entry, emotion, text, source, vocabulary, report, where, item_id, empty_reason=EMPTY_EXPLANATION,
                   what="explanation", row=None, drop_duplicates=True):
    """Check one annotation and append it to its item (`emotions`, `explanations`, `source`, and `rows` when `row`
    is given); an unknown emotion or an empty text is counted in the report under its reason. An exact duplicate of
    an earlier annotation of the item (same class, same text) would count twice in its histogram and majority: it is
    dropped as `duplicate_annotation`, or, without `drop_duplicates` (a published protocol's annotations), kept
    with a warning. Returns whether kept."""
    label = vocabulary.match(emotion or "")
    if label is None:
        report.drop_annotation(UNKNOWN_EMOTION, f"{where}: emotion {emotion!r} ({item_id})")
        return False
    text = (text or "").strip()
    if not text:
        report.drop_annotation(empty_reason, f"{where}: empty {what} ({item_id})")
        return False
    if (label, text) in entry["annotations"]:
        example = f"{where}: {item_id}, {label!r}, {text[:80]!r}"
        if drop_duplicates:
            report.drop_annotation(DUPLICATE_ANNOTATION, example)
            return False
        report.warn(DUPLICATE_ANNOTATION, "an annotation repeats an earlier one of its item (same emotion, same text); "
                    "kept, as the protocol does", example)
    entry["annotations"].add((label, text))
    entry["emotions"].append(label)
    entry["explanations"].append(text)
    entry["source"].append(source)
    if row is not None:
        entry["rows"].append(row)
    return True


def warn_shared_images(items, report):
    """With --id_column, one image under several ids can land in several splits: say so."""
    owners = defaultdict(list)
    for item_id, entry in items.items():
        owners[entry["image"]].append(item_id)
    for image, item_ids in sorted(owners.items()):
        if len(item_ids) > 1:
            splits = sorted({items[item_id]["split"] for item_id in item_ids})
            report.warn("image_in_several_items", "one image file under several ids (it may land in several splits)",
                        f"{image}: ids {sorted(item_ids)} in {splits}")


def generic_card(emotions):
    return (
        "# A SEVLM corpus\n\nOne row per item: its picture, its annotations' emotions and explanations, and the "
        f"emotion histogram over the classes {code_names(emotions)} (prepared with `sevlm-prepare`).\n"
        "Set the license above to the terms of the pictures and annotations before publishing.\n"
    )


def warn_duplicates_dropped(report):
    count = report.dropped_annotations.get(DUPLICATE_ANNOTATION, 0)
    if count:
        print(display_path(f"warning: {count} annotation(s) repeat an earlier one of their item (same emotion, same "
                           f"text) and were dropped, e.g. {report.examples[DUPLICATE_ANNOTATION][0]}; see "
                           f"{REPORT_NAME}."), file=sys.stderr)


def warn_inferred_classes(items, vocabulary, report):
    counts = Counter(emotion for entry in items.values() for emotion in entry["emotions"])
    shown = ", ".join(f"{name!r} ({counts[name]})" for name in vocabulary.names[:MAX_READABLE_CLASSES])
    more = f" and {len(vocabulary.names) - MAX_READABLE_CLASSES} more" if len(vocabulary.names) > MAX_READABLE_CLASSES else ""
    print(display_path(f"warning: no --emotions given; classes inferred in order of first appearance: {shown}{more}. "
                       "Pass --emotions to fix their order (and catch misspelled labels)."), file=sys.stderr)
    report.warn("emotions_inferred", "no --emotions given: classes inferred in order of first appearance",
                vocabulary.names)


def prepare_corpus(
    input,
    output_dir,
    image_dir=None,
    image_column=None,
    emotion_column="emotion",
    explanation_column="explanation",
    id_column=None,
    emotions=None,
    split_seed=SPLIT_SEED,
    validation_size=VALIDATION_SIZE,
    test_size=TEST_SIZE,
    max_image_side=MAX_IMAGE_SIDE,
    num_proc=1,
    skip_missing_images=False,
    skip_malformed_rows=False,
    overwrite=False,
    parquet=False,
):
    """Build and save a corpus (see the module docstring); returns it, loaded from `output_dir`.

    `emotions`: the class names in class order; None infers them from the data in order of first appearance.
    `validation_size`, `test_size`: a fraction of the items in (0, 1) or a number of items (see `split_items`).
    """
    corpus_input = resolve_input(input, image_dir, image_column)
    vocabulary = EmotionVocabulary(emotions)
    validation_size, test_size = check_split_sizes(validation_size, test_size)
    report = PrepareReport({
        "input": str(input),
        "annotation_file": str(corpus_input.table),
        "image_dir": str(corpus_input.image_dir),
        "image_column": corpus_input.image_column,
        "emotion_column": emotion_column,
        "explanation_column": explanation_column,
        "id_column": id_column,
        "emotions_given": list(emotions) if emotions else None,
        "split": "hash",
        "split_seed": split_seed,
        "validation_size": validation_size,
        "test_size": test_size,
        "max_image_side": max_image_side,
        "jpeg_quality": JPEG_QUALITY,
        "skip_missing_images": skip_missing_images,
        "skip_malformed_rows": skip_malformed_rows,
    })

    def text_stage():
        items = collect_items(corpus_input, emotion_column, explanation_column, id_column, vocabulary, report,
                              skip_malformed_rows)
        items = drop_items_without_annotations(items, report)
        check_something_kept(items, report, display_path(corpus_input.table))
        warn_duplicates_dropped(report)
        if not vocabulary.fixed:
            warn_inferred_classes(items, vocabulary, report)
        report.emotions = list(vocabulary.names)
        warn_many_classes(report.emotions, report)
        split_items(items, split_seed, validation_size, test_size)
        if id_column:
            warn_shared_images(items, report)
        params = {"split_seed": split_seed, "emotions": report.emotions, "validation_size": validation_size,
                  "test_size": test_size}
        finder = FileFinder(corpus_input.image_dir)

        def locate(item_id):
            image = items[item_id]["image"]
            parts = [part for part in image.split("/") if part] if not posixpath.isabs(image) else None
            if parts is None:
                real = FileFinder(posixpath.dirname(image)).find([posixpath.basename(image)])
                shown = image
            else:
                real = finder.find(parts)
                shown = os.path.join(corpus_input.image_dir, *parts)
            return shown, real, posixpath.splitext(image.lstrip("/"))[0] + ".jpg"

        return build_text_splits(items, report.emotions, params), ImageSource(locate, "--image_dir")

    advice = ("A small corpus: give the split more items with --validation_size / --test_size (a fraction, or a "
              "number of items), or annotate more items.")
    return run_preparation(output_dir, report, text_stage, max_image_side=max_image_side, num_proc=num_proc,
                           skip_missing_images=skip_missing_images, parquet=parquet, overwrite=overwrite,
                           card_text=lambda: generic_card(vocabulary.names), split_advice=advice)
