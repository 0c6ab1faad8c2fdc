"""Training and evaluation views: pair sampling, annotation view, collators (with a real tiny processor), the
evaluation view, emotion lists read from the corpus (any taxonomy, and corpora saved before lists were recorded)."""

import time
from collections import Counter

import numpy as np
import pytest
import torch
from datasets import Dataset
from helpers import random_images

from configuration_sevlm import ARTEMIS_EMOTIONS
from processing_sevlm import IGNORE_INDEX
from sevlm.data.schema import corpus_emotions, corpus_features
from sevlm.data.views import (
    AnnotationDataset,
    PairedPaintingDataset,
    SevlmCollator,
    SevlmPairCollator,
    evaluation_view,
)

# painting -> its annotations' emotions (two paintings have a single distinct emotion and never form pairs)
PAINTINGS = {
    "Style/a": ["awe", "awe", "awe", "fear", "sadness"],
    "Style/b": ["sadness", "sadness"],
    "Style/c": ["anger", "something else"],
    "Style/d": ["contentment"],
    "Style/e": ["amusement", "excitement", "amusement", "excitement", "disgust", "fear"],
    "Style/f": ["fear", "fear", "sadness", "sadness"],
}


def make_split(paintings=PAINTINGS, seed=0):
    """A split in the prepared schema; explanation k of painting p is "p k emotion" so pairs can be traced."""
    ids = list(paintings)
    return Dataset.from_dict(
        {
            "painting_id": ids,
            "art_style": [painting_id.split("/")[0] for painting_id in ids],
            "painting": [painting_id.split("/")[1] for painting_id in ids],
            "image": random_images(len(ids), seed=seed),
            "emotions": [paintings[painting_id] for painting_id in ids],
            "explanations": [[f"{painting_id} {k} {emotion}" for k, emotion in enumerate(paintings[painting_id])] for painting_id in ids],
            "emotion_histogram": [emotion_histogram(paintings[painting_id]) for painting_id in ids],
            "source": [["v1"] * len(paintings[painting_id]) for painting_id in ids],
        },
        features=FEATURES,
    )


FEATURES = corpus_features(ARTEMIS_EMOTIONS)


def emotion_histogram(emotions, names=ARTEMIS_EMOTIONS):
    return [emotions.count(name) / len(emotions) for name in names]


# ------------------------------------------------------------------------------------------- pair sampling
def test_pairs_cover_qualifying_paintings_and_never_repeat_an_emotion():
    split = make_split()
    pairs = PairedPaintingDataset(split, seed=3)
    qualifying = [i for i, emotions in enumerate(PAINTINGS.values()) if len(set(emotions)) >= 2]
    assert pairs.rows == qualifying and len(pairs) == 4
    seen = set()
    for epoch in range(60):
        pairs.set_epoch(epoch)
        for index in range(len(pairs)):
            item = pairs[index]
            row = pairs.rows[index]
            painting_id = split[row]["painting_id"]
            first, second = item["emotions"]
            assert first != second
            assert set(item) == {"image", "emotions", "explanations"}
            # Each explanation is the annotation written for that emotion on that painting.
            for emotion, explanation in zip(item["emotions"], item["explanations"]):
                owner, position, written_for = explanation.split(" ", 2)
                assert owner == painting_id and PAINTINGS[painting_id][int(position)] == emotion == written_for
            seen.add(painting_id)
    assert seen == {"Style/a", "Style/c", "Style/e", "Style/f"}
    with pytest.raises(IndexError):
        pairs[len(pairs)]


def test_pairs_are_reproducible_and_change_with_epoch():
    split = make_split()

    def draws(dataset, epoch, order):
        dataset.set_epoch(epoch)
        return {index: dataset.pair_positions(index) for index in order}

    forward = PairedPaintingDataset(split, seed=5)
    backward = PairedPaintingDataset(split, seed=5)
    order = list(range(len(forward)))
    # Same (seed, epoch): same pairs whatever the call order or what was drawn before.
    draws(backward, 9, order)
    assert draws(forward, 2, order) == draws(backward, 2, order[::-1])
    assert draws(forward, 2, order) == draws(PairedPaintingDataset(split, seed=5), 2, order)
    by_epoch = [draws(forward, epoch, order) for epoch in range(12)]
    assert len({str(sorted(d.items())) for d in by_epoch}) > 6
    assert [draws(PairedPaintingDataset(split, seed=6), epoch, order) for epoch in range(12)] != by_epoch


def test_pair_sampling_is_uniform_over_emotions_then_annotations():
    split = make_split({"Style/a": ["awe", "awe", "awe", "fear", "sadness"], "Style/z": ["anger", "fear"]})
    pairs = PairedPaintingDataset(split, seed=0)
    emotions, awe_positions, orders = Counter(), Counter(), Counter()
    epochs = 3000
    for epoch in range(epochs):
        pairs.set_epoch(epoch)
        _, positions = pairs.pair_positions(0)
        labels = [PAINTINGS["Style/a"][p] for p in positions]
        emotions.update(labels)
        orders[labels[0]] += 1
        awe_positions.update(p for p in positions if PAINTINGS["Style/a"][p] == "awe")
    # Distinct emotions are chosen uniformly: each of the 3 is in 2/3 of the pairs (not weighted by counts).
    for emotion in ("awe", "fear", "sadness"):
        assert emotions[emotion] / epochs == pytest.approx(2 / 3, abs=0.04)
        assert orders[emotion] / epochs == pytest.approx(1 / 3, abs=0.04)
    # Then an annotation of the emotion, uniformly.
    for position in (0, 1, 2):
        assert awe_positions[position] / sum(awe_positions.values()) == pytest.approx(1 / 3, abs=0.05)


# ----------------------------------------------------------------------------------------- annotation view
def test_annotation_view_lists_every_annotation_once():
    split = make_split()
    annotations = AnnotationDataset(split)
    assert len(annotations) == sum(len(emotions) for emotions in PAINTINGS.values())
    expected = [(emotion, f"{painting_id} {k} {emotion}") for painting_id, emotions in PAINTINGS.items() for k, emotion in enumerate(emotions)]
    items = [annotations[i] for i in range(len(annotations))]
    assert [(item["emotion"], item["explanation"]) for item in items] == expected
    assert items[0]["image"].size == split[0]["image"].size
    with pytest.raises(IndexError):
        annotations[len(annotations)]
    assert len(AnnotationDataset(split.select([]))) == 0


# ---------------------------------------------------------------------------------------------- collators
def test_pair_collator_builds_contrastive_batches(tiny):
    model, processor = tiny
    pairs = PairedPaintingDataset(make_split(), seed=0)
    features = [pairs[i] for i in range(len(pairs))]
    batch = SevlmPairCollator(processor)(features)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "pixel_values", "image_index"}
    count = len(features)
    assert batch["input_ids"].shape[0] == 2 * count
    assert all(batch[key].shape == batch["input_ids"].shape for key in ("attention_mask", "token_type_ids", "labels"))
    assert batch["input_ids"].shape[1] <= processor.max_length
    assert batch["pixel_values"].shape == (count, 3, 32, 32)
    assert batch["image_index"].tolist() == [k // 2 for k in range(2 * count)]
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert (batch["labels"][:, 0] == IGNORE_INDEX).all()
    # Sequence 2k+1's emotion is decoded back from the ids: the pair order survives collation.
    texts = processor.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert f"the emotion is {features[1]['emotions'][1]} because" in texts[3]
    # End to end: the model's contrastive loss accepts the batch, and gradients flow.
    output = model(**batch)
    assert torch.isfinite(output.contrastive_loss) and output.contrastive_scores.shape == (2 * count, 3)
    output.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.contrastive_head.parameters())
    with pytest.raises(ValueError, match="SevlmPairCollator needs pairs"):
        SevlmPairCollator(processor)([{"image": features[0]["image"], "emotions": ["awe"], "explanations": ["x"]}])


def test_plain_collator_one_image_per_sequence(tiny):
    model, processor = tiny
    annotations = AnnotationDataset(make_split())
    features = [annotations[i] for i in range(5)]
    batch = SevlmCollator(processor)(features)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "pixel_values"}
    assert batch["input_ids"].shape[0] == batch["pixel_values"].shape[0] == 5
    model.config.use_contrastive_loss = False
    output = model(**batch)
    assert torch.isfinite(output.loss)


def test_collator_text_throughput(tokenizer):
    """The text side of the training pipeline (tokenise, segments, labels; no image decode) must exceed 2,000
    sequences per second in one process."""
    import copy

    from helpers import build_tiny

    _, processor = build_tiny(tokenizer=copy.deepcopy(tokenizer))
    rng = np.random.default_rng(0)
    words = "the colors are dark and gloomy while a bright sky makes me feel calm and happy about the storm".split()
    features = [
        {"emotions": list(rng.choice(ARTEMIS_EMOTIONS, size=2, replace=False)),
         "explanations": [" ".join(rng.choice(words, size=rng.integers(5, 25))) for _ in range(2)]}
        for _ in range(512)
    ]
    collator = SevlmPairCollator(processor)
    collator.text_features(features[:32])  # warm-up
    started = time.perf_counter()
    sequences = 0
    for start in range(0, len(features), 32):
        batch = collator.text_features(features[start:start + 32])
        sequences += batch["input_ids"].shape[0]
    rate = sequences / (time.perf_counter() - started)
    assert rate > 2000, f"{rate:.0f} sequences/s"


# ------------------------------------------------------------------------------------------ evaluation view
def test_evaluation_view():
    split = make_split()
    view = evaluation_view(split)
    assert view.column_names == ["painting_id", "image", "references", "emotion_histogram"]
    assert len(view) == len(PAINTINGS)
    by_id = {row["painting_id"]: row for row in view}
    assert by_id["Style/a"]["references"] == [f"Style/a {k} {e}" for k, e in enumerate(PAINTINGS["Style/a"])]
    assert by_id["Style/a"]["emotion_histogram"] == pytest.approx(emotion_histogram(PAINTINGS["Style/a"]))
    assert by_id["Style/a"]["image"].size == (48, 40)


def test_emotions_come_out_as_names_in_any_taxonomy():
    names = ["très content", "meh", "fed up"]
    features = corpus_features(names)
    split = Dataset.from_dict(
        {
            "painting_id": ["s/a", "s/b"], "art_style": ["s", "s"], "painting": ["a", "b"],
            "image": random_images(2), "emotions": [["meh", "très content", "meh"], ["fed up"]],
            "explanations": [["x", "y", "z"], ["w"]], "emotion_histogram": [[1 / 3, 2 / 3, 0], [0, 0, 1]],
            "source": [["mine"] * 3, ["mine"]],
        },
        features=features,
    )
    assert corpus_emotions(split) == names
    assert split.with_format(None)[0]["emotions"] == [1, 0, 1]  # stored as class ids
    assert PairedPaintingDataset(split, seed=0)[0]["emotions"] in (["meh", "très content"], ["très content", "meh"])
    assert [AnnotationDataset(split)[i]["emotion"] for i in range(4)] == ["meh", "très content", "meh", "fed up"]


def test_corpora_saved_before_emotion_lists_are_artemis():
    """Old corpora stored emotion names as strings with a 9-share histogram: they read as ArtEmis corpora."""
    from datasets import Features, Image, List, Value

    old = Features({**{k: v for k, v in FEATURES.items() if k != "emotions"}, "emotions": List(Value("string")), "image": Image()})
    split = Dataset.from_dict(
        {"painting_id": ["s/a"], "art_style": ["s"], "painting": ["a"], "image": random_images(1), "emotions": [["awe", "fear"]],
         "explanations": [["x", "y"]], "emotion_histogram": [emotion_histogram(["awe", "fear"])], "source": [["v1", "v1"]]},
        features=old,
    )
    assert corpus_emotions(split) == list(ARTEMIS_EMOTIONS)
    assert sorted(PairedPaintingDataset(split)[0]["emotions"]) == ["awe", "fear"]
    with pytest.raises(ValueError, match="not `emotions`"):
        corpus_emotions(split.remove_columns("emotions"))