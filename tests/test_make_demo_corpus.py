"""The procedural demo corpus: schema, determinism, reuse, annotation mix, visual signal, lexicon."""

import colorsys
import filecmp
import json
import os
import time
from collections import Counter

import numpy as np
import pytest
from datasets import disable_progress_bars, load_from_disk

from configuration_sevlm import ARTEMIS_EMOTIONS
from dataset_scripts.make_demo_corpus import build_parser, main
from sevlm.data.corpus import emotion_histogram
from sevlm.data.demo import (
    DEMO_VAD,
    GENERATOR_VERSION,
    PARAMS_NAME,
    PRODUCT_EMOTIONS,
    PRODUCT_VAD,
    PRODUCT_VOCABULARY,
    VOCABULARY,
    make_demo_corpus,
)
from sevlm.data.schema import corpus_emotions, corpus_features
from sevlm.data.settings import DEMO_LEXICON_NAME
from sevlm.evaluation.metric import majority_emotion
from sevlm.tokenizer import train_tokenizer
from sevlm.vad import build_vad_table, load_vad_lexicon

disable_progress_bars()

SMALL = 270  # 30 paintings per emotion
FEATURES = corpus_features(ARTEMIS_EMOTIONS)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "demo"
    return folder, make_demo_corpus(folder, num_paintings=SMALL, seed=0)


def rows(corpus):
    """All rows, emotions as class names."""
    names = corpus_emotions(corpus)
    return [{**row, "emotions": [names[i] for i in row["emotions"]]} for split in corpus.values() for row in split]


def intended_emotion(row):
    """Painting i is drawn for ARTEMIS_EMOTIONS[i % 9]."""
    return ARTEMIS_EMOTIONS[int(row["painting"].rsplit("-", 1)[1]) % len(ARTEMIS_EMOTIONS)]


def test_schema_and_loading(small_corpus):
    folder, corpus = small_corpus
    loaded = load_from_disk(str(folder))
    assert set(loaded) == {"train", "validation", "test"}
    assert sum(len(split) for split in loaded.values()) == SMALL
    for split in loaded.values():
        assert split.features == FEATURES
    assert corpus_emotions(loaded) == list(ARTEMIS_EMOTIONS)
    assert json.loads((folder / PARAMS_NAME).read_text())["generator_version"] == GENERATOR_VERSION == 2
    row = loaded["train"][0]
    assert row["image"].size == (64, 64) and row["image"].mode == "RGB"
    assert row["painting_id"] == f"{row['art_style']}/{row['painting']}"
    ids = {split: set(data["painting_id"]) for split, data in loaded.items()}
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["validation"] and not ids["validation"] & ids["test"]


def test_annotations_mix_emotions_with_a_clear_majority(small_corpus):
    _, corpus = small_corpus
    all_rows = rows(corpus)
    for row in all_rows:
        assert 4 <= len(row["emotions"]) <= 6
        assert len(row["explanations"]) == len(row["emotions"]) == len(row["source"])
        assert set(row["emotions"]) <= set(ARTEMIS_EMOTIONS)
        assert row["emotion_histogram"] == pytest.approx(emotion_histogram(row["emotions"], ARTEMIS_EMOTIONS))
    majorities = [majority_emotion(row["emotion_histogram"], ARTEMIS_EMOTIONS) for row in all_rows]
    assert 0.7 < sum(m is not None for m in majorities) / len(all_rows) < 0.95  # some paintings have no majority
    assert sum(len(set(row["emotions"])) >= 2 for row in all_rows) / len(all_rows) > 0.85  # contrastive pairs exist
    # The majority, when there is one, is the emotion the picture was drawn for.
    agree = [m == intended_emotion(row) for m, row in zip(majorities, all_rows) if m is not None]
    assert all(agree)
    # Every class has test paintings with a majority, so emotion accuracy covers all 9 classes.
    test_majorities = Counter(majority_emotion(h, ARTEMIS_EMOTIONS) for h in corpus["test"]["emotion_histogram"])
    assert all(test_majorities[emotion] >= 1 for emotion in ARTEMIS_EMOTIONS)


def test_explanations_use_the_emotion_vocabulary(small_corpus):
    _, corpus = small_corpus
    texts = Counter()
    for row in rows(corpus):
        for emotion, text in zip(row["emotions"], row["explanations"]):
            words = VOCABULARY[emotion]
            assert any(term in text for term in words["adj"] + words["feel"] + words["noun"]), (emotion, text)
            assert len(text.split()) <= 16  # fits the 30-token sequence with the prompt
            texts[text] += 1
    assert len(texts) > 0.5 * sum(texts.values())  # varied, not a handful of sentences


def test_pictures_carry_the_emotion(small_corpus):
    """A nearest-centroid classifier on mean colour (train -> test) must beat chance by far: the visual cue is
    real. It must not be perfect either: the task is not trivial."""
    _, corpus = small_corpus

    assert 0.55 < centroid_accuracy(corpus, intended_emotion) < 1.0


def colour_features(row):
    pixels = np.asarray(row["image"], dtype=np.float32) / 255
    hsv = np.array([colorsys.rgb_to_hsv(*pixel) for pixel in pixels.reshape(-1, 3)[::7]])
    angle = hsv[:, 0] * 2 * np.pi
    return np.concatenate([pixels.mean((0, 1)), pixels.std((0, 1)), [np.mean(np.cos(angle) * hsv[:, 1]),
                           np.mean(np.sin(angle) * hsv[:, 1]), hsv[:, 1].mean(), hsv[:, 2].mean()]])


def centroid_accuracy(corpus, intended):
    """Nearest-centroid on mean colour, train -> validation + test."""
    train = [(colour_features(row), intended(row)) for row in corpus["train"]]
    classes = sorted({label for _, label in train})
    centroids = {e: np.mean([f for f, label in train if label == e], axis=0) for e in classes}
    test = [(colour_features(row), intended(row)) for split in ("validation", "test") for row in corpus[split]]
    return np.mean([min(centroids, key=lambda e: np.linalg.norm(f - centroids[e])) == label for f, label in test])


def test_deterministic_for_a_seed(small_corpus, tmp_path):
    folder, corpus = small_corpus
    again = make_demo_corpus(tmp_path / "again", num_paintings=SMALL, seed=0)
    for split in corpus:
        _, mismatch, errors = filecmp.cmpfiles(folder / split, tmp_path / "again" / split,
                                               ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"], shallow=False)
        assert mismatch == [] and errors == []
    assert (folder / DEMO_LEXICON_NAME).read_bytes() == (tmp_path / "again" / DEMO_LEXICON_NAME).read_bytes()
    other = make_demo_corpus(tmp_path / "other", num_paintings=SMALL, seed=1)
    assert other["train"]["explanations"] != again["train"]["explanations"]


def test_reuse_and_overwrite(tmp_path):
    folder = tmp_path / "demo"
    make_demo_corpus(folder, num_paintings=27, seed=0)
    data_file = folder / "train" / "data-00000-of-00001.arrow"
    stamp = data_file.stat().st_mtime_ns
    (folder / DEMO_LEXICON_NAME).unlink()
    time.sleep(0.01)
    reused = make_demo_corpus(folder, num_paintings=27, seed=0)
    assert data_file.stat().st_mtime_ns == stamp  # loaded, not regenerated
    assert (folder / DEMO_LEXICON_NAME).is_file()  # the lexicon is written again when missing
    assert sum(len(split) for split in reused.values()) == 27
    with pytest.raises(FileExistsError, match="overwrite"):
        make_demo_corpus(folder, num_paintings=36, seed=0)
    replaced = make_demo_corpus(folder, num_paintings=36, seed=0, overwrite=True)
    assert sum(len(split) for split in replaced.values()) == 36
    assert '"num_paintings": 36' in (folder / PARAMS_NAME).read_text()
    # A folder of one's own takes the corpus beside its files, which stay as they were, also through --overwrite.
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    make_demo_corpus(stranger, num_paintings=27)
    make_demo_corpus(stranger, num_paintings=36, overwrite=True)
    assert (stranger / "notes.txt").read_text() == "keep me"
    assert sum(len(split) for split in load_from_disk(str(stranger)).values()) == 36
    with pytest.raises(ValueError, match="too small"):
        make_demo_corpus(tmp_path / "tiny", num_paintings=10)


def test_lexicon_is_readable_and_covers_the_vocabulary(small_corpus):
    folder, corpus = small_corpus
    path = folder / DEMO_LEXICON_NAME
    assert path.read_text().splitlines()[0] == "Word\tValence\tArousal\tDominance"
    lexicon = load_vad_lexicon(path)
    assert len(lexicon) == len(DEMO_VAD)
    assert all(-1 <= value <= 1 for scores in lexicon.values() for value in scores)
    assert lexicon["sad"][0] < 0 < lexicon["happy"][0]  # bipolar after loading
    assert lexicon["calm"][1] < 0 < lexicon["furious"][1]
    for emotion, words in VOCABULARY.items():
        assert all(adjective in lexicon for adjective in words["adj"]), emotion
    texts = [f" the emotion is {e} because {x}" for row in rows(corpus) for e, x in zip(row["emotions"], row["explanations"])]
    tokenizer = train_tokenizer(texts, vocab_size=600)
    table = build_vad_table(tokenizer, lexicon)
    for word in ("sad", "furious", "calm", "eerie"):
        token_id = tokenizer.convert_tokens_to_ids("Ġ" + word)
        assert table[token_id].abs().sum() > 0, word


@pytest.mark.slow
def test_default_sizes_and_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    artemis = make_demo_corpus()
    assert sum(len(split) for split in artemis.values()) == 2400 and (tmp_path / "data" / "demo" / PARAMS_NAME).is_file()
    assert {split: len(data) for split, data in artemis.items()} == {"train": 2040, "validation": 117, "test": 243}
    products = make_demo_corpus(taxonomy="product-reviews")
    assert sum(len(split) for split in products.values()) == 2400
    assert (tmp_path / "data" / "demo-product" / DEMO_LEXICON_NAME).is_file()


def test_overwrite_is_staged_and_validated_first(tmp_path):
    real = tmp_path / "disk" / "demo"
    first = make_demo_corpus(real, num_paintings=27, seed=0)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    # An invalid request fails before anything is touched.
    with pytest.raises(ValueError, match="too small"):
        make_demo_corpus(link, num_paintings=10, overwrite=True)
    assert load_from_disk(str(real))["train"]["painting_id"] == first["train"]["painting_id"]
    # Through the symlink: the link stays, the folder it points to is replaced.
    replaced = make_demo_corpus(link, num_paintings=36, seed=0, overwrite=True)
    assert link.is_symlink() and os.path.realpath(link) == str(real)
    assert sum(len(split) for split in replaced.values()) == 36
    assert [path.name for path in real.parent.iterdir()] == ["demo"]  # no staging folder left behind


# ------------------------------------------------------------------------------------------ product reviews
@pytest.fixture(scope="module")
def products(tmp_path_factory):
    folder = tmp_path_factory.mktemp("products") / "demo-product"
    return folder, make_demo_corpus(folder, num_paintings=400, seed=0, taxonomy="product-reviews")


def intended_product_emotion(row):
    """Item i is drawn for PRODUCT_EMOTIONS[i % 5]."""
    return PRODUCT_EMOTIONS[int(row["painting"].rsplit("-", 1)[1]) % len(PRODUCT_EMOTIONS)]


def test_product_reviews_corpus_has_its_own_classes(products):
    folder, corpus = products
    loaded = load_from_disk(str(folder))
    assert corpus_emotions(loaded) == ["delighted", "satisfied", "mixed feelings", "disappointed", "frustrated"]
    for split in loaded.values():
        assert split.features == corpus_features(PRODUCT_EMOTIONS)
    params = json.loads((folder / PARAMS_NAME).read_text())
    assert params["taxonomy"] == "product-reviews" and "not NRC-VAD" in params["lexicon"]
    all_rows = rows(loaded)
    assert {row["art_style"] for row in all_rows} == {"mug", "lamp", "sneaker", "backpack", "phone", "chair"}
    for row in all_rows:
        assert 4 <= len(row["emotions"]) == len(row["explanations"]) <= 6
        assert len(row["emotion_histogram"]) == 5
        assert row["emotion_histogram"] == pytest.approx(emotion_histogram(row["emotions"], PRODUCT_EMOTIONS))
        for emotion, text in zip(row["emotions"], row["explanations"]):
            words = PRODUCT_VOCABULARY[emotion]
            assert any(term in text for term in words["adj"] + words["feel"] + words["noun"]), (emotion, text)
            assert row["art_style"] in text or any(term in text for term in words["noun"]) or "backdrop" in text
            assert len(text.split()) <= 16
    majorities = [majority_emotion(row["emotion_histogram"], PRODUCT_EMOTIONS) for row in all_rows]
    assert all(m == intended_product_emotion(row) for m, row in zip(majorities, all_rows) if m is not None)
    assert 0.7 < sum(m is not None for m in majorities) / len(all_rows) < 0.95
    assert "mixed feelings" in {m for m in majorities}
    test_majorities = Counter(majority_emotion(h, PRODUCT_EMOTIONS) for h in loaded["test"]["emotion_histogram"])
    assert all(test_majorities[emotion] >= 1 for emotion in PRODUCT_EMOTIONS)


def test_product_pictures_carry_the_class(products):
    _, corpus = products
    assert 0.6 < centroid_accuracy(corpus, intended_product_emotion) < 1.0


def test_product_lexicon_covers_its_vocabulary(products):
    folder, corpus = products
    lexicon = load_vad_lexicon(folder / DEMO_LEXICON_NAME)
    assert len(lexicon) == len(PRODUCT_VAD)
    assert lexicon["frustrated"][0] < 0 < lexicon["delighted"][0]
    for emotion, words in PRODUCT_VOCABULARY.items():
        assert all(adjective in lexicon for adjective in words["adj"]), emotion
        assert all(feeling.split()[-1] in lexicon or feeling == "let down" for feeling in words["feel"]), emotion


def test_the_folder_records_what_it_holds_with_normal_modes(tmp_path):
    umask = os.umask(0o022)
    try:
        make_demo_corpus(tmp_path / "demo", num_paintings=27, seed=0)
    finally:
        os.umask(umask)
    folder = tmp_path / "demo"
    record = json.loads((folder / ".sevlm-output.json").read_text())["entries"]
    assert sorted(record) == sorted(path.name for path in folder.iterdir() if path.name != ".sevlm-output.json")
    assert set(record.values()) == {"prepared corpus"}
    for path in [folder, *folder.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path
    # A demo corpus is a prepared corpus: a preparation command may replace it with --overwrite (and only it).
    (folder / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="--overwrite"):
        make_demo_corpus(folder, num_paintings=36, seed=0)
    make_demo_corpus(folder, num_paintings=36, seed=0, overwrite=True)
    assert (folder / "mine.txt").read_text() == "keep"


def test_cli(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert all(flag in help_text for flag in ("--taxonomy", "--output_dir", "--num_paintings", "--seed", "--overwrite"))
    assert all(action.help and len(action.help) > 20 for action in build_parser()._actions)
    assert main(["--output_dir", str(tmp_path / "cli"), "--num_paintings", "27", "--seed", "3"]) == 0
    assert (tmp_path / "cli" / DEMO_LEXICON_NAME).is_file()
    assert main(["--output_dir", str(tmp_path / "cli"), "--num_paintings", "36"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["--taxonomy", "product-reviews", "--output_dir", str(tmp_path / "p"), "--num_paintings", "20"]) == 0
    assert corpus_emotions(load_from_disk(str(tmp_path / "p")))[2] == "mixed feelings"
