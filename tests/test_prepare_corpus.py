"""prepare_corpus: a corpus of any taxonomy from CSV / JSON Lines / an image folder, written into tmp_path."""

import csv
import json
import os
import re
import shlex
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from datasets import disable_progress_bars, load_dataset, load_from_disk
from helpers import REPO_ROOT
from PIL import Image

from dataset_scripts.prepare_corpus import main, parse_args
from processing_sevlm import load_image
from sevlm.data.corpus import (
    REPORT_NAME,
    decode_infozip_escapes,
    failed_report_path,
    hash_split,
    prepare_corpus,
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
    for item_id, row in rows.items():
        assert row["split"] == hash_split(item_id)
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
    corpus = prepare_corpus(folder, tmp_path / "out", emotions=["calm", "tense"])
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
    assert "très content" in (tmp_path / "out" / "hub" / "README.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------- command line
def test_cli(reviews, tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = capsys.readouterr().out
    for flag in ("--input", "--image_dir", "--image_column", "--emotion_column", "--explanation_column", "--id_column",
                 "--emotions", "--output_dir", "--split_seed", "--max_image_side", "--num_proc", "--skip_missing_images",
                 "--overwrite", "--parquet"):
        assert flag in help_text
    _, csv_path = reviews
    argv = ["--input", str(csv_path), "--output_dir", str(tmp_path / "cli"), "--emotions", ",".join(EMOTIONS)]
    assert main(argv) == 0
    assert corpus_emotions(load_from_disk(str(tmp_path / "cli"))) == EMOTIONS
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
