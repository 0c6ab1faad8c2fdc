"""ArtEmis and WikiArt -> a SEVLM corpus (`datasets.DatasetDict`, train / validation / test), the ArtEmis front end
of `prepare_corpus` (same schema, report, image stage and saving).

One row per painting: `painting_id` ("art_style/painting", NFC), `art_style`, `painting`, `image`, `emotions` (one
of the 9 ArtEmis classes per annotation), `explanations`, `emotion_histogram` (9 shares), `source` ("v1" or
"contrastive" per annotation). See `sevlm/data/schema.py`.

Three ways in (see `--help` and the README's Data section):

    # the paper's data: ArtEmis's own preprocessed CSV (its split and spell-checked text), histograms from the raw rows
    python -m dataset_scripts.prepare_artemis --artemis_preprocessed_csv artemis_preprocessed.csv \
        --artemis_csv artemis_dataset_release_v0.csv --wikiart_dir wikiart --output_dir data/artemis-v1
    # the raw release with the official split (the default) or the hash split
    python -m dataset_scripts.prepare_artemis --artemis_csv artemis_dataset_release_v0.csv \
        --wikiart_dir wikiart --output_dir data/artemis-v1-raw [--split hash]
    # ArtEmis v2.0: add --contrastive_csv Contrastive.csv [--v2_train_set combined]

The official split is ArtEmis's own (`artemis/utils/basic.py: make_train_test_val_splits` with
`preprocess_artemis_data.py --preprocess-for-deep-nets True`), reproduced exactly: `official_split`.
"""

import math
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.data.corpus import (
    JPEG_QUALITY,
    MALFORMED_ROW,
    MAX_IMAGE_SIDE,
    SPLIT_FRACTIONS,
    SPLIT_SEED,
    UNKNOWN_EMOTION,
    FileFinder,
    ImageSource,
    PrepareReport,
    add_annotation,
    build_text_splits,
    check_input_file,
    check_something_kept,
    drop_items_without_annotations,
    emotion_histogram,
    hash_split,
    malformed_record,
    new_item,
    nfc,
    read_csv_records,
    run_preparation,
)
from sevlm.data.schema import corpus_features
from sevlm.data.settings import MAX_REPETITION, SPLIT_METHODS, V2_TRAIN_SETS
from sevlm.io import display_path
from sevlm.names import EmotionVocabulary

FEATURES = corpus_features(ARTEMIS_EMOTIONS)

# ArtEmis's preprocessing sets paintings with `repetition >= 41` (the 701 high-coverage paintings) aside as "rest".
OFFICIAL_SEED = 2021
OFFICIAL_LOADS = (0.85, 0.05, 0.1)
V2_SAMPLE_SEED = 42  # ArtEmis v2.0 `create_parts.py`: old_full_set.sample(len(new_set), random_state=42)

V1_COLUMNS = ("art_style", "painting", "emotion", "utterance", "repetition")
# Contrastive.csv also has anchor_art_style / anchor_painting (the v1.0 painting it was matched to); the
# annotation itself belongs to art_style/painting, so the anchor is not needed here.
CONTRASTIVE_REQUIRED = ("art_style", "painting", "emotion", "utterance")
PREPROCESSED_COLUMNS = ("art_style", "painting", "emotion", "utterance_spelled", "split", "version")
PREPROCESSED_REQUIRED = ("art_style", "painting", "emotion", "utterance_spelled", "split")
PREPROCESSED_SPLITS = {"train": "train", "val": "validation", "test": "test", "rest": None}
VERSION_SOURCES = {"old": "v1", "new": "contrastive"}

# ArtEmis-specific drop reasons (the shared ones are in prepare_corpus).
EMPTY_UTTERANCE = "empty_utterance"
REPETITION_FILTER = "repetition_filter"
CONTRASTIVE_ONLY = "contrastive_only"
OUTSIDE_V2_SAMPLE = "outside_v2_sample"
NO_RAW_ANNOTATIONS = "no_raw_annotations"

# Files of the public WikiArt downloads known to be missing or broken, and what to do.
KNOWN_BAD_IMAGES = {
    "Baroque/rembrandt_woman-standing-with-raised-hands.jpg": (
        "missing from the archive.org WikiArt copy (optas/artemis issue 13) and stored with a bad CRC in ArtGAN's "
        "wikiart.zip (cs-chan/ArtGAN issue 14). Save the painting from wikiart.org as this file, or pass "
        "--skip_missing_images (the painting is then dropped and listed in the report)."
    ),
    "Post_Impressionism/vincent-van-gogh_l-arlesienne-portrait-of-madame-ginoux-1890.jpg": (
        "broken in the wikiart.zip distributed with ArtGAN (cs-chan/ArtGAN issues 4 and 14). Replace it with a copy "
        "from wikiart.org, or pass --skip_missing_images (the painting is then dropped and listed in the report)."
    ),
}

ARTEMIS_CARD = (
    "# ArtEmis (prepared for SEVLM)\n\n"
    "One row per WikiArt painting with its ArtEmis emotions and explanations and the 9-way emotion histogram.\n"
    "ArtEmis annotations: https://www.artemisdataset.org/ (research, non-commercial use). WikiArt images are\n"
    "subject to WikiArt's terms. Do not publish this folder where those terms forbid it.\n"
)

# Labels of the CSVs meet the 9 classes here ("Something_Else " is "something else": `sevlm.names.emotion_key`).
VOCABULARY = EmotionVocabulary(ARTEMIS_EMOTIONS)


# ------------------------------------------------------------------------------------------ the official split
def train_test_split(sequence, test_size, random_state):
    """scikit-learn's `train_test_split(sequence, test_size=..., random_state=...)` (shuffled, unstratified),
    reproduced with numpy: n_test = ceil(test_size * n) for a float, the int itself for an int; n_train = n - n_test;
    perm = RandomState(random_state).permutation(n); test = perm[:n_test], train = perm[n_test:n_test + n_train].
    Returns (train, test) as lists, in that order. Equal to scikit-learn wherever scikit-learn accepts the sizes."""
    n = len(sequence)
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else int(test_size)
    n_test = min(max(n_test, 0), n)
    n_train = n - n_test
    permutation = np.random.RandomState(random_state).permutation(n)
    return ([sequence[i] for i in permutation[n_test:n_test + n_train]], [sequence[i] for i in permutation[:n_test]])


def official_split(unit_ids, random_state=OFFICIAL_SEED, loads=OFFICIAL_LOADS):
    """ArtEmis's split (`make_train_test_val_splits`): `unit_ids` (art_style + painting, raw strings, no
    separator) made unique and sorted; train, rest = train_test_split(ids, test_size=val + test); validation, test =
    train_test_split(rest, test_size=round(test * len(ids))). Returns {unit_id: split}."""
    ids = sorted(set(unit_ids))
    _, val_size, test_size = loads
    train, rest = train_test_split(ids, val_size + test_size, random_state)  # 0.05 + 0.1 = 0.15000000000000002
    validation, test = train_test_split(rest, round(test_size * len(ids)), random_state)
    return {**{unit: "train" for unit in train}, **{unit: "validation" for unit in validation},
            **{unit: "test" for unit in test}}


def v2_sample_rows(population, n, random_state=V2_SAMPLE_SEED):
    """`DataFrame.sample(n, random_state=42)` over `population` rows in file order, as ArtEmis v2.0's
    `create_parts.py` draws its "combined" v1.0 rows: RandomState(42).permutation(population)[:n] (positions)."""
    if n > population:
        raise ValueError(f"--v2_train_set combined needs at least as many v1.0 rows ({population}) as contrastive rows ({n}).")
    return set(np.random.RandomState(random_state).permutation(population)[:n].tolist())


# -------------------------------------------------------------------------------------------------- CSV stage
BAD_REPETITION = object()


def parse_repetition(text):
    """`repetition` cell -> int; None when the file has no such column; BAD_REPETITION for an empty, non-numeric,
    non-integral, negative or infinite value (`inf`, `1e400`)."""
    if text is None:
        return None
    if text.isdigit():  # the common case, fast
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return BAD_REPETITION
    if not math.isfinite(value) or value < 0 or value != int(value):
        return BAD_REPETITION
    return int(value)


class ArtemisTables:
    """The annotations of the ArtEmis CSVs grouped by painting, plus what the split and the v2.0 sample need."""

    def __init__(self, report, skip_malformed_rows=False):
        self.report = report
        self.skip_malformed_rows = skip_malformed_rows
        self.items = {}
        self.units = {}  # raw art_style + painting of v1.0 rows with repetition <= 40 -> painting_id (first seen)
        self.population = Counter()  # data rows per source (the v2.0 sample is drawn over the v1.0 ones)

    def entry(self, painting_id, art_style, painting):
        entry = self.items.get(painting_id)
        if entry is None:
            entry = self.items[painting_id] = new_item(art_style, painting)
            entry.update(repetition=0, rows=[], units=[])
        return entry

    def add_raw_csv(self, path, source, required):
        """Read artemis_dataset_release_v0.csv (source "v1") or Contrastive.csv ("contrastive")."""
        name = display_path(Path(path).name)
        report, read, items, units = self.report, 0, self.items, self.units
        for line, values in read_csv_records(path, V1_COLUMNS, required):
            ordinal = read
            read += 1
            if isinstance(values, str):
                malformed_record(path, line, values, report, self.skip_malformed_rows)
                continue
            raw_style, raw_painting, raw_emotion, utterance, repetition_text = values
            art_style, painting = nfc(raw_style.strip()), nfc(raw_painting.strip())
            # v1.0 needs a repetition; Contrastive.csv may leave it out or empty (it is not used for its rows).
            if source != "v1" and not (repetition_text or "").strip():
                repetition_text = None
            repetition = parse_repetition(repetition_text)
            if not art_style or not painting or repetition is BAD_REPETITION:
                report.drop_annotation(MALFORMED_ROW, f"{name} line {line}: art_style={raw_style!r} "
                                                      f"painting={raw_painting!r} repetition={repetition_text!r}")
                continue
            painting_id = f"{art_style}/{painting}"
            entry = items.get(painting_id) or self.entry(painting_id, art_style, painting)
            # Recorded before the other checks: a painting is over the repetition limit whatever its rows hold.
            if repetition and repetition > entry["repetition"]:
                entry["repetition"] = repetition
            if source == "v1" and repetition <= MAX_REPETITION:
                unit = raw_style + raw_painting  # the official split unit: raw strings, no separator
                if unit not in units:
                    units[unit] = painting_id
                    entry["units"].append(unit)
            add_annotation(entry, raw_emotion, utterance, source, VOCABULARY, report, f"{name} line {line}", painting_id,
                           EMPTY_UTTERANCE, "utterance", row=(source, ordinal), drop_duplicates=False)
        report.annotations_read[source] += read
        self.population[source] += read

    def add_preprocessed_csv(self, path):
        """Read ArtEmis's `artemis_preprocessed.csv` (v1.0, or v2.0's full_combined one with `version`)."""
        name = display_path(Path(path).name)
        report = self.report
        old_rows = 0  # the v2.0 sample's positions count every `version == old` row in file order
        for line, values in read_csv_records(path, PREPROCESSED_COLUMNS, PREPROCESSED_REQUIRED):
            where = f"{name} line {line}"
            if isinstance(values, str):
                # Which version the row is cannot be told: it counts as read from v1.0, the file's usual content.
                report.annotations_read["v1"] += 1
                malformed_record(path, line, values, report, self.skip_malformed_rows)
                continue
            raw_style, raw_painting, raw_emotion, utterance, split_text, version = values
            source = VERSION_SOURCES.get((version or "old").strip())
            ordinal = None
            if source == "v1":
                ordinal, old_rows = old_rows, old_rows + 1
            if source is not None:
                self.population[source] += 1
            report.annotations_read[source or "v1"] += 1
            art_style, painting = nfc(raw_style.strip()), nfc(raw_painting.strip())
            split_text = split_text.strip()
            if not art_style or not painting or source is None or split_text not in PREPROCESSED_SPLITS:
                report.drop_annotation(MALFORMED_ROW, f"{where}: art_style={raw_style!r} painting={raw_painting!r} "
                                                      f"split={split_text!r} version={version!r}")
                continue
            painting_id = f"{art_style}/{painting}"
            split = PREPROCESSED_SPLITS[split_text]
            if split is None:
                report.drop_annotation(REPETITION_FILTER, f"{where}: split 'rest' ({painting_id})")
                continue
            entry = self.entry(painting_id, art_style, painting)
            if entry["split"] is None:
                entry["split"], entry["split_line"] = split, where
            elif entry["split"] != split:
                report.drop_annotation(MALFORMED_ROW, f"{where}: {painting_id} is in split {split_text!r} here but "
                                                      f"{entry['split']!r} on {entry['split_line']}")
                continue
            add_annotation(entry, raw_emotion, utterance, source, VOCABULARY, report, where, painting_id,
                           EMPTY_UTTERANCE, "utterance_spelled", row=(source, ordinal), drop_duplicates=False)


def raw_histograms(csv_paths, report, skip_malformed_rows=False):
    """{painting_id: [count per class]} over every raw row of the ArtEmis CSVs (SEVLM's histograms come from all
    454,684 raw rows, before any filtering); rows without a painting or a known emotion are counted as skipped. A
    row whose fields do not match the header is an error, or skipped with `skip_malformed_rows`."""
    counts, read, skipped, examples = {}, Counter(), Counter(), defaultdict(list)
    for source, path in csv_paths:
        name = display_path(Path(path).name)
        columns = ("art_style", "painting", "emotion")
        for line, values in read_csv_records(path, columns, columns):
            read[source] += 1
            if isinstance(values, str):
                example = f"{name} line {line}: {values}"
                if not skip_malformed_rows:
                    malformed_record(path, line, values, report, skip_malformed_rows)  # raises
                reason = MALFORMED_ROW
            else:
                raw_style, raw_painting, raw_emotion = values
                art_style, painting = nfc(raw_style.strip()), nfc(raw_painting.strip())
                emotion = VOCABULARY.match(raw_emotion)
                reason = MALFORMED_ROW if not art_style or not painting else UNKNOWN_EMOTION if emotion is None else None
                example = f"{name} line {line}: {raw_style!r} {raw_painting!r} {raw_emotion!r}"
            if reason:
                skipped[reason] += 1
                if len(examples[reason]) < 20:
                    examples[reason].append(example)
                continue
            histogram = counts.setdefault(f"{art_style}/{painting}", [0] * len(ARTEMIS_EMOTIONS))
            histogram[ARTEMIS_EMOTIONS.index(emotion)] += 1
    report.sections["histogram_rows"] = {
        "note": "emotion_histogram is computed from all raw annotations of each painting, as SEVLM did",
        "read": dict(read), "used": sum(read.values()) - sum(skipped.values()), "skipped": dict(skipped),
        "examples": dict(examples),
    }
    return counts


def assign_splits(tables, split, split_seed, report):
    """Give every painting its split: the preprocessed file's, the official one (v1.0 paintings; paintings only in
    Contrastive.csv get the hash split), or the hash split."""
    unit_splits = official_split(tables.units) if split == "official" else {}
    for painting_id, entry in tables.items.items():
        if entry["split"] is not None:
            entry["split_method"] = "preprocessed file"
            continue
        splits = [unit_splits[unit] for unit in entry["units"] if unit in unit_splits]
        if splits:
            entry["split"], entry["split_method"] = splits[0], "official"
            if len(set(splits)) > 1:
                report.warn("spellings_in_several_splits",
                            "one painting written in several Unicode forms in the CSV; the official split put the "
                            "spellings in different splits; all its rows are in the split of the first one",
                            f"{painting_id}: {sorted(set(entry['units']))} -> {splits}")
        else:
            entry["split"] = hash_split(painting_id, split_seed)
            entry["split_method"] = "hash" if split == "hash" else "hash (not in the v1.0 official split)"


def apply_v2_sample(tables, report):
    """--v2_train_set combined: in the train split, keep all contrastive rows and only the v1.0 rows of the
    same-size sample `create_parts.py` draws (over v1.0 rows of all splits, in file order)."""
    population, n = tables.population["v1"], tables.population["contrastive"]
    if n == 0:
        raise ValueError("--v2_train_set combined needs contrastive annotations: pass --contrastive_csv (or a v2.0 "
                         "preprocessed CSV whose `version` column marks them 'new').")
    sampled = v2_sample_rows(population, n)
    report.sections["v2_train_set"] = {
        "name": "combined", "v1_rows": population, "contrastive_rows": n, "sampled_v1_rows": len(sampled),
        "seed": V2_SAMPLE_SEED,
        "note": "v1.0 rows outside the sample are dropped from the train split only; validation and test keep all rows",
    }
    emptied = []
    for painting_id, entry in tables.items.items():
        if entry["split"] != "train":
            continue
        keep = [i for i, (source, ordinal) in enumerate(entry["rows"]) if source != "v1" or ordinal in sampled]
        dropped = len(entry["rows"]) - len(keep)
        if not dropped:
            continue
        if keep:
            report.drop_annotation(OUTSIDE_V2_SAMPLE, f"{painting_id}: {dropped} v1.0 rows", count=dropped)
        else:
            report.drop_item(OUTSIDE_V2_SAMPLE, dropped, painting_id)
            emptied.append(painting_id)
        for column in ("emotions", "explanations", "source", "rows"):
            entry[column] = [entry[column][i] for i in keep]
    for painting_id in emptied:
        del tables.items[painting_id]


def filter_paintings(items, max_repetition, contrastive_only, report):
    """Drop whole paintings: no valid annotation left, over the repetition limit, or (optionally) one emotion."""
    kept = {}
    for painting_id, entry in items.items():
        count = len(entry["emotions"])
        if entry["repetition"] > max_repetition:
            report.drop_item(REPETITION_FILTER, count, f"{painting_id} (repetition {entry['repetition']})")
        elif contrastive_only and count and len(set(entry["emotions"])) < 2:
            report.drop_item(CONTRASTIVE_ONLY, count, f"{painting_id} (only {entry['emotions'][0]!r})")
        else:
            kept[painting_id] = entry
    return drop_items_without_annotations(kept, report)


def warn_paintings_in_several_styles(items, report):
    """One WikiArt painting name under two art styles is two items that can land in two splits: report each."""
    styles = defaultdict(list)
    for painting_id, entry in items.items():
        styles[entry["painting"]].append(painting_id)
    for _, painting_ids in sorted(item for item in styles.items() if len(item[1]) > 1):
        splits = {items[painting_id]["split"] for painting_id in painting_ids}
        where = ", ".join(f"{painting_id} ({items[painting_id]['split']})" for painting_id in sorted(painting_ids))
        kind = "painting_in_several_styles_and_splits" if len(splits) > 1 else "painting_in_several_styles"
        report.warn(kind, "one painting name under several art styles: kept as separate items"
                    + (", in different splits (the same picture may be in train and test)" if len(splits) > 1 else ""),
                    where)


def collect_artemis(artemis_csv, contrastive_csv=None, artemis_preprocessed_csv=None, split="official",
                    split_seed=SPLIT_SEED, max_repetition=MAX_REPETITION, contrastive_only=False,
                    v2_train_set="full_combined", report=None, skip_malformed_rows=False):
    """The CSV stage: {painting_id: entry} with splits assigned, every drop counted in `report`."""
    report = report or PrepareReport({})
    report.emotions = list(ARTEMIS_EMOTIONS)
    tables = ArtemisTables(report, skip_malformed_rows)
    if artemis_preprocessed_csv:
        tables.add_preprocessed_csv(artemis_preprocessed_csv)
        if tables.population["contrastive"] and not contrastive_csv:
            raise ValueError(f"{display_path(artemis_preprocessed_csv)} holds contrastive rows (version 'new'): pass "
                             "--contrastive_csv Contrastive.csv too, so that their histograms come from the raw rows.")
        histogram_sources = [("v1", artemis_csv)] + ([("contrastive", contrastive_csv)] if contrastive_csv else [])
        counts = raw_histograms(histogram_sources, report, skip_malformed_rows)
        for painting_id, entry in list(tables.items.items()):
            histogram = counts.get(painting_id)
            if histogram is None:
                report.drop_item(NO_RAW_ANNOTATIONS, len(entry["emotions"]), f"{painting_id} (not in the raw CSV)")
                del tables.items[painting_id]
            else:
                total = sum(histogram)
                entry["histogram"] = [count / total for count in histogram]
    else:
        tables.add_raw_csv(artemis_csv, "v1", V1_COLUMNS)
        if contrastive_csv:
            tables.add_raw_csv(contrastive_csv, "contrastive", CONTRASTIVE_REQUIRED)
    assign_splits(tables, split, split_seed, report)
    items = tables.items
    if not artemis_preprocessed_csv:
        # The painting's own annotations, before the v2.0 sample thins the training rows.
        for entry in items.values():
            if entry["emotions"]:
                entry["histogram"] = emotion_histogram(entry["emotions"], ARTEMIS_EMOTIONS)
    if v2_train_set == "combined":
        apply_v2_sample(tables, report)
    items = filter_paintings(items, max_repetition, contrastive_only, report)
    check_something_kept(items, report, "the ArtEmis CSVs")
    report.sections["split_methods"] = dict(Counter(entry["split_method"] for entry in items.values()))
    warn_paintings_in_several_styles(items, report)
    return items


def build_annotation_table(artemis_csv, contrastive_csv=None, max_repetition=MAX_REPETITION, contrastive_only=False,
                           split_seed=SPLIT_SEED, report=None, split="official", artemis_preprocessed_csv=None,
                           v2_train_set="full_combined", skip_malformed_rows=False):
    """The CSV stage alone (no images): a DatasetDict with every column but `image`; drops counted in `report`."""
    report = report or PrepareReport({})
    items = collect_artemis(artemis_csv, contrastive_csv, artemis_preprocessed_csv, split, split_seed,
                            max_repetition, contrastive_only, v2_train_set, report, skip_malformed_rows)
    return build_text_splits(items, ARTEMIS_EMOTIONS, split_params(split, split_seed, max_repetition,
                                                                    contrastive_only, v2_train_set))


def split_params(split, split_seed, max_repetition, contrastive_only, v2_train_set):
    return {"split": split, "split_seed": split_seed, "max_repetition": max_repetition,
            "contrastive_only": contrastive_only, "v2_train_set": v2_train_set}


# ------------------------------------------------------------------------------------------------ image stage
def wikiart_source(wikiart_dir, items):
    """Images at <wikiart_dir>/<art_style>/<painting>.jpg, matched whatever the Unicode form or Info-ZIP escapes."""
    finder = FileFinder(wikiart_dir)

    def locate(painting_id):
        entry = items[painting_id]
        file_name = f"{entry['painting']}.jpg"
        return (os.path.join(wikiart_dir, entry["art_style"], file_name), finder.find([entry["art_style"], file_name]),
                f"{painting_id}.jpg")

    return ImageSource(locate, "--wikiart_dir", KNOWN_BAD_IMAGES)


# ------------------------------------------------------------------------------------------------------ entry
def check_options(artemis_csv, wikiart_dir, contrastive_csv, artemis_preprocessed_csv, split, max_repetition,
                  v2_train_set):
    """Everything that can be checked before reading: files exist, flags fit together."""
    check_input_file(artemis_csv, "--artemis_csv")
    if contrastive_csv:
        check_input_file(contrastive_csv, "--contrastive_csv")
    if artemis_preprocessed_csv:
        check_input_file(artemis_preprocessed_csv, "--artemis_preprocessed_csv")
    if not Path(wikiart_dir).is_dir():
        raise FileNotFoundError(
            f"--wikiart_dir {display_path(wikiart_dir)} is not a folder. Pass the folder that holds one sub-folder per "
            "art style (e.g. wikiart/Impressionism/claude-monet_water-lilies-1916.jpg)."
        )
    if split not in SPLIT_METHODS:
        raise ValueError(f"--split must be one of {SPLIT_METHODS}, got {split!r}.")
    if v2_train_set not in V2_TRAIN_SETS:
        raise ValueError(f"--v2_train_set must be one of {V2_TRAIN_SETS}, got {v2_train_set!r}.")
    if v2_train_set == "combined" and not contrastive_csv:
        raise ValueError("--v2_train_set combined needs --contrastive_csv Contrastive.csv.")
    if max_repetition != MAX_REPETITION and (split != "hash" or artemis_preprocessed_csv):
        raise ValueError(f"--max_repetition {max_repetition} works with --split hash on the raw CSV only: the official "
                         "split (and its preprocessed CSV) sets paintings with repetition >= 41 aside itself.")


def prepare_artemis(
    artemis_csv,
    wikiart_dir,
    output_dir,
    contrastive_csv=None,
    artemis_preprocessed_csv=None,
    split="official",
    v2_train_set="full_combined",
    max_repetition=MAX_REPETITION,
    max_image_side=MAX_IMAGE_SIDE,
    contrastive_only=False,
    skip_missing_images=False,
    skip_malformed_rows=False,
    split_seed=SPLIT_SEED,
    parquet=False,
    num_proc=1,
    overwrite=False,
):
    """Build and save the ArtEmis DatasetDict (see the module docstring); returns it, loaded from `output_dir`.

    Writes into `output_dir` the DatasetDict (save_to_disk), `prepare_report.json` and, with `parquet=True`, `hub/`
    (Parquet shards with embedded images and a dataset card), through a staging folder: an earlier corpus there is
    replaced only by a complete new one, and nothing else in the folder is touched. A failed run writes
    `<output_dir>.prepare_report.failed.json`. ArtEmis's annotations are kept as published: an annotation that
    repeats another of its painting is kept and counted under the report's warnings (`duplicate_annotation`).
    """
    check_options(artemis_csv, wikiart_dir, contrastive_csv, artemis_preprocessed_csv, split, max_repetition,
                  v2_train_set)
    report = PrepareReport({
        "artemis_csv": str(artemis_csv),
        "contrastive_csv": str(contrastive_csv) if contrastive_csv else None,
        "artemis_preprocessed_csv": str(artemis_preprocessed_csv) if artemis_preprocessed_csv else None,
        "wikiart_dir": str(wikiart_dir),
        "split": "preprocessed file" if artemis_preprocessed_csv else split,
        "split_seed": split_seed,
        "split_fractions": dict(SPLIT_FRACTIONS),
        "v2_train_set": v2_train_set if contrastive_csv else None,
        "max_repetition": max_repetition,
        "max_image_side": max_image_side,
        "contrastive_only": contrastive_only,
        "skip_missing_images": skip_missing_images,
        "skip_malformed_rows": skip_malformed_rows,
        "jpeg_quality": JPEG_QUALITY,
    })

    def text_stage():
        items = collect_artemis(artemis_csv, contrastive_csv, artemis_preprocessed_csv, split, split_seed,
                                max_repetition, contrastive_only, v2_train_set, report, skip_malformed_rows)
        params = split_params(split, split_seed, max_repetition, contrastive_only, v2_train_set)
        return build_text_splits(items, ARTEMIS_EMOTIONS, params), wikiart_source(wikiart_dir, items)

    return run_preparation(output_dir, report, text_stage, max_image_side=max_image_side, num_proc=num_proc,
                           skip_missing_images=skip_missing_images, parquet=parquet, overwrite=overwrite,
                           card_text=ARTEMIS_CARD,
                           split_advice="ArtEmis's splits are those of its protocol; check the CSVs given.")
