"""Training and evaluation views: pair sampling (also in persistent loader workers), annotation view, collators
(with a real tiny processor), the fast image path against the processor's own preprocessing, the evaluation view,
emotion lists read from the corpus (any taxonomy)."""

import copy
import io
from collections import Counter

import numpy as np
import pytest
import torch
from datasets import Dataset
from helpers import corpus_texts, random_images
from PIL import Image
from transformers import CLIPVisionConfig

from configuration_sevlm import ARTEMIS_EMOTIONS
from processing_sevlm import IGNORE_INDEX, SevlmProcessor, load_image
from sevlm.data.schema import corpus_emotions, corpus_features
from sevlm.data.views import (
    AnnotationDataset,
    PairedPaintingDataset,
    PixelValues,
    SevlmCollator,
    SevlmPairCollator,
    evaluation_view,
    image_source,
)
from sevlm.tokenizer import train_tokenizer

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


def explanations_by_item(batches):
    return [tuple(item["explanations"]) for batch in batches for item in batch]


def test_persistent_loader_workers_draw_each_epochs_pairs():
    """The DataLoader's persistent workers keep their own copy of the view: the epoch set in the main process must
    still reach them, or the pairs would never change after the first epoch."""
    pairs = PairedPaintingDataset(make_split(), seed=1)
    loader = torch.utils.data.DataLoader(pairs, batch_size=2, num_workers=1, persistent_workers=True, collate_fn=list)
    seen = []
    for epoch in range(4):
        pairs.set_epoch(epoch)
        expected = [tuple(pairs[index]["explanations"]) for index in range(len(pairs))]  # drawn in this process
        seen.append(explanations_by_item(loader))
        assert seen[-1] == expected, epoch
    assert len(set(map(tuple, seen))) > 1  # the draws did change between epochs


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
    # Images come as their stored files, decoded once in the collator.
    assert load_image(image_source(items[0]["image"])).size == split[0]["image"].size
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


# ------------------------------------------------------------------------------------------ fast image path
GREY_LEVEL = 1 / 255 / min(0.26862954, 0.26130258, 0.27577711)  # one grey level after CLIP's normalisation


def painting_file(width, height, seed=0, kind="JPEG", mode="RGB"):
    """An image file the way a prepared corpus stores paintings (JPEG, quality 90): gradients, flat patches, edges
    and brush-like noise, which resizing filters treat differently."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, 127 + 60 * np.sin(x / 17) * np.cos(y / 11)], -1)
    for _ in range(30):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(5, 60)
        pixels[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] = rng.integers(0, 255, 3)
    pixels = np.clip(pixels + rng.normal(0, 10, pixels.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, kind, **({"quality": 90} if kind == "JPEG" else {}))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def clip_size_processor():
    """A processor as training builds it for a CLIP ViT-B/16 tower: 224 px, bicubic, CLIP's mean and std."""
    tokenizer = train_tokenizer(corpus_texts(), vocab_size=500)
    return SevlmProcessor.from_vision_text(CLIPVisionConfig(image_size=224), tokenizer)


def test_fast_image_path_gives_the_processors_numbers(clip_size_processor):
    processor = clip_size_processor
    fast = PixelValues(processor)
    assert fast.settings is not None and fast.settings["size"] == (224, 224)
    # Paintings as prepared corpora store them (long side 448, any shape), and other files the loader reads.
    sizes = [(448, 448), (448, 336), (300, 448), (448, 150), (120, 90)]
    sources = [painting_file(width, height, seed) for seed, (width, height) in enumerate(sizes)]
    sources += [painting_file(448, 336, 5, "PNG", "RGBA"), painting_file(336, 448, 6, "PNG", "L")]
    expected = processor.preprocess_images(sources)
    stored = [{"bytes": data, "path": None} for data in sources]  # as the training views hand them over
    actual = fast(stored)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    difference = (actual - expected).abs()
    # At most one grey level apart (rounding), two where a small image is enlarged; almost every value is equal.
    assert difference[:4].max() <= GREY_LEVEL + 1e-5 and difference[5:].max() <= GREY_LEVEL + 1e-5
    assert difference[4].max() <= 2 * GREY_LEVEL + 1e-5
    assert difference.mean() < 0.01 * GREY_LEVEL
    # PIL images and arrays are read the same way.
    images = [Image.open(io.BytesIO(data)) for data in sources[:2]]
    assert (fast(images) - processor.preprocess_images(images)).abs().max() <= GREY_LEVEL + 1e-5
    # A large JPEG is decoded at a reduced scale that keeps twice the input size: close, not identical.
    large = painting_file(2000, 1500, 7)
    difference = (fast([large]) - processor.preprocess_images([large])).abs()
    assert difference.mean() < 0.5 * GREY_LEVEL and difference.max() < 8 * GREY_LEVEL


def test_fast_image_path_follows_other_settings(clip_size_processor):
    processor = copy.deepcopy(clip_size_processor)
    sources = [painting_file(448, 336), painting_file(200, 300, 1)]
    # Another filter: PIL's own resize, the same numbers.
    processor.image_processor.resample = Image.Resampling.LANCZOS
    assert (PixelValues(processor)(sources) - processor.preprocess_images(sources)).abs().max() < 1e-5
    # Other mean, std and size are read from the processor.
    processor.image_processor.resample = Image.Resampling.BILINEAR
    processor.image_processor.size = {"height": 96, "width": 128}
    processor.image_processor.crop_size = {"height": 96, "width": 128}
    processor.image_processor.image_mean, processor.image_processor.image_std = [0.5, 0.4, 0.3], [0.2, 0.3, 0.4]
    expected = processor.preprocess_images(sources)
    assert expected.shape == (2, 3, 96, 128)
    assert (PixelValues(processor)(sources) - expected).abs().max() <= 1 / 255 / 0.2 + 1e-5
    # Steps it does not reproduce (a centre crop to another size) leave the work to the processor.
    processor.image_processor.do_center_crop = True
    processor.image_processor.crop_size = {"height": 64, "width": 64}
    fast = PixelValues(processor)
    assert fast.settings is None and torch.equal(fast(sources), processor.preprocess_images(sources))


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


def test_corpora_without_an_emotion_list_must_be_prepared_again():
    """Corpora of versions before the emotion list was recorded are no longer read as ArtEmis: they say so."""
    from datasets import Features, Image, List, Value

    old = Features({**{k: v for k, v in FEATURES.items() if k != "emotions"}, "emotions": List(Value("string")), "image": Image()})
    split = Dataset.from_dict(
        {"painting_id": ["s/a"], "art_style": ["s"], "painting": ["a"], "image": random_images(1), "emotions": [["awe", "fear"]],
         "explanations": [["x", "y"]], "emotion_histogram": [emotion_histogram(["awe", "fear"])], "source": [["v1", "v1"]]},
        features=old,
    )
    with pytest.raises(ValueError, match="does not record its emotion list"):
        PairedPaintingDataset(split)
    with pytest.raises(ValueError, match="not `emotions`"):
        corpus_emotions(split.remove_columns("emotions"))
