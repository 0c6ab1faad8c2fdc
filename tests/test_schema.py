"""The corpus schema helpers: loading a prepared corpus, and short errors for anything else."""

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.data.schema import check_corpus, corpus_emotions, corpus_features, emotion_names, load_corpus

NAMES = ["calm", "tense"]


def text_split(rows=3):
    """A split with the schema's text columns (no images: nothing here decodes one)."""
    features = corpus_features(NAMES, with_image=False)
    return Dataset.from_dict(
        {"painting_id": [f"s/{k}" for k in range(rows)], "art_style": ["s"] * rows, "painting": [str(k) for k in range(rows)],
         "emotions": [[0, 1]] * rows, "explanations": [["a long text " * 20, "b"]] * rows,
         "emotion_histogram": [[0.5, 0.5]] * rows, "source": [["x", "x"]] * rows},
        features=features,
    )


def test_load_corpus_reads_a_saved_corpus_and_checks_its_splits(tmp_path):
    DatasetDict({"train": text_split(), "validation": text_split(1)}).save_to_disk(str(tmp_path / "corpus"))
    corpus = load_corpus(tmp_path / "corpus", splits=("train", "validation"))
    assert isinstance(corpus, DatasetDict) and corpus_emotions(corpus) == NAMES
    with pytest.raises(ValueError, match=r"--dataset_path .*corpus has the splits train, validation, not test\."):
        load_corpus(tmp_path / "corpus", splits=("train", "test"))
    with pytest.raises(FileNotFoundError, match=r"--dataset_path .*nowhere is not a folder; prepare it with sevlm-prepare"):
        load_corpus(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no saved corpus"):
        load_corpus(tmp_path / "empty", flag="--corpus")


def test_a_dataset_where_a_corpus_is_expected_is_a_short_error(tmp_path):
    """Indexing or listing a Dataset by split names used to print every row (a 464 KB message)."""
    big = text_split(2000)
    big.save_to_disk(str(tmp_path / "single"))
    with pytest.raises(ValueError) as raised:
        load_corpus(tmp_path / "single", splits=("train",))
    message = str(raised.value)
    assert len(message) < 600, len(message)
    assert "holds a Dataset (2000 rows, columns painting_id, art_style" in message
    assert "not a corpus of splits (a DatasetDict with train / validation / test)" in message
    assert "a long text" not in message
    with pytest.raises(ValueError, match=r"^The corpus is a Dataset \(2000 rows") as raised:
        check_corpus(big)
    assert len(str(raised.value)) < 600
    with pytest.raises(ValueError, match="is a list, not a corpus of splits"):
        check_corpus([1, 2])
    assert check_corpus(DatasetDict({"train": big}))["train"] is big


def test_corpus_emotions_of_what_is_not_a_corpus_are_short_errors():
    with pytest.raises(TypeError, match=r"got a dict\.$"):
        corpus_emotions({"emotions": NAMES})
    with pytest.raises(ValueError, match="not `emotions`"):
        corpus_emotions(text_split().remove_columns("emotions"))


def test_corpora_without_an_emotion_list_are_no_longer_read_as_artemis():
    """Corpora of versions before the emotion list was recorded (string emotions, 9 shares) must be prepared again:
    reading their names as ArtEmis's would silently mislabel any other taxonomy with 9 classes."""
    old = Features({"emotions": List(Value("string")), "emotion_histogram": List(Value("float32"), length=9)})
    split = Dataset.from_dict({"emotions": [["awe", "fear"]], "emotion_histogram": [[0.0] * 9]}, features=old)
    with pytest.raises(ValueError, match="does not record its emotion list .* prepare it with sevlm-prepare"):
        corpus_emotions(split)
    features = Features({"emotions": List(ClassLabel(names=list(ARTEMIS_EMOTIONS)))})
    assert emotion_names(features, [[1, 6]]) == [["awe", "fear"]]


def test_a_corpus_file_cut_short_is_named(tmp_path):
    """A copy cut short is an error naming the damaged file, in every command that reads a corpus (they all call
    load_corpus), not pyarrow's bare 'Expected to read N bytes'."""
    DatasetDict({"train": text_split(), "test": text_split(2)}).save_to_disk(str(tmp_path / "corpus"))
    (arrow,) = (tmp_path / "corpus" / "test").glob("*.arrow")
    arrow.write_bytes(arrow.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"--dataset_path .*corpus cannot be read: .*test/data-00000-of-00001\.arrow cannot be read .*damaged") as raised:
        load_corpus(tmp_path / "corpus", ["test"])
    assert "train" not in str(raised.value).split("(")[0]  # the intact split is not named
