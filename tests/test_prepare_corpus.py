"""prepare_corpus: a corpus of any taxonomy from CSV / JSON Lines / an image folder, written into tmp_path."""

import csv
import json
import os
import re
import shlex
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import disable_progress_bars, load_dataset, load_from_disk
from helpers import REPO_ROOT
from huggingface_hub import DatasetCard
from PIL import Image

from dataset_scripts.prepare_corpus import build_parser, main, parse_args
from processing_sevlm import load_image
from sevlm.data.corpus import (
    REPORT_NAME,
    decode_infozip_escapes,
    failed_report_path,
    hash_position,
    hash_split,
    prepare_corpus,
    split_items,
)
from sevlm.data.schema import corpus_emotions, corpus_features
from sevlm.names import EmotionVocabulary

disable_progress_bars()

EMOTIONS = ["très content", "so-so", "mixed feelings", "frustrated"]


def write_image(path, color=(200, 30, 30), size=(24, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_csv(path, header, rows, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def names(dataset, row):
    return [dataset.features["emotions"].feature.int2str(value) for value in row["emotions"]]


def all_rows(corpus):
    return {row["painting_id"]: {**row, "emotions": names(data, row), "split": split}
            for split, data in corpus.items() for row in data.select_columns(
                ["painting_id", "art_style", "painting", "emotions", "explanations", "emotion_histogram", "source"])}


def read_report(folder):
    return json.loads((Path(folder) / REPORT_NAME).read_text(encoding="utf-8"))


@pytest.fixture()
def reviews(tmp_path):
    """20 photos in two folders with 2-3 reviews each, labels spelled in several ways, and a few bad rows."""
    folder = tmp_path / "reviews"
    rows = []
    spellings = {"très content": ["Très Content", "tre\u0300s_content"], "so-so": ["so-so", "SO-SO"],
                 "mixed feelings": ["mixed feelings", "Mixed_Feelings", " mixed  feelings "], "frustrated": ["frustrated"]}
    for i in range(20):
        image = f"{'mugs' if i % 2 else 'lamps'}/item-{i:02d}.png"
        write_image(folder / image, color=(10 * i, 100, 200 - 5 * i))
        for k in range(2 + i % 2):
            emotion = EMOTIONS[(i + k) % 4]
            rows.append([image, spellings[emotion][k % len(spellings[emotion])], f"review {k} of item {i}"])
    rows += [["mugs/item-01.png", "happy", "not a class"], ["lamps/item-02.png", "so-so", "  "], ["", "so-so", "no image"]]
    return folder, write_csv(folder / "annotations.csv", ["image", "emotion", "explanation"], rows)


# ------------------------------------------------------------------------------------------------ the corpus
def test_csv_corpus_with_its_own_taxonomy(reviews, tmp_path):
    folder, csv_path = reviews
    corpus = prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS)
    assert corpus_emotions(corpus) == EMOTIONS
    for split in corpus.values():
        assert split.features == corpus_features(EMOTIONS)
    rows = all_rows(corpus)
    assert len(rows) == 20
    item = rows["mugs/item-01.png"]
    assert item["art_style"] == "mugs" and item["painting"] == "item-01"
    assert item["emotions"] == ["so-so", "mixed feelings", "frustrated"]  # spellings matched to the classes
    assert item["explanations"] == ["review 0 of item 1", "review 1 of item 1", "review 2 of item 1"]
    assert item["emotion_histogram"] == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3])
    assert item["source"] == ["annotations.csv"] * 3
    assert rows["lamps/item-00.png"]["emotions"] == ["très content", "so-so"]
    # By hash, 18 items are train and 2 test: the validation split takes the train item nearest to it.
    assert sum(row["split"] != hash_split(item_id) for item_id, row in rows.items()) == 1
    assert {split: len(data) for split, data in corpus.items()} == {"train": 17, "validation": 1, "test": 2}
    report = read_report(tmp_path / "out")
    assert report["emotions"] == EMOTIONS
    assert report["annotations"]["dropped"] == {"unknown_emotion": 1, "empty_explanation": 1, "malformed_row": 1}
    assert any("annotations.csv line" in example and "'happy'" in example for example in report["examples"]["unknown_emotion"])
    assert sum(report["annotations"]["read"].values()) == report["annotations"]["kept"] + 3
    image = corpus["train"][0]["image"]
    assert image.mode == "RGB" and image.size == (24, 16)


def test_emotions_inferred_in_order_of_first_appearance(reviews, tmp_path, capsys):
    _, csv_path = reviews
    corpus = prepare_corpus(csv_path, tmp_path / "out")
    # Each class is named as first written; "happy" appears once on a late line: it becomes a fifth class, which
    # the printed counts reveal.
    assert corpus_emotions(corpus) == ["Très Content", "SO-SO", "Mixed_Feelings", "frustrated", "happy"]
    err = capsys.readouterr().err
    assert "warning: no --emotions given" in err and "'happy' (1)" in err
    assert read_report(tmp_path / "out")["warnings"]["emotions_inferred"]["count"] == 1


def test_emotion_matching_rules():
    vocabulary = EmotionVocabulary(["Mixed Feelings", "très content"])
    assert vocabulary.match("mixed_feelings ") == "Mixed Feelings"
    assert vocabulary.match(unicodedata.normalize("NFD", "TRÈS CONTENT")) == "très content"
    assert vocabulary.match("content") is None and vocabulary.match("") is None
    with pytest.raises(ValueError, match="names one class twice"):
        EmotionVocabulary(["joy", "Joy"])


def test_json_lines_and_image_folder_inputs(tmp_path):
    folder = tmp_path / "folder"
    records = []
    for i in range(12):
        write_image(folder / "shots" / f"p{i}.jpg", color=(i * 20, 0, 0))
        records.append({"file_name": f"shots/p{i}.jpg", "emotion": ["calm", "tense"][i % 2], "explanation": f"text {i}",
                        "extra": i})
    lines = [json.dumps(record) for record in records] + ["{not json", "[1, 2]", json.dumps({"file_name": "shots/p1.jpg"})]
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # A record that is not an object of text fields is an error naming the file and line, or skipped on request.
    with pytest.raises(ValueError, match=r"metadata\.jsonl line 13: not valid JSON .*--skip_malformed_rows"):
        prepare_corpus(folder, tmp_path / "out", emotions=["calm", "tense"])
    corpus = prepare_corpus(folder, tmp_path / "out", emotions=["calm", "tense"], skip_malformed_rows=True)
    assert sum(len(split) for split in corpus.values()) == 12
    report = read_report(tmp_path / "out")
    examples = report["examples"]["malformed_row"]
    assert report["annotations"]["dropped"] == {"malformed_row": 3}
    assert any("metadata.jsonl line 13: not valid JSON" in e for e in examples)
    assert any("line 14: a JSON list" in e for e in examples) and any("line 15: no ['emotion', 'explanation']" in e for e in examples)
    # The same folder with metadata.csv; both files at once is an error.
    write_csv(folder / "metadata.csv", ["file_name", "emotion", "explanation"], [[r["file_name"], r["emotion"], "x"] for r in records])
    with pytest.raises(FileNotFoundError, match="holds both"):
        prepare_corpus(folder, tmp_path / "both")
    (folder / "metadata.jsonl").unlink()
    corpus = prepare_corpus(folder, tmp_path / "csv", emotions=["calm", "tense"])
    assert sum(len(split) for split in corpus.values()) == 12


def test_id_column_groups_and_reports_conflicts(tmp_path):
    folder = tmp_path / "data"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(folder / name)
    rows = [["x", "a.jpg", "calm", "one"], ["x", "a.jpg", "tense", "two"], ["x", "b.jpg", "calm", "other image"],
            ["y", "c.jpg", "calm", "three"], ["z", "c.jpg", "tense", "same image as y"]]
    csv_path = write_csv(folder / "notes.csv", ["id", "image", "emotion", "explanation"], rows)
    corpus = prepare_corpus(csv_path, tmp_path / "out", id_column="id", emotions=["calm", "tense"])
    rows = all_rows(corpus)
    assert set(rows) == {"x", "y", "z"} and rows["x"]["explanations"] == ["one", "two"]
    report = read_report(tmp_path / "out")
    assert report["annotations"]["dropped"] == {"image_conflict": 1}
    assert "notes.csv line 4" in report["examples"]["image_conflict"][0]
    assert report["warnings"]["image_in_several_items"]["count"] == 1


def test_unicode_forms_and_infozip_names_on_disk(tmp_path):
    folder = tmp_path / "data"
    write_image(folder / unicodedata.normalize("NFD", "Café") / "crème.png")
    write_image(folder / "fr#U00e9d#U00e9ric.png")
    rows = [["Café/crème.png", "calm", "x"], ["frédéric.png", "calm", "y"]]
    corpus = prepare_corpus(write_csv(folder / "a.csv", ["image", "emotion", "explanation"], rows), tmp_path / "out")
    assert set(all_rows(corpus)) == {"Café/crème.png", "frédéric.png"}
    assert decode_infozip_escapes("joaqu#U00e3#U00adn#L01F600") == "joaquã\xadn\U0001F600"


# --------------------------------------------------------------------------------------------------- images
def test_16_bit_transparent_and_rotated_images_prepare_to_what_the_processor_sees(tmp_path):
    """Preparation decodes like the processor at inference: a 16-bit PNG is scaled (not clipped to white),
    transparency goes on white (not black), an EXIF-rotated photo comes out upright."""
    folder = tmp_path / "data"
    folder.mkdir()
    ramp = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "deep.png")
    assert Image.open(folder / "deep.png").mode.startswith("I")
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:, 16:, 3] = 255  # left half fully transparent
    Image.fromarray(rgba, "RGBA").save(folder / "clear.png")
    photo = Image.new("RGB", (40, 20), (20, 20, 220))
    photo.paste((240, 240, 20), (0, 0, 20, 20))  # left half yellow, as stored
    exif = photo.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    photo.save(folder / "rotated.jpg", exif=exif.tobytes(), quality=95)
    rows = [["deep.png", "calm", "x"], ["clear.png", "calm", "y"], ["rotated.jpg", "calm", "z"]]
    corpus = prepare_corpus(write_csv(folder / "a.csv", ["image", "emotion", "explanation"], rows), tmp_path / "out")
    prepared = {row["painting_id"]: np.asarray(row["image"], dtype=np.float32) for split in corpus.values() for row in split}
    assert prepared["rotated.jpg"].shape == (40, 20, 3)  # upright: 20 wide, 40 high
    for name in ("deep.png", "clear.png", "rotated.jpg"):
        seen = np.asarray(load_image(str(folder / name)), dtype=np.float32)
        assert prepared[name].shape == seen.shape
        assert np.abs(prepared[name] - seen).mean() < 4, name  # JPEG rounding only
    assert prepared["clear.png"][:, :12].mean() > 240  # white, not black
    assert prepared["deep.png"].max() > 200 and prepared["deep.png"][0, 0].mean() < 20  # scaled, not clipped


def test_missing_image_names_the_flag_and_skip_reports(reviews, tmp_path):
    folder, csv_path = reviews
    (folder / "mugs" / "item-03.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)1 of 20 items have missing images.*item-03\.png.*--image_dir"):
        prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS)
    assert json.loads(failed_report_path(tmp_path / "out").read_text())["status"] == "failed"
    corpus = prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS, skip_missing_images=True)
    assert sum(len(split) for split in corpus.values()) == 19
    assert read_report(tmp_path / "out")["paintings"]["dropped"] == {"missing_image": 1}


# ----------------------------------------------------------------------------------------------- bad input
def test_header_only_and_non_utf8_files_are_errors(tmp_path):
    empty = write_csv(tmp_path / "empty.csv", ["image", "emotion", "explanation"], [])
    with pytest.raises(ValueError, match="empty.csv holds no data rows"):
        prepare_corpus(empty, tmp_path / "out")
    latin = write_csv(tmp_path / "latin.csv", ["image", "emotion", "explanation"], [["a.png", "calm", "x"], ["b.png", "calm", "é"]],
                      encoding="latin-1")
    with pytest.raises(ValueError, match=r"latin\.csv line 3: .*not valid UTF-8.*must be UTF-8 encoded"):
        prepare_corpus(latin, tmp_path / "out")
    missing = write_csv(tmp_path / "cols.csv", ["path", "label"], [["a.png", "calm"]])
    with pytest.raises(ValueError, match=r"cols\.csv: missing column\(s\) \['image', 'emotion', 'explanation'\]"):
        prepare_corpus(missing, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_overwrite_keeps_the_old_corpus_until_the_new_one_is_complete(reviews, tmp_path):
    folder, csv_path = reviews
    real = tmp_path / "disk" / "corpus"
    prepare_corpus(csv_path, real, emotions=EMOTIONS)
    before = {path: path.read_bytes() for path in real.rglob("*") if path.is_file()}
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare_corpus(csv_path, link, emotions=EMOTIONS)
    (folder / "lamps" / "item-04.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match="item-04.png"):
        prepare_corpus(csv_path, link, emotions=EMOTIONS, overwrite=True)
    assert {path: path.read_bytes() for path in real.rglob("*") if path.is_file()} == before
    corpus = prepare_corpus(csv_path, link, emotions=EMOTIONS, overwrite=True, skip_missing_images=True)
    assert link.is_symlink() and sum(len(split) for split in load_from_disk(str(real)).values()) == 19
    assert sum(len(split) for split in corpus.values()) == 19
    assert not failed_report_path(link).exists()


def test_parquet_of_a_custom_taxonomy_loads_with_its_classes(reviews, tmp_path):
    _, csv_path = reviews
    prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS, parquet=True)
    loaded = load_dataset(str(tmp_path / "out" / "hub"), cache_dir=str(tmp_path / "cache"))
    assert corpus_emotions(loaded["train"]) == EMOTIONS
    card = DatasetCard.load(tmp_path / "out" / "hub" / "README.md")
    assert card.data.license == "other" and card.data.task_categories == ["image-to-text"]
    assert [entry["split"] for entry in card.data.configs[0]["data_files"]] == ["train", "validation", "test"]
    # Class names are shown as written, in code spans, never read as Markdown or HTML.
    assert "`très content`, `so-so`, `mixed feelings`, `frustrated`" in card.text


def test_class_names_in_the_dataset_card_are_not_markup(tmp_path):
    folder = tmp_path / "data"
    rows = [["a.png", "<script>x</script>", "one"], ["b.png", "**bold** `tick`", "two"], ["c.png", "calm", "three"]]
    prepare_corpus(write_items(folder, rows), tmp_path / "out", parquet=True)
    text = DatasetCard.load(tmp_path / "out" / "hub" / "README.md").text
    assert "`<script>x</script>`, `**bold** 'tick'`, `calm`" in text


# ----------------------------------------------------------------------------------------- rows and fields
def write_items(folder, rows, header=("image", "emotion", "explanation")):
    """A CSV of `rows` (lists of cells, written as given) and a small picture for every image it names."""
    for row in rows:
        if row and row[0] and not (folder / row[0]).exists():
            write_image(folder / row[0], color=(len(row[0]) * 9 % 255, 60, 90))
    return write_csv(folder / "notes.csv", list(header), rows)


def test_rows_whose_fields_do_not_match_the_header_stop_or_are_counted(tmp_path, capsys):
    """An unquoted comma in a text used to be cut off silently, or its tail became a class of its own."""
    folder = tmp_path / "data"
    rows = [[f"p{i}.png", ["calm", "tense"][i % 2], f"text {i}"] for i in range(6)]
    rows.insert(2, ["p0.png", "calm", "quiet", " soft and slow"])  # the comma was not quoted: 4 fields
    rows.insert(4, ["p1.png", "tense"])  # cut short: 2 fields
    csv_path = write_items(folder, rows)
    with pytest.raises(ValueError, match=r"notes\.csv line 4: 4 fields where the header has 3 .*double quotes.*"
                                         r"--skip_malformed_rows"):
        prepare_corpus(csv_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    corpus = prepare_corpus(csv_path, tmp_path / "out", skip_malformed_rows=True)
    assert corpus_emotions(corpus) == ["calm", "tense"]  # no class made of a text's tail
    report = read_report(tmp_path / "out")
    assert report["annotations"]["dropped"] == {"malformed_row": 2}
    assert report["inputs"]["skip_malformed_rows"] is True
    examples = report["examples"]["malformed_row"]
    assert any("notes.csv line 4: 4 fields" in e for e in examples) and any("line 6: 2 fields" in e for e in examples)
    assert sum(report["annotations"]["read"].values()) == report["annotations"]["kept"] + 2


def test_a_column_named_twice_is_an_error(tmp_path):
    folder = tmp_path / "data"
    csv_path = write_items(folder, [["a.png", "calm", "x", "tense"]], header=("image", "emotion", "explanation", "emotion"))
    with pytest.raises(ValueError, match=r"notes\.csv: the header names the column\(s\) \['emotion'\] more than once"):
        prepare_corpus(csv_path, tmp_path / "out")
    # Columns that are not read may repeat (spreadsheets export empty header cells).
    write_csv(folder / "spare.csv", ["image", "emotion", "explanation", "", ""], [["a.png", "calm", "x", "", ""]])
    assert sum(map(len, prepare_corpus(folder / "spare.csv", tmp_path / "spare").values())) == 1
    # In JSON Lines, a key given twice in one record is the same problem.
    (folder / "twice.jsonl").write_text('{"image": "a.png", "emotion": "calm", "emotion": "tense", "explanation": "x"}\n')
    with pytest.raises(ValueError, match=r"twice\.jsonl line 1: the key\(s\) \['emotion'\] given more than once"):
        prepare_corpus(folder / "twice.jsonl", tmp_path / "twice")


def test_exact_duplicate_annotations_are_dropped_and_counted(tmp_path, capsys):
    """The same (item, emotion, explanation) twice would make "awe" the item's majority (2 of 3)."""
    folder = tmp_path / "data"
    rows = [["a.png", "awe", "the sky is vast"], ["a.png", "Awe", " the sky is vast "], ["a.png", "fear", "the dark"],
            ["b.png", "awe", "the sky is vast"], ["b.png", "fear", "the sky is vast"]]  # other item / emotion: kept
    corpus = prepare_corpus(write_items(folder, rows), tmp_path / "out", emotions=["awe", "fear"])
    rows = all_rows(corpus)
    assert rows["a.png"]["emotions"] == ["awe", "fear"] and rows["a.png"]["emotion_histogram"] == [0.5, 0.5]
    assert rows["b.png"]["emotions"] == ["awe", "fear"]
    report = read_report(tmp_path / "out")
    assert report["annotations"]["dropped"] == {"duplicate_annotation": 1}
    assert "notes.csv line 3" in report["examples"]["duplicate_annotation"][0]
    assert "1 annotation(s) repeat an earlier one" in capsys.readouterr().err


def test_many_classes_are_prepared_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "data"
    rows = [["a.png", f"class {k}", f"text {k}"] for k in range(60)]
    corpus = prepare_corpus(write_items(folder, rows), tmp_path / "out")
    assert len(corpus_emotions(corpus)) == 60
    warning = read_report(tmp_path / "out")["warnings"]["many_classes"]
    assert "more than 50 emotion classes" in warning["message"] and "60 classes" in warning["examples"][0]
    assert "warning: more than 50 emotion classes" in capsys.readouterr().err
    prepare_corpus(write_items(folder, rows[:50]), tmp_path / "fifty")
    assert "many_classes" not in read_report(tmp_path / "fifty")["warnings"]


# --------------------------------------------------------------------------------------------------- splits
def item_ids_in(split, count, seed=2021):
    """`count` image names whose hash split (85/5/10) is `split`."""
    names = (f"img-{k:04d}.png" for k in range(100_000))
    return [name for name in names if hash_split(name, seed) == split][:count]


def test_the_hash_split_is_unchanged_for_large_corpora():
    items = {f"item-{k}": {"split": None} for k in range(3000)}
    split_items(items)
    assert all(entry["split"] == hash_split(item_id) for item_id, entry in items.items())
    assert Counter(entry["split"] for entry in items.values()) == Counter(hash_split(item_id) for item_id in items)
    # The same with another seed, and with other fractions: a pure function of the item's hash position.
    split_items(items, seed=7, validation_size=0.2, test_size=0.3)
    for item_id, entry in items.items():
        position = hash_position(item_id, 7)
        assert entry["split"] == ("test" if position >= 0.7 else "validation" if position >= 0.5 else "train")


def test_a_small_corpus_gets_an_item_in_every_split(tmp_path, capsys):
    """33 items whose hashes all fall in train or validation: the test split used to be empty, silently."""
    folder = tmp_path / "data"
    names = item_ids_in("train", 31) + item_ids_in("validation", 2)
    rows = [[name, ["calm", "tense", "joyful", "gloomy"][k % 4], f"text {k}"] for k, name in enumerate(names)]
    corpus = prepare_corpus(write_items(folder, rows), tmp_path / "out", emotions=["calm", "tense", "joyful", "gloomy"])
    assert {split: len(data) for split, data in corpus.items()} == {"train": 30, "validation": 2, "test": 1}
    # The test item is the one of highest hash position; the two validation items stay where the hash put them.
    top = max(names, key=hash_position)
    assert corpus["test"]["painting_id"] == [top] and top in item_ids_in("validation", 2)
    assert set(corpus["validation"]["painting_id"]) == ({*item_ids_in("validation", 2), max(item_ids_in("train", 31), key=hash_position)} - {top})
    # With counts, exactly that many items, by hash position.
    corpus = prepare_corpus(write_items(folder, rows), tmp_path / "counts", validation_size=3, test_size=4)
    assert {split: len(data) for split, data in corpus.items()} == {"train": 26, "validation": 3, "test": 4}
    assert set(corpus["test"]["painting_id"]) == set(sorted(names, key=hash_position)[-4:])
    assert read_report(tmp_path / "counts")["inputs"]["test_size"] == 4


def test_empty_splits_and_splits_without_a_majority_are_warned_about(tmp_path, capsys):
    folder = tmp_path / "data"
    # Every item is a tie (one calm, one tense annotation): no item has a majority emotion anywhere.
    rows = [[name, emotion, f"{emotion} {name}"] for name in item_ids_in("train", 8) for emotion in ("calm", "tense")]
    prepare_corpus(write_items(folder, rows), tmp_path / "out", emotions=["calm", "tense"])
    warnings = read_report(tmp_path / "out")["warnings"]
    assert warnings["no_majority_in_split"]["examples"] == ["validation (1 item)", "test (1 item)"]
    assert "emotion accuracy is undefined" in warnings["no_majority_in_split"]["message"]
    assert "--validation_size" in warnings["no_majority_in_split"]["message"]
    err = capsys.readouterr().err
    assert "warning: no item of this split has a majority emotion" in err and "annotate more items: validation (1 item)" in err
    # Two items: one for training, one for test, none left for validation.
    prepare_corpus(write_items(folder, rows[:4]), tmp_path / "two", emotions=["calm", "tense"])
    assert read_report(tmp_path / "two")["warnings"]["empty_split"]["examples"] == ["validation"]
    assert "warning: a split without items" in capsys.readouterr().err
    # The rule is the metric's: 2 of 3 is a majority, 2 of 4 is not.
    rows = [[name, emotion, f"{emotion} {k} {name}"] for name in item_ids_in("train", 8)
            for k, emotion in enumerate(("calm", "calm", "tense"))]
    prepare_corpus(write_items(folder, rows), tmp_path / "majority", emotions=["calm", "tense"])
    assert "no_majority_in_split" not in read_report(tmp_path / "majority")["warnings"]


@pytest.mark.parametrize("sizes, message", [
    ({"test_size": 0}, "--test_size must be a fraction"), ({"validation_size": 1.5}, "--validation_size must be"),
    ({"test_size": -2}, "--test_size must be"), ({"validation_size": 0.5, "test_size": 0.5}, "leave no share"),
    ({"validation_size": 10, "test_size": 10}, "at least one must stay for training"),
])
def test_bad_split_sizes_are_errors(reviews, tmp_path, sizes, message):
    _, csv_path = reviews
    with pytest.raises(ValueError, match=message):
        prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS, **sizes)


# ----------------------------------------------------------------------------------------- output folders
def entries(folder):
    return sorted(path.name for path in Path(folder).iterdir())


def test_overwrite_replaces_only_what_the_corpus_wrote(reviews, tmp_path):
    """`--overwrite` used to delete a whole folder that held a dataset_dict.json, with the user's raw/ and make.sh."""
    _, csv_path = reviews
    out = tmp_path / "out"
    prepare_corpus(csv_path, out, emotions=EMOTIONS, parquet=True)
    record = json.loads((out / ".sevlm-output.json").read_text())["entries"]
    assert record == {name: "prepared corpus" for name in
                      ("dataset_dict.json", "hub", "prepare_report.json", "test", "train", "validation")}
    (out / "raw").mkdir()
    (out / "raw" / "annotations.csv").write_text("mine")
    (out / "make.sh").write_text("#!/bin/sh\n")
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare_corpus(csv_path, out, emotions=EMOTIONS)
    prepare_corpus(csv_path, out, emotions=EMOTIONS[:3], overwrite=True)  # no --parquet this time
    assert entries(out) == [".sevlm-output.json", "dataset_dict.json", "make.sh", "prepare_report.json", "raw", "test",
                            "train", "validation"]  # the earlier hub/ went with its corpus; the user's files stayed
    assert (out / "raw" / "annotations.csv").read_text() == "mine" and (out / "make.sh").read_text() == "#!/bin/sh\n"
    assert corpus_emotions(load_from_disk(str(out))) == EMOTIONS[:3]


def test_a_corpus_never_replaces_files_it_did_not_write(reviews, tmp_path):
    _, csv_path = reviews
    theirs = tmp_path / "theirs"
    (theirs / "raw").mkdir(parents=True)
    (theirs / "dataset_dict.json").write_text('{"splits": ["mine"]}')
    (theirs / "raw" / "notes.txt").write_text("mine")
    before = {path: path.read_bytes() for path in theirs.rglob("*") if path.is_file()}
    with pytest.raises(FileExistsError, match=r"already holds dataset_dict\.json, which this prepared corpus did not "
                                              r"write; refusing to replace it \(even with --overwrite\)"):
        prepare_corpus(csv_path, theirs, emotions=EMOTIONS, overwrite=True)
    assert {path: path.read_bytes() for path in theirs.rglob("*") if path.is_file()} == before
    # A folder with other files only takes the corpus beside them.
    (theirs / "dataset_dict.json").unlink()
    prepare_corpus(csv_path, theirs, emotions=EMOTIONS)
    assert (theirs / "raw" / "notes.txt").read_text() == "mine" and len(load_from_disk(str(theirs))["train"]) > 0


def test_the_failed_run_report_never_replaces_a_users_file(reviews, tmp_path):
    folder, csv_path = reviews
    (folder / "mugs" / "item-03.png").unlink()
    mine = failed_report_path(tmp_path / "out")
    mine.write_text("my own notes")
    with pytest.raises(FileExistsError, match=r"out\.prepare_report\.failed\.json exists and is not the report of a "
                                              "failed preparation run"):
        prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS)
    assert mine.read_text() == "my own notes" and not (tmp_path / "out").exists()
    mine.unlink()
    with pytest.raises(FileNotFoundError):
        prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS)
    assert json.loads(mine.read_text())["status"] == "failed"  # a report of ours: replaced by the next one...
    with pytest.raises(FileNotFoundError):
        prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS)
    prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS, skip_missing_images=True)
    assert not mine.exists()  # ... and removed by a run that succeeds


def test_outputs_have_normal_file_modes(reviews, tmp_path):
    _, csv_path = reviews
    umask = os.umask(0o022)
    try:
        prepare_corpus(csv_path, tmp_path / "out", emotions=EMOTIONS, parquet=True)
    finally:
        os.umask(umask)
    out = tmp_path / "out"
    for path in [out, *out.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


# ---------------------------------------------------------------------------------------------- command line
def test_cli(reviews, tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = capsys.readouterr().out
    for flag in ("--input", "--image_dir", "--image_column", "--emotion_column", "--explanation_column", "--id_column",
                 "--emotions", "--output_dir", "--split_seed", "--validation_size", "--test_size", "--max_image_side",
                 "--num_proc", "--skip_missing_images", "--skip_malformed_rows", "--overwrite", "--parquet"):
        assert f"{flag} " in help_text, flag
    assert all(action.help and len(action.help) > 20 for action in build_parser()._actions)
    _, csv_path = reviews
    argv = ["--input", str(csv_path), "--output_dir", str(tmp_path / "cli"), "--emotions", ",".join(EMOTIONS)]
    assert main(argv + ["--validation_size", "3", "--test_size", "0.25"]) == 0
    assert corpus_emotions(load_from_disk(str(tmp_path / "cli"))) == EMOTIONS
    inputs = read_report(tmp_path / "cli")["inputs"]
    assert (inputs["validation_size"], inputs["test_size"]) == (3, 0.25)
    assert len(load_from_disk(str(tmp_path / "cli"))["validation"]) == 3
    assert main(argv + ["--overwrite", "--skip_malformed_rows"]) == 0
    assert read_report(tmp_path / "cli")["inputs"]["skip_malformed_rows"] is True
    capsys.readouterr()
    assert main(argv) == 1 and "--overwrite" in capsys.readouterr().err
    assert main(["--input", str(tmp_path / "nope.csv"), "--output_dir", str(tmp_path / "x")]) == 1
    assert "nope.csv does not exist" in capsys.readouterr().err
    assert main(argv[:4] + ["--emotions", "a,,b"]) == 1


def test_readme_your_own_data_commands_run(tmp_path, monkeypatch):
    """The documented preparation commands for your own data (docs/DATA.md), as written, on its CSV example."""
    readme = (REPO_ROOT / "docs" / "DATA.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Your own data\n"):]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else None]
    example = re.search(r"```csv\n(.*?)```", section, re.S).group(1)
    commands = [" ".join(block.replace("\\\n", " ").split()) for block in re.findall(r"```bash\n(.*?)```", section, re.S)]
    commands = [command for command in commands if "dataset_scripts.prepare_corpus" in command or "sevlm-prepare" in command]
    assert commands
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)
        argv = argv[3:] if argv[0] == "python" else argv[1:]
        table = Path(argv[argv.index("--input") + 1])
        table.parent.mkdir(parents=True, exist_ok=True)
        # The example's rows, repeated over enough pictures for all three splits.
        lines = example.strip().splitlines()
        rows = [line.replace(".jpg", f"-{k}.jpg") for k in range(30) for line in lines[1:]]
        table.write_text("\n".join([lines[0]] + rows) + "\n", encoding="utf-8")
        for row in csv.DictReader(table.open(encoding="utf-8")):
            if not (table.parent / row["image"]).exists():
                write_image(table.parent / row["image"], color=(len(row["image"]) * 7 % 255, 80, 80))
        assert main(argv) == 0, command
        output = Path(argv[argv.index("--output_dir") + 1])
        corpus = load_from_disk(str(output))
        assert sum(len(split) for split in corpus.values()) == 60 and len(corpus["test"]) > 0
        assert corpus_emotions(corpus) == ["delighted", "satisfied", "mixed feelings", "disappointed", "frustrated"]
        assert os.path.isfile(output / REPORT_NAME)
