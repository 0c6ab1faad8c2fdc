"""The text-emotion classifier behind emotional alignment (EA): learning, persistence, the CLI."""

import json

import pytest
import torch
from datasets import ClassLabel, DatasetDict, Features, List, Value

import sevlm.evaluation.classifier as ec
from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.cli.emotion_classifier import main as classifier_main
from sevlm.io import read_record

# A separable toy task: each emotion has its own cue words, mixed with shared filler words.
CUES = {
    "amusement": ["funny", "silly", "laugh"],
    "awe": ["majestic", "huge", "vast"],
    "sadness": ["lonely", "sad", "tears"],
    "fear": ["storm", "scary", "dark"],
}
FILLERS = ["the painting", "this picture shows", "i see", "it looks", "the colors are"]


def toy_corpus(variant=0):
    texts, labels = [], []
    for emotion, cues in CUES.items():
        for i, filler in enumerate(FILLERS):
            cue = cues[(i + variant) % len(cues)]
            texts.append(f"{filler} {cue} and {cues[(i + variant + 1) % len(cues)]}")
            labels.append(emotion)
    return texts, labels


@pytest.fixture(scope="module")
def trained():
    texts, labels = toy_corpus()
    return ec.TextEmotionClassifier(min_count=1, embedding_dim=16).fit(texts, labels, epochs=60, batch_size=8, learning_rate=0.05)


def test_learns_a_separable_task(trained):
    texts, labels = toy_corpus(variant=1)  # other cue pairs and fillers than in training
    assert trained.predict(texts) == labels
    assert trained.accuracy(texts, labels) == 1.0
    assert trained.predict(["a vast and majestic view"]) == ["awe"]
    probabilities = trained.predict_proba(["funny", ""])
    assert probabilities.shape == (2, len(ARTEMIS_EMOTIONS))
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2))
    assert trained.predict([]) == []


def test_save_load_round_trip(trained, tmp_path):
    trained.save(tmp_path)
    assert (tmp_path / ec.WEIGHTS_NAME).is_file() and (tmp_path / ec.CONFIG_NAME).is_file()
    loaded = ec.TextEmotionClassifier.load(tmp_path)
    texts, _ = toy_corpus(variant=2)
    texts += ["words never seen before", ""]
    torch.testing.assert_close(loaded.predict_proba(texts), trained.predict_proba(texts))
    assert loaded.labels == list(ARTEMIS_EMOTIONS) and loaded.vocab == trained.vocab


def test_features_include_bigrams():
    assert ec.text_features("Not HAPPY, at all") == ["not", "happy", "at", "all", "not happy", "happy at", "at all"]


def test_bad_inputs(tmp_path):
    classifier = ec.TextEmotionClassifier()
    with pytest.raises(RuntimeError, match="not trained"):
        classifier.predict(["a"])
    with pytest.raises(ValueError, match="'joy'.*row 1"):
        classifier.fit(["a", "b"], ["awe", "joy"])
    with pytest.raises(ValueError, match="as many texts as labels"):
        classifier.fit(["a", "b"], ["awe"])
    with pytest.raises(FileNotFoundError, match="No emotion classifier"):
        ec.TextEmotionClassifier.load(tmp_path)


def text_only_dataset(path):
    """The prepared schema's text columns (the classifier never reads images), in the corpus's own 4-class taxonomy."""
    features = Features(
        {
            "painting_id": Value("string"),
            "emotions": List(ClassLabel(names=list(CUES))),
            "explanations": List(Value("string")),
        }
    )

    def split(variant):
        texts, labels = toy_corpus(variant)
        return {
            "painting_id": [f"style/p{variant}_{i}" for i in range(0, len(texts), 2)],
            "emotions": [labels[i : i + 2] for i in range(0, len(texts), 2)],
            "explanations": [texts[i : i + 2] for i in range(0, len(texts), 2)],
        }

    from datasets import Dataset

    DatasetDict(
        train=Dataset.from_dict(split(0), features=features), validation=Dataset.from_dict(split(1), features=features)
    ).save_to_disk(str(path))


def test_cli_trains_and_reports_validation_accuracy(tmp_path, capsys):
    text_only_dataset(tmp_path / "data")
    argv = ["--dataset_path", str(tmp_path / "data"), "--min_count", "1", "--epochs", "60", "--batch_size", "8",
            "--learning_rate", "0.05", "--embedding_dim", "16"]
    assert classifier_main(argv) == 0
    output = tmp_path / "data" / "emotion_classifier"  # the default output folder
    written = json.loads((output / ec.RESULTS_NAME).read_text())
    assert written["labels"] == list(CUES)  # the corpus's own emotion list, not ArtEmis's
    assert written["validation_accuracy"] == 1.0 and written["validation_chance_accuracy"] == 0.25
    assert written["num_train_annotations"] == written["num_validation_annotations"] == 20
    assert "validation accuracy 1.0000 (chance 0.2500)" in capsys.readouterr().out
    loaded = ec.TextEmotionClassifier.load(output)
    assert loaded.labels == list(CUES) and loaded.predict(["so lonely and sad"]) == ["sadness"]
    # An existing classifier is replaced only when asked.
    assert classifier_main(argv) == 1 and "--overwrite" in capsys.readouterr().err
    assert classifier_main(argv + ["--overwrite"]) == 0
    # It belongs to the corpus (preparing the corpus again replaces it), and only its own files are ever replaced.
    assert read_record(tmp_path / "data")["emotion_classifier"] == "prepared corpus"
    (output / "notes.txt").write_text("mine")
    assert classifier_main(argv + ["--overwrite"]) == 0 and (output / "notes.txt").read_text() == "mine"
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    (elsewhere / ec.CONFIG_NAME).write_text("{}")
    assert classifier_main(argv + ["--output_dir", str(elsewhere), "--overwrite"]) == 1
    assert "did not write" in capsys.readouterr().err and (elsewhere / ec.CONFIG_NAME).read_text() == "{}"


def test_near_chance_is_recognised():
    assert ec.chance_accuracy(["a", "a", "b", "c"]) == 0.5
    assert ec.is_near_chance({"validation_accuracy": 0.52, "validation_chance_accuracy": 0.5})
    assert not ec.is_near_chance({"validation_accuracy": 0.9, "validation_chance_accuracy": 0.5})
    assert not ec.is_near_chance({})


def test_chance_words_tell_below_from_near_and_too_few():
    from sevlm.evaluation.classifier import chance_words, is_near_chance

    below = {"validation_accuracy": 0.0, "validation_chance_accuracy": 1.0, "num_validation_annotations": 2}
    assert is_near_chance(below)
    assert chance_words(below) == "is below chance (1.000, always the most frequent emotion), on only 2 held-out annotations (too few to judge it)"
    near = {"validation_accuracy": 0.31, "validation_chance_accuracy": 0.30, "num_validation_annotations": 500}
    assert chance_words(near) == "is near chance (0.300, always the most frequent emotion)"
