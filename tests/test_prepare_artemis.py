"""prepare_artemis: tiny ArtEmis CSVs and WikiArt folders written into tmp_path.

The full-size run (455k rows, 80k images) is `python bench/bench_prepare.py`.
"""

import csv
import filecmp
import json
import os
import shlex
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from datasets import disable_progress_bars, load_dataset, load_from_disk
from helpers import REPO_ROOT
from PIL import Image

from configuration_sevlm import ARTEMIS_EMOTIONS
from dataset_scripts.prepare_artemis import build_parser, main, parse_args
from sevlm.data.artemis import (
    FEATURES,
    KNOWN_BAD_IMAGES,
    SPLIT_FRACTIONS,
    VOCABULARY,
    build_annotation_table,
    official_split,
    prepare_artemis,
    train_test_split,
    v2_sample_rows,
)
from sevlm.data.corpus import PrepareReport, emotion_histogram, failed_report_path, hash_split
from sevlm.data.lookalike import write_artemis_shaped
from sevlm.data.settings import REPORT_NAME

disable_progress_bars()

V1_HEADER = ["art_style", "painting", "emotion", "utterance", "repetition"]
CONTRASTIVE_HEADER = ["art_style", "painting", "emotion", "utterance", "repetition", "anchor_art_style", "anchor_painting"]
PREPROCESSED_HEADER = ["art_style", "painting", "emotion", "utterance", "repetition", "split", "tokens", "tokens_len",
                       "utterance_spelled", "tokens_encoded", "emotion_label"]
CAFE = "claude-monet_café-de-paris-1880"  # accented: NFC and NFD spell it differently
MANET = "édouard-manet_olympia-1863"


# ------------------------------------------------------------------------------------------------ helpers
def nfd(text):
    return unicodedata.normalize("NFD", text)


def write_csv(path, header, rows, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jpeg(path, size=(90, 60), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")
    return path


def plain_paintings(count):
    """(style, name, emotions) for `count` ASCII-named paintings with 2 annotations each."""
    return [("Romanticism", f"painter_work-{i:03d}", ["awe", "fear"] if i % 2 else ["sadness", "sadness"]) for i in range(count)]


@pytest.fixture()
def corpus(tmp_path):
    """A small WikiArt folder and v1.0 CSV exercising every drop reason (except missing/unreadable images)."""
    wikiart = tmp_path / "wikiart"
    rows = []
    for i, (style, name, emotions) in enumerate(plain_paintings(30)):
        write_jpeg(wikiart / style / f"{name}.jpg", seed=i)
        rows += [[style, name, emotion, f"the {name} makes me feel {emotion}", 5] for emotion in emotions]
    # CSV in NFC, file on disk in NFD.
    write_jpeg(wikiart / "Impressionism" / f"{nfd(CAFE)}.jpg", size=(1000, 500), seed=100)
    rows += [["Impressionism", CAFE, "contentment", "the cafe is calm", 5],
             ["Impressionism", CAFE, "contentment", "a quiet evening", 5],
             ["Impressionism", CAFE, "excitement", "the lively crowd", 5]]
    # CSV in NFD, file on disk in NFC.
    write_jpeg(wikiart / "Realism" / f"{MANET}.jpg", size=(40, 80), seed=101)
    rows += [["Realism", nfd(MANET), "disgust", "the pale body is unsettling", 5],
             ["Realism", nfd(MANET), "awe", "a bold stare", 5]]
    # Invalid rows: unknown emotion, empty utterance, a painting over the repetition limit, a malformed row.
    rows += [["Romanticism", "painter_work-000", "happiness", "an unknown label", 5],
             ["Romanticism", "painter_work-001", "awe", "   ", 5]]
    write_jpeg(wikiart / "Baroque" / "crowded_painting.jpg", seed=102)
    rows += [["Baroque", "crowded_painting", "awe", f"annotation {k}", 41] for k in range(3)]
    rows += [["", "no_style", "awe", "no art style", 5]]
    csv_path = write_csv(tmp_path / "artemis_dataset_release_v0.csv", V1_HEADER, rows)
    return {"csv": csv_path, "wikiart": wikiart, "rows": len(rows)}


def names(dataset, row):
    return [dataset.features["emotions"].feature.int2str(value) for value in row["emotions"]]


def all_rows(dataset_dict):
    rows = {}
    for split, dataset in dataset_dict.items():
        for row in dataset.select_columns(["painting_id", "emotions", "explanations", "emotion_histogram", "source"]):
            rows[row["painting_id"]] = {**row, "emotions": names(dataset, row), "split": split}
    return rows


def read_report(output_dir):
    return json.loads((Path(output_dir) / REPORT_NAME).read_text(encoding="utf-8"))


def read_failed_report(output_dir):
    return json.loads(failed_report_path(output_dir).read_text(encoding="utf-8"))


def assert_nothing_vanished(report):
    """Every annotation read is either kept or dropped under exactly one reason."""
    annotations = report["annotations"]
    assert sum(annotations["read"].values()) == annotations["kept"] + sum(annotations["dropped"].values())


def split_ids(dataset_dict):
    return {split: set(dataset["painting_id"]) for split, dataset in dataset_dict.items()}


# ----------------------------------------------------------------------------------- schema, report, images
def test_schema_histogram_and_unicode(corpus, tmp_path):
    result = prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out")
    assert set(result) == {"train", "validation", "test"}
    for dataset in result.values():
        assert dataset.features == FEATURES
        assert dataset.features["emotions"].feature.names == list(ARTEMIS_EMOTIONS)
    rows = all_rows(result)
    # Both NFC/NFD directions resolved; the ids are NFC whatever the CSV held.
    assert f"Impressionism/{CAFE}" in rows and f"Realism/{MANET}" in rows
    cafe = rows[f"Impressionism/{CAFE}"]
    assert cafe["emotions"] == ["contentment", "contentment", "excitement"]
    assert cafe["explanations"] == ["the cafe is calm", "a quiet evening", "the lively crowd"]
    assert cafe["source"] == ["v1"] * 3
    expected = [0.0] * 9
    expected[ARTEMIS_EMOTIONS.index("contentment")] = 2 / 3
    expected[ARTEMIS_EMOTIONS.index("excitement")] = 1 / 3
    assert cafe["emotion_histogram"] == pytest.approx(expected, abs=1e-6)
    for row in rows.values():
        assert sum(row["emotion_histogram"]) == pytest.approx(1.0, abs=1e-5)
        assert len(row["emotions"]) == len(row["explanations"]) == len(row["source"])
    # Large images shrink to --max_image_side on the long side with the aspect kept; small ones keep their size.
    small = prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "small", max_image_side=100)
    images = {row["painting_id"]: row["image"] for split in small.values() for row in split}
    assert images[f"Impressionism/{CAFE}"].size == (100, 50)
    assert images[f"Realism/{MANET}"].size == (40, 80)
    assert all(image.mode == "RGB" and image.format == "JPEG" for image in images.values())


def test_report_counts_every_drop(corpus, tmp_path):
    prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out")
    report = read_report(tmp_path / "out")
    assert report["status"] == "ok" and report["emotions"] == list(ARTEMIS_EMOTIONS)
    assert report["annotations"]["read"] == {"v1": corpus["rows"]}
    dropped = report["annotations"]["dropped"]
    assert dropped == {"unknown_emotion": 1, "empty_utterance": 1, "repetition_filter": 3, "malformed_row": 1}
    assert report["paintings"]["dropped"] == {"repetition_filter": 1}
    assert report["annotations"]["kept"] == 60 + 3 + 2
    assert report["paintings"]["kept"] == 32
    assert_nothing_vanished(report)
    assert any("happiness" in example and "line" in example for example in report["examples"]["unknown_emotion"])
    assert sum(split["paintings"] for split in report["splits"].values()) == 32
    assert report["split_methods"] == {"official": 32}
    assert set(report["seconds"]) >= {"csv_stage", "image_stage", "total"}


def test_repetition_limit(corpus, tmp_path):
    # The official split sets repetition >= 41 aside itself: another limit needs the hash split.
    with pytest.raises(ValueError, match="--max_repetition 41 works with --split hash"):
        prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out", max_repetition=41)
    result = prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out", max_repetition=41, split="hash")
    assert "Baroque/crowded_painting" in all_rows(result)
    assert "repetition_filter" not in read_report(tmp_path / "out")["annotations"]["dropped"]


def test_missing_image_stops_with_a_clear_error(corpus, tmp_path):
    (corpus["wikiart"] / "Romanticism" / "painter_work-003.jpg").unlink()
    with pytest.raises(FileNotFoundError) as raised:
        prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out")
    message = str(raised.value)
    assert "1 of 32 items have missing images" in message
    assert "Romanticism/painter_work-003.jpg" in message and "--skip_missing_images" in message
    report = read_failed_report(tmp_path / "out")
    assert report["status"] == "failed" and "painter_work-003" in report["error"]
    assert not (tmp_path / "out").exists()


def test_corrupt_image_stops_with_a_clear_error(corpus, tmp_path):
    path = corpus["wikiart"] / "Romanticism" / "painter_work-004.jpg"
    path.write_bytes(path.read_bytes()[:300])  # a truncated JPEG: header fine, data cut
    with pytest.raises(ValueError, match=r"1 of 32 items have unreadable images:\n  .*painter_work-004\.jpg"):
        prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out")


def test_skip_missing_and_unreadable_images_reports_them(corpus, tmp_path):
    (corpus["wikiart"] / "Romanticism" / "painter_work-003.jpg").unlink()
    (corpus["wikiart"] / "Romanticism" / "painter_work-004.jpg").write_bytes(b"not a jpeg at all")
    # Also drop every test painting's image: the report must list each one (the test set changes).
    test_ids = set(build_annotation_table(corpus["csv"])["test"]["painting_id"])
    assert test_ids
    for painting_id in test_ids:
        style, name = painting_id.split("/")
        for file in (corpus["wikiart"] / style).iterdir():
            if unicodedata.normalize("NFC", file.name) == f"{name}.jpg" and "004" not in name:
                file.unlink()
    result = prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out", skip_missing_images=True, num_proc=2)
    rows = all_rows(result)
    assert "Romanticism/painter_work-003" not in rows and "Romanticism/painter_work-004" not in rows
    assert len(result["test"]) == 0
    report = read_report(tmp_path / "out")
    assert report["paintings"]["dropped"]["unreadable_image"] == 1
    missing = test_ids - {"Romanticism/painter_work-004"} | {"Romanticism/painter_work-003"}
    assert report["paintings"]["dropped"]["missing_image"] == len(missing)
    assert any("painter_work-004" in example for example in report["examples"]["unreadable_image"])
    assert {item["painting_id"] for item in report["dropped_test_paintings"]} == test_ids
    assert_nothing_vanished(report)


# ------------------------------------------------------------------------------------------------- splits
def test_official_split_equals_scikit_learn():
    """make_train_test_val_splits as ArtEmis calls it, against scikit-learn itself, on 2,500 ids."""
    from sklearn.model_selection import train_test_split as sklearn_split

    rng = np.random.default_rng(0)
    units = [f"{['Baroque', 'Realism', 'Ukiyo_e'][i % 3]}painter-{rng.integers(1e9)}_work-{i}" for i in range(2500)]
    units += [nfd(f"Impressionism{CAFE}-{i}") for i in range(10)] + [f"Rococojoaquã\xadn-sorolla_{i}" for i in range(5)]
    ids = np.array(units, dtype=object)
    ids = np.unique(ids)
    ids.sort()
    train, rest = sklearn_split(ids, test_size=0.05 + 0.1, random_state=2021)
    validation, test = sklearn_split(rest, test_size=round(0.1 * len(ids)), random_state=2021)
    ours = official_split(units + units[:7])  # duplicates: the unit list is made unique first
    assert {unit for unit, split in ours.items() if split == "train"} == set(train)
    assert {unit for unit, split in ours.items() if split == "validation"} == set(validation)
    assert {unit for unit, split in ours.items() if split == "test"} == set(test)
    # The order inside each part too (train_test_split returns the permutation's order).
    ours_train, ours_rest = train_test_split(sorted(set(units)), 0.05 + 0.1, 2021)
    assert ours_train == list(train) and ours_rest == list(rest)


def test_official_split_sizes_on_artemis():
    """79,330 ids (ArtEmis v1.0 after setting the 701 high-coverage paintings aside) -> 67,430 / 3,967 / 7,933."""
    splits = official_split([f"id-{i:05d}" for i in range(79330)])
    counts = {split: sum(1 for value in splits.values() if value == split) for split in ("train", "validation", "test")}
    assert counts == {"train": 67430, "validation": 3967, "test": 7933}


def test_official_split_of_a_csv_uses_raw_strings_and_sets_rest_aside(tmp_path):
    """The split units are art_style + painting as written (no strip, no normalisation), rows with repetition >= 41
    are not units, and the whole painting follows its unit."""
    from sklearn.model_selection import train_test_split as sklearn_split

    rows = []
    for i in range(150):
        name = nfd(f"édouard-work-{i}") if i % 10 == 0 else f"work-{i}"
        repetition = 45 if i % 25 == 0 else 5
        rows += [[["Baroque", "Realism"][i % 2], name, "awe", f"text {k}", repetition] for k in range(2)]
    path = write_csv(tmp_path / "v1.csv", V1_HEADER, rows)
    table = build_annotation_table(path)
    units = sorted({style + name for style, name, _, _, repetition in rows if repetition < 41})
    train, rest = sklearn_split(np.array(units, dtype=object), test_size=0.05 + 0.1, random_state=2021)
    validation, test = sklearn_split(rest, test_size=round(0.1 * len(units)), random_state=2021)
    expected = {unicodedata.normalize("NFC", unit.replace("Baroque", "Baroque/", 1).replace("Realism", "Realism/", 1)): split
                for split, members in (("train", train), ("validation", validation), ("test", test)) for unit in members}
    got = {painting_id: split for split, ids in split_ids(table).items() for painting_id in ids}
    assert got == expected
    assert len(got) == 150 - 6  # the 6 high-coverage paintings are set aside


def test_hash_split_is_deterministic_and_byte_identical(corpus, tmp_path):
    first = prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "first", num_proc=2, split="hash")
    prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "second", split="hash")
    # Byte-identical saved data (arrow files, dataset_info.json, state.json), with or without parallel workers.
    for split in first:
        comparison = filecmp.dircmp(tmp_path / "first" / split, tmp_path / "second" / split)
        assert comparison.left_list == comparison.right_list
        _, mismatch, errors = filecmp.cmpfiles(tmp_path / "first" / split, tmp_path / "second" / split,
                                               comparison.common_files, shallow=False)
        assert mismatch == [] and errors == []
    ids = split_ids(first)
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"] and not ids["validation"] & ids["test"]
    for split, painting_ids in ids.items():
        assert all(hash_split(painting_id) == split for painting_id in painting_ids)
    other = prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "other", split_seed=7, split="hash")
    assert split_ids(other) != ids


def test_hash_split_fractions_and_stability():
    painting_ids = [f"Style{i % 27}/painting-{i}" for i in range(20000)]
    splits = [hash_split(painting_id, seed=2021) for painting_id in painting_ids]
    for split, fraction in SPLIT_FRACTIONS:
        assert splits.count(split) / len(splits) == pytest.approx(fraction, abs=0.01)
    assert splits == [hash_split(painting_id, seed=2021) for painting_id in painting_ids]
    assert splits != [hash_split(painting_id, seed=2022) for painting_id in painting_ids]


# ---------------------------------------------------------------------------------------------------- v2.0
def test_v2_full_combined_merge_keeps_v1_splits(corpus, tmp_path):
    wikiart = corpus["wikiart"]
    write_jpeg(wikiart / "Romanticism" / "painter_new-work.jpg", seed=200)
    contrastive = write_csv(tmp_path / "Contrastive.csv", CONTRASTIVE_HEADER, [
        # NFD names (as in the v2.0 release) merge into the NFC v1.0 painting.
        [nfd("Impressionism"), nfd(CAFE), "sadness", "the empty chairs feel lonely", "", "Impressionism", "x"],
        ["Romanticism", "painter_new-work", "anger", "the red storm looks furious", "", "Romanticism", "y"],
        ["Romanticism", "painter_new-work", "awe", "a vast sky", "", "Romanticism", "y"],
        ["Romanticism", "painter_new-work", "Anger", "", "", "Romanticism", "y"],
    ])
    result = prepare_artemis(corpus["csv"], wikiart, tmp_path / "out", contrastive_csv=contrastive)
    rows = all_rows(result)
    cafe = rows[f"Impressionism/{CAFE}"]
    assert cafe["emotions"] == ["contentment", "contentment", "excitement", "sadness"]
    assert cafe["source"] == ["v1", "v1", "v1", "contrastive"]
    assert cafe["explanations"][-1] == "the empty chairs feel lonely"
    assert cafe["emotion_histogram"][ARTEMIS_EMOTIONS.index("sadness")] == pytest.approx(0.25)
    new = rows["Romanticism/painter_new-work"]
    assert new["source"] == ["contrastive", "contrastive"] and new["emotions"] == ["anger", "awe"]
    # A painting only in Contrastive.csv is not in the official v1.0 split: it gets the hash split.
    assert new["split"] == hash_split("Romanticism/painter_new-work")
    report = read_report(tmp_path / "out")
    assert report["split_methods"] == {"official": 32, "hash (not in the v1.0 official split)": 1}
    assert report["annotations"]["read"] == {"v1": corpus["rows"], "contrastive": 4}
    assert report["annotations"]["dropped"]["empty_utterance"] == 2
    assert_nothing_vanished(report)
    # Every v1.0 painting is in the same split in v1.0 and in the combined corpus.
    v1 = prepare_artemis(corpus["csv"], wikiart, tmp_path / "v1")
    for split, dataset in v1.items():
        assert set(dataset["painting_id"]) <= set(result[split]["painting_id"])


def test_v2_combined_sample_size_and_seed(tmp_path):
    """--v2_train_set combined: all contrastive rows + the v1.0 rows of RandomState(42).permutation(N)[:n], which
    is pandas' DataFrame.sample(n, random_state=42); only the train split is thinned."""
    import pandas

    wikiart = tmp_path / "wikiart"
    v1_rows, contrastive_rows = [], []
    for i in range(80):
        write_jpeg(wikiart / "Baroque" / f"work-{i}.jpg", size=(8, 8), seed=i)
        v1_rows += [["Baroque", f"work-{i}", ARTEMIS_EMOTIONS[(i + k) % 9], f"v1 text {i}-{k}", 5] for k in range(5)]
    for i in range(20):
        write_jpeg(wikiart / "Realism" / f"new-{i}.jpg", size=(8, 8), seed=100 + i)
        contrastive_rows += [["Realism", f"new-{i}", "awe", f"contrastive text {i}-{k}", 5, "Baroque", "work-1"]
                             for k in range(3)]
    v1_csv = write_csv(tmp_path / "v1.csv", V1_HEADER, v1_rows)
    contrastive_csv = write_csv(tmp_path / "Contrastive.csv", CONTRASTIVE_HEADER, contrastive_rows)
    sampled = v2_sample_rows(len(v1_rows), len(contrastive_rows))
    assert sampled == set(pandas.DataFrame({"row": range(len(v1_rows))}).sample(len(contrastive_rows), random_state=42)["row"])
    assert len(sampled) == 60

    full = prepare_artemis(v1_csv, wikiart, tmp_path / "full", contrastive_csv=contrastive_csv)
    combined = prepare_artemis(v1_csv, wikiart, tmp_path / "combined", contrastive_csv=contrastive_csv,
                               v2_train_set="combined")
    texts = lambda dataset, source: {x for row in dataset for x, s in zip(row["explanations"], row["source"]) if s == source}  # noqa: E731
    expected_v1 = {v1_rows[i][3] for i in sampled} & texts(full["train"], "v1")
    assert texts(combined["train"], "v1") == expected_v1
    assert texts(combined["train"], "contrastive") == texts(full["train"], "contrastive")
    for split in ("validation", "test"):
        assert combined[split]["explanations"] == full[split]["explanations"]
    report = read_report(tmp_path / "combined")
    assert report["v2_train_set"]["sampled_v1_rows"] == 60 and report["v2_train_set"]["seed"] == 42
    assert "no_valid_annotations" not in report["paintings"]["dropped"]  # each painting counted under one reason
    assert report["annotations"]["dropped"]["outside_v2_sample"] == len(texts(full["train"], "v1")) - len(expected_v1)
    assert_nothing_vanished(report)
    # Histograms describe each painting's annotations before the sample.
    by_id = {row["painting_id"]: row["emotion_histogram"] for row in full["train"]}
    assert all(row["emotion_histogram"] == by_id[row["painting_id"]] for row in combined["train"])
    with pytest.raises(ValueError, match="needs --contrastive_csv"):
        prepare_artemis(v1_csv, wikiart, tmp_path / "x", v2_train_set="combined")


# ---------------------------------------------------------------------------------------- preprocessed CSV
def preprocessed_fixture(tmp_path):
    """Raw CSV + a preprocessed CSV whose split, text and rows differ from the raw file in checkable ways."""
    wikiart = tmp_path / "wikiart"
    raw, preprocessed = [], []
    splits = ["train", "val", "test", "train", "rest"]
    for i in range(10):
        name = CAFE + f"-{i}" if i == 3 else f"work-{i}"
        write_jpeg(wikiart / "Impressionism" / f"{name}.jpg", size=(8, 8), seed=i)
        repetition = 45 if splits[i % 5] == "rest" else 5
        emotions = ["awe", "awe", "fear", "sadness", "awe"]
        for k, emotion in enumerate(emotions):
            raw.append(["Impressionism", name, emotion, f"Raw Text, {i}-{k}!", repetition])
            if k == 4:
                continue  # dropped by the preprocessing (too short / too long): still counts in the histogram
            # The preprocessed file spells the name in NFD (as ArtEmis v2.0 writes it).
            preprocessed.append(["Impressionism", nfd(name), emotion, f"Raw Text, {i}-{k}!", repetition, splits[i % 5],
                                 "[]", 3, f"spelled text {i} {k}", "[]", ARTEMIS_EMOTIONS.index(emotion)])
    raw_csv = write_csv(tmp_path / "artemis_dataset_release_v0.csv", V1_HEADER, raw)
    pre_csv = write_csv(tmp_path / "artemis_preprocessed.csv", PREPROCESSED_HEADER, preprocessed)
    return raw_csv, pre_csv, wikiart


def test_preprocessed_csv_gives_split_text_and_raw_histograms(tmp_path):
    raw_csv, pre_csv, wikiart = preprocessed_fixture(tmp_path)
    result = prepare_artemis(raw_csv, wikiart, tmp_path / "out", artemis_preprocessed_csv=pre_csv)
    rows = all_rows(result)
    expected_splits = {"train": "train", "val": "validation", "test": "test"}
    for i in range(10):
        name = CAFE + f"-{i}" if i == 3 else f"work-{i}"
        split = ["train", "val", "test", "train", "rest"][i % 5]
        painting_id = f"Impressionism/{name}"
        if split == "rest":
            assert painting_id not in rows
            continue
        row = rows[painting_id]
        assert row["split"] == expected_splits[split]
        assert row["explanations"] == [f"spelled text {i} {k}" for k in range(4)]
        assert row["emotions"] == ["awe", "awe", "fear", "sadness"]
        # From all 5 raw rows (3 awe), not from the 4 kept ones (2 awe).
        assert row["emotion_histogram"][ARTEMIS_EMOTIONS.index("awe")] == pytest.approx(0.6)
    report = read_report(tmp_path / "out")
    assert report["annotations"]["read"] == {"v1": 40}
    assert report["annotations"]["dropped"] == {"repetition_filter": 8}
    assert report["histogram_rows"]["used"] == 50
    assert report["split_methods"] == {"preprocessed file": 8}
    assert_nothing_vanished(report)


def test_preprocessed_v2_file_with_version_column(tmp_path):
    """ArtEmis v2.0's preprocessed full_combined CSV: `version` old/new gives the source; combined samples over the
    `old` rows in file order."""
    raw_csv, _, wikiart = preprocessed_fixture(tmp_path)
    header = PREPROCESSED_HEADER + ["version"]
    rows, contrastive = [], []
    old_names = [f"work-{i}" for i in (0, 1, 2, 4, 5, 6)]  # in the raw CSV, all in its train split
    for name in old_names:
        rows.append(["Impressionism", name, "awe", "", 5, "train", "[]", 5, f"old text {name}", "[]", 1, "old"])
    for i in range(2):
        write_jpeg(wikiart / "Realism" / f"new-{i}.jpg", size=(8, 8), seed=50 + i)
        rows.append(["Realism", f"new-{i}", "anger", "", 5, "train", "[]", 5, f"new text {i}", "[]", 4, "new"])
        contrastive.append(["Realism", f"new-{i}", "anger", f"raw new {i}", 5, "Impressionism", "work-1"])
    pre_csv = write_csv(tmp_path / "full_combined.csv", header, rows)
    contrastive_csv = write_csv(tmp_path / "Contrastive.csv", CONTRASTIVE_HEADER, contrastive)
    with pytest.raises(ValueError, match="pass --contrastive_csv"):
        build_annotation_table(raw_csv, artemis_preprocessed_csv=pre_csv)
    table = build_annotation_table(raw_csv, contrastive_csv=contrastive_csv, artemis_preprocessed_csv=pre_csv,
                                   v2_train_set="combined")
    train = {row["painting_id"]: row for row in table["train"]}
    assert train["Realism/new-0"]["source"] == ["contrastive"]
    sampled = np.random.RandomState(42).permutation(6)[:2]
    assert {pid for pid, row in train.items() if row["source"] == ["v1"]} == {f"Impressionism/{old_names[i]}" for i in sampled}


# ------------------------------------------------------------------------------------ real-download problems
def test_infozip_escaped_file_names_are_found(tmp_path):
    """An archive unpacked with Info-ZIP may store `ã` as `#U00e3`; WikiArt's mojibake names hold U+00AD too."""
    mojibake = "joaquã\xadn-sorolla_portrait-of-antonio-elegido-1893"
    wikiart = tmp_path / "wikiart"
    write_jpeg(wikiart / "Impressionism" / "joaqu#U00e3#U00adn-sorolla_portrait-of-antonio-elegido-1893.jpg", seed=1)
    write_jpeg(wikiart / "Impressionism" / "fr#U00e9d#U00e9ric-bazille_work.jpg", seed=2)
    rows = [["Impressionism", mojibake, "awe", "a fine portrait", 5], ["Impressionism", "frédéric-bazille_work", "awe", "ok", 5]]
    result = prepare_artemis(write_csv(tmp_path / "v1.csv", V1_HEADER, rows), wikiart, tmp_path / "out", split="hash")
    assert set().union(*split_ids(result).values()) == {f"Impressionism/{mojibake}", "Impressionism/frédéric-bazille_work"}


def test_known_bad_downloads_are_named_with_what_to_do(tmp_path):
    wikiart = tmp_path / "wikiart"
    rows = []
    for relative in KNOWN_BAD_IMAGES:
        style, file_name = relative.split("/")
        rows.append([style, file_name[:-4], "awe", "a painting", 5])
    write_jpeg(wikiart / "Baroque" / "other.jpg")
    rows.append(["Baroque", "other", "awe", "fine", 5])
    csv_path = write_csv(tmp_path / "v1.csv", V1_HEADER, rows)
    # The Rembrandt is missing.
    vangogh = wikiart / "Post_Impressionism" / "vincent-van-gogh_l-arlesienne-portrait-of-madame-ginoux-1890.jpg"
    vangogh.parent.mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as raised:
        prepare_artemis(csv_path, wikiart, tmp_path / "out")
    message = str(raised.value)
    assert "Known problem of the public download: Baroque/rembrandt_woman-standing-with-raised-hands.jpg" in message
    assert "archive.org" in message and "wikiart.org" in message
    # The van Gogh is broken (a truncated file, as in ArtGAN's wikiart.zip).
    write_jpeg(wikiart / "Baroque" / "rembrandt_woman-standing-with-raised-hands.jpg")
    vangogh.write_bytes(b"\xff\xd8\xff\xe0 broken")
    with pytest.raises(ValueError) as raised:
        prepare_artemis(csv_path, wikiart, tmp_path / "out")
    assert "madame-ginoux-1890.jpg: broken in the wikiart.zip distributed with ArtGAN" in str(raised.value)
    prepare_artemis(csv_path, wikiart, tmp_path / "out", skip_missing_images=True)
    report = read_report(tmp_path / "out")
    assert any("ArtGAN" in note for note in report["known_problems_found"])


# ----------------------------------------------------------------------------------------- output folders
def test_output_dir_is_not_overwritten_silently(corpus, tmp_path):
    prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out")
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out")
    prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out", overwrite=True)
    # A folder of one's own takes the corpus beside its files; a file in the way is never replaced.
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    prepare_artemis(corpus["csv"], corpus["wikiart"], stranger)
    prepare_artemis(corpus["csv"], corpus["wikiart"], stranger, overwrite=True, max_image_side=50)
    assert (stranger / "notes.txt").read_text() == "keep me" and read_report(stranger)["inputs"]["max_image_side"] == 50
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "prepare_report.json").write_text("my report")
    with pytest.raises(FileExistsError, match="prepare_report.json, which this prepared corpus did not write"):
        prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "taken", overwrite=True)
    assert (tmp_path / "taken" / "prepare_report.json").read_text() == "my report"


def test_overwrite_keeps_the_old_result_until_the_new_one_is_complete(corpus, tmp_path):
    out = tmp_path / "out"
    old = prepare_artemis(corpus["csv"], corpus["wikiart"], out)
    before = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    # A mistyped CSV path, a mistyped image folder, then a failure in the image stage: the old result survives each.
    with pytest.raises(FileNotFoundError, match="--artemis_csv"):
        prepare_artemis(tmp_path / "typo.csv", corpus["wikiart"], out, overwrite=True)
    with pytest.raises(FileNotFoundError, match="--wikiart_dir"):
        prepare_artemis(corpus["csv"], tmp_path / "wikiartt", out, overwrite=True)
    (corpus["wikiart"] / "Romanticism" / "painter_work-005.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="painter_work-005"):
        prepare_artemis(corpus["csv"], corpus["wikiart"], out, overwrite=True)
    after = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before
    assert read_failed_report(out)["status"] == "failed"
    assert [p.name for p in tmp_path.iterdir() if "staging" in p.name or p.name.startswith(".prepare")] == []
    assert load_from_disk(str(out))["train"]["painting_id"] == old["train"]["painting_id"]
    # A successful run replaces it and removes the stale failure report.
    new = prepare_artemis(corpus["csv"], corpus["wikiart"], out, overwrite=True, skip_missing_images=True)
    assert sum(map(len, new.values())) == 31 and not failed_report_path(out).exists()


def test_overwrite_through_a_symlinked_output_folder(corpus, tmp_path):
    real = tmp_path / "disk" / "artemis"
    prepare_artemis(corpus["csv"], corpus["wikiart"], real)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    result = prepare_artemis(corpus["csv"], corpus["wikiart"], link, overwrite=True, max_image_side=50)
    assert link.is_symlink() and os.path.realpath(link) == str(real)
    assert max(result["train"][0]["image"].size) <= 50
    assert read_report(real)["inputs"]["max_image_side"] == 50


def test_file_names_that_are_not_utf8_in_messages_and_report(corpus, tmp_path):
    """A WikiArt copy in a folder whose name is not valid UTF-8 (old archives, Windows copies)."""
    odd = tmp_path / os.fsdecode(b"wiki\xe9art")
    corpus["wikiart"].rename(odd)
    (odd / "Romanticism" / "painter_work-003.jpg").unlink()
    with pytest.raises(FileNotFoundError) as raised:
        prepare_artemis(corpus["csv"], odd, tmp_path / "out")
    assert "wiki\\xe9art" in str(raised.value)
    assert "wiki\\xe9art" in read_failed_report(tmp_path / "out")["error"]
    prepare_artemis(corpus["csv"], odd, tmp_path / "out", skip_missing_images=True)
    report = read_report(tmp_path / "out")
    assert any("wiki\\xe9art" in example for example in report["examples"]["missing_image"])


# ----------------------------------------------------------------------------------------------- bad input
def test_bad_csv_header_names_the_file(tmp_path):
    bad = write_csv(tmp_path / "bad.csv", ["style", "painting", "emotion"], [["a", "b", "awe"]])
    with pytest.raises(ValueError, match=r"bad\.csv: missing column\(s\) \['art_style', 'utterance', 'repetition'\]"):
        build_annotation_table(bad)


def test_header_only_csv_is_an_error(corpus, tmp_path):
    empty = write_csv(tmp_path / "empty.csv", V1_HEADER, [])
    with pytest.raises(ValueError, match=r"empty\.csv holds no data rows"):
        prepare_artemis(empty, corpus["wikiart"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # Rows that all fail the checks are an error too, not an empty dataset.
    useless = write_csv(tmp_path / "useless.csv", V1_HEADER, [["Baroque", "x", "happiness", "text", 5]])
    with pytest.raises(ValueError, match="No annotation of the ArtEmis CSVs survived.*unknown_emotion 1"):
        prepare_artemis(useless, corpus["wikiart"], tmp_path / "out")


def test_non_utf8_csv_names_file_line_and_encoding(tmp_path):
    rows = [["Baroque", f"work-{i}", "awe", "fine", 5] for i in range(5)] + [["Baroque", "work-é", "awe", "café", 5]]
    path = write_csv(tmp_path / "latin1.csv", V1_HEADER, rows, encoding="latin-1")
    with pytest.raises(ValueError, match=r"latin1\.csv line 7: byte 0xe9 .* not valid UTF-8\. The file must be UTF-8"):
        build_annotation_table(path)


def test_bad_repetition_values_are_malformed_rows(tmp_path):
    rows = [["Baroque", f"work-{i}", "awe", "fine", 5] for i in range(4)]
    rows += [["Baroque", "inf", "awe", "x", "inf"], ["Baroque", "huge", "awe", "x", "1e400"],
             ["Baroque", "empty", "awe", "x", ""], ["Baroque", "half", "awe", "x", "5.5"], ["Baroque", "neg", "awe", "x", "-3"]]
    report = PrepareReport({})
    table = build_annotation_table(write_csv(tmp_path / "v1.csv", V1_HEADER, rows), report=report)
    assert sum(map(len, table.values())) == 4
    assert report.dropped_annotations == {"malformed_row": 5}
    assert any("'1e400'" in example for example in report.examples["malformed_row"])


def test_rows_whose_fields_do_not_match_the_header_stop_or_are_counted(tmp_path):
    rows = [["Baroque", f"work-{i}", "awe", "fine", 5] for i in range(4)]
    rows.insert(2, ["Baroque", "work-1", "fear", "dark", " cold", 5])  # an unquoted comma: 6 fields
    path = write_csv(tmp_path / "v1.csv", V1_HEADER, rows)
    with pytest.raises(ValueError, match=r"v1\.csv line 4: 6 fields where the header has 5 .*--skip_malformed_rows"):
        build_annotation_table(path)
    report = PrepareReport({})
    table = build_annotation_table(path, report=report, skip_malformed_rows=True)
    assert sum(map(len, table.values())) == 4 and report.dropped_annotations == {"malformed_row": 1}
    assert "v1.csv line 4: 6 fields" in report.examples["malformed_row"][0]
    # The same in the raw CSV read for histograms next to a preprocessed CSV.
    preprocessed = write_csv(tmp_path / "pre.csv", ["art_style", "painting", "emotion", "utterance_spelled", "split"],
                             [["Baroque", f"work-{i}", "awe", "fine", "train"] for i in range(4)])
    with pytest.raises(ValueError, match=r"v1\.csv line 4: 6 fields"):
        build_annotation_table(path, artemis_preprocessed_csv=preprocessed)
    report = PrepareReport({})
    build_annotation_table(path, artemis_preprocessed_csv=preprocessed, report=report, skip_malformed_rows=True)
    assert report.sections["histogram_rows"]["skipped"] == {"malformed_row": 1}


def test_a_column_named_twice_is_an_error(tmp_path):
    path = write_csv(tmp_path / "v1.csv", V1_HEADER + ["emotion"], [["Baroque", "work", "awe", "fine", 5, "fear"]])
    with pytest.raises(ValueError, match=r"v1\.csv: the header names the column\(s\) \['emotion'\] more than once"):
        build_annotation_table(path)


def test_duplicate_annotations_are_kept_as_published_and_warned_about(tmp_path):
    """ArtEmis's rows have no annotator id: two people may have written the same words; the protocol keeps both."""
    rows = [["Baroque", "work", "awe", "so beautiful", 5], ["Baroque", "work", "awe", "so beautiful", 5],
            ["Baroque", "work", "fear", "dark", 5]] + [["Baroque", f"work-{i}", "awe", "fine", 5] for i in range(4)]
    report = PrepareReport({})
    table = build_annotation_table(write_csv(tmp_path / "v1.csv", V1_HEADER, rows), report=report)
    row = next(row for split in table.values() for row in split if row["painting_id"] == "Baroque/work")
    assert row["explanations"] == ["so beautiful", "so beautiful", "dark"]
    assert report.warnings["duplicate_annotation"]["count"] == 1
    assert "v1.csv line 3" in report.warnings["duplicate_annotation"]["examples"][0]
    assert report.dropped_annotations == {}


def test_same_painting_under_two_art_styles_is_reported(tmp_path):
    rows = [[style, f"work-{i}", "awe", "fine", 5] for i in range(60) for style in ("Baroque", "Rococo")]
    report = PrepareReport({})
    table = build_annotation_table(write_csv(tmp_path / "v1.csv", V1_HEADER, rows), report=report)
    splits = {pid: split for split, ids in split_ids(table).items() for pid in ids}
    across = [i for i in range(60) if splits[f"Baroque/work-{i}"] != splits[f"Rococo/work-{i}"]]
    assert across  # the official split does put some of them in two splits
    warning = report.warnings["painting_in_several_styles_and_splits"]
    assert warning["count"] == len(across)
    assert any("Baroque/work-" in example and "Rococo/work-" in example for example in warning["examples"])
    assert report.warnings["painting_in_several_styles"]["count"] == 60 - len(across)


def test_emotion_names_and_histogram():
    assert VOCABULARY.match(" Something_Else ") == "something else"
    assert VOCABULARY.match("Awe") == "awe" and VOCABULARY.match("happiness") is None
    histogram = emotion_histogram(["awe", "awe", "fear", "something else"], ARTEMIS_EMOTIONS)
    assert histogram == [0, 0.5, 0, 0, 0, 0, 0.25, 0, 0.25]


def test_parquet_shards_embed_images(corpus, tmp_path):
    result = prepare_artemis(corpus["csv"], corpus["wikiart"], tmp_path / "out", parquet=True)
    hub = tmp_path / "out" / "hub"
    files = sorted(path.name for path in (hub / "data").iterdir())
    expected = [f"{split}-00000-of-00001.parquet" for split in ("test", "train", "validation") if len(result[split])]
    assert files == expected
    # Moving the folder proves the images are bytes inside the files, not paths to local files.
    moved = tmp_path / "moved"
    hub.rename(moved)
    (corpus["wikiart"]).rename(tmp_path / "gone")
    loaded = load_dataset(str(moved), cache_dir=str(tmp_path / "hf-cache"))
    assert loaded["train"].features == FEATURES
    assert loaded["train"]["painting_id"] == result["train"]["painting_id"]
    assert loaded["train"][0]["image"].size == result["train"][0]["image"].size
    assert "configs:" in (moved / "README.md").read_text()


# ---------------------------------------------------------------------------------------- command line
def test_cli_help_and_errors(corpus, tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = capsys.readouterr().out
    for flag in ("--artemis_csv", "--artemis_preprocessed_csv", "--contrastive_csv", "--wikiart_dir", "--output_dir",
                 "--split", "--v2_train_set", "--max_repetition", "--max_image_side", "--contrastive_only",
                 "--skip_missing_images", "--skip_malformed_rows", "--split_seed", "--parquet", "--num_proc",
                 "--overwrite"):
        assert flag in help_text
    assert all(action.help and len(action.help) > 20 for action in build_parser()._actions)
    with pytest.raises(SystemExit):
        parse_args(["--artemis_csv", "a.csv", "--wikiart_dir", "w", "--output_dir", "o", "--split", "random"])
    assert "invalid choice: 'random'" in capsys.readouterr().err
    code = main(["--artemis_csv", str(corpus["csv"]), "--wikiart_dir", str(tmp_path / "nowhere"),
                 "--output_dir", str(tmp_path / "out")])
    assert code == 1
    assert "--wikiart_dir" in capsys.readouterr().err
    assert main(["--artemis_csv", str(corpus["csv"]), "--wikiart_dir", str(corpus["wikiart"]),
                 "--output_dir", str(tmp_path / "cli"), "--contrastive_only"]) == 0
    train = load_from_disk(str(tmp_path / "cli"))["train"]
    assert all(len(set(e)) >= 2 for e in train["emotions"])


@pytest.mark.slow
def test_modules_run_with_python_m_from_the_repo_root(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    for module in ("dataset_scripts.prepare_artemis", "dataset_scripts.prepare_corpus", "dataset_scripts.make_demo_corpus"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, env=environment,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "--output_dir" in done.stdout, done.stderr
    # The declared console scripts point at these functions.
    text = (REPO_ROOT / "pyproject.toml").read_text()
    for script, target in (("sevlm-prepare", "dataset_scripts.prepare_corpus:main"),
                           ("sevlm-prepare-artemis", "dataset_scripts.prepare_artemis:main"),
                           ("sevlm-demo-corpus", "dataset_scripts.make_demo_corpus:main")):
        assert f'{script} = "{target}"' in text


# ------------------------------------------------------------------------------------- the README's recipe
def readme_prepare_commands():
    readme = (REPO_ROOT / "docs" / "DATA.md").read_text(encoding="utf-8")
    section = readme[: readme.index("\n## Your own data\n")]
    blocks = [block.split("```", 1)[0] for block in section.split("```bash\n")[1:]]
    commands = []
    for block in blocks:
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith("python -m dataset_scripts.prepare_artemis"):
                commands.append(shlex.split(command)[3:])
    return commands


def test_readme_recipe_runs_on_artemis_shaped_data(tmp_path, monkeypatch):
    """The README's preparation commands, as written (only --num_proc lowered), on generated ArtEmis-shaped raw and
    preprocessed CSVs laid out where the README says they are."""
    commands = readme_prepare_commands()
    assert any("--artemis_preprocessed_csv" in argv for argv in commands)
    assert any("--contrastive_csv" in argv for argv in commands)
    generated = write_artemis_shaped(tmp_path / "generated", 60, image_side=8, processes=1, high_coverage=2)
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        for flag, value in zip(argv, argv[1:]):
            target = tmp_path / value
            if flag in ("--artemis_csv", "--artemis_preprocessed_csv", "--contrastive_csv") and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = {"--artemis_csv": generated["raw_csv"], "--artemis_preprocessed_csv": generated["preprocessed_csv"]}
                if flag == "--contrastive_csv":
                    rows = [[style, name, emotion, f"a contrastive text about {emotion}", 5, style, name]
                            for style, name, _ in generated["paintings"] for emotion in ("awe", "fear", "sadness")]
                    write_csv(target, CONTRASTIVE_HEADER, rows)
                else:
                    target.write_bytes(source[flag].read_bytes())
            if flag == "--wikiart_dir" and not target.exists():
                generated["wikiart_dir"].rename(target)
        argv = [value if previous != "--num_proc" else "1" for previous, value in zip([""] + argv, argv)]
        assert main(argv) == 0, argv
        output = argv[argv.index("--output_dir") + 1]
        report = read_report(output)
        assert report["status"] == "ok" and report["paintings"]["kept"] > 40
