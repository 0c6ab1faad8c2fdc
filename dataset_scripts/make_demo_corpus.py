"""A small procedural ArtEmis-like corpus, so that training, evaluation and prediction run offline anywhere.

Same columns and Features as `prepare_artemis` (one row per "painting"). Each painting is a 64x64 picture drawn
for one intended emotion: a palette (hue, brightness, saturation) and a shape family per emotion, with jitter,
pixel noise, shapes borrowed from other emotions and, now and then, another emotion's background. Each painting
has 4-6 annotations: most paintings have a clear majority emotion (share > 0.5) plus minority emotions (so
contrastive pairs exist); some have no majority. Explanations come from varied templates that combine emotion
vocabulary with the painting's own colours and shapes.

Also writes `<output_dir>/demo_vad_lexicon.txt` (NRC-VAD file format) covering the demo vocabulary. Its values are
ILLUSTRATIVE, chosen by hand for this demo; they are not NRC-VAD values. Real training uses the NRC-VAD lexicon.

    python -m dataset_scripts.make_demo_corpus [--output_dir data/demo] [--num_paintings 2400] [--seed 0]
"""

import argparse
import colorsys
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from datasets import DatasetDict
from PIL import Image as PILImage
from PIL import ImageDraw

try:
    from dataset_scripts.prepare_artemis import FEATURES, dataset_from_columns, emotion_histogram
except ImportError:  # run as `python dataset_scripts/make_demo_corpus.py`: put the repo root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dataset_scripts.prepare_artemis import FEATURES, dataset_from_columns, emotion_histogram
from configuration_sevlm import ARTEMIS_EMOTIONS

DEMO_DIR = "data/demo"
NUM_PAINTINGS = 2400
IMAGE_SIZE = 64
PARAMS_NAME = "demo_params.json"
LEXICON_NAME = "demo_vad_lexicon.txt"
# Bump when the generator changes, so that an old corpus on disk is not reused as if it were current.
GENERATOR_VERSION = 1
SPLIT_SHARES = (("test", 0.10), ("validation", 0.05))  # per intended emotion; the rest is train
DEMO_STYLES = ("Demo_Abstract", "Demo_Landscape", "Demo_Geometric", "Demo_Figurative")

# Per emotion: background (hue in degrees, saturation, value), accent colours, and the shape family.
PALETTES = {
    "amusement": {"background": (52, 0.75, 0.95), "accents": [(330, 0.6, 0.95), (190, 0.7, 0.9), (115, 0.6, 0.85)], "shape": "dots"},
    "awe": {"background": (232, 0.7, 0.45), "accents": [(45, 0.45, 0.97), (0, 0.0, 0.95)], "shape": "peaks"},
    "contentment": {"background": (105, 0.35, 0.75), "accents": [(60, 0.3, 0.92), (195, 0.3, 0.85)], "shape": "bands"},
    "excitement": {"background": (22, 0.9, 0.95), "accents": [(320, 0.9, 0.9), (56, 0.9, 1.0)], "shape": "rays"},
    "anger": {"background": (0, 0.9, 0.55), "accents": [(0, 0.0, 0.05), (12, 1.0, 0.85)], "shape": "zigzags"},
    "disgust": {"background": (68, 0.6, 0.38), "accents": [(30, 0.6, 0.32), (95, 0.5, 0.5)], "shape": "blotches"},
    "fear": {"background": (262, 0.3, 0.1), "accents": [(0, 0.0, 0.85), (270, 0.35, 0.3)], "shape": "spikes"},
    "sadness": {"background": (215, 0.2, 0.5), "accents": [(215, 0.12, 0.78), (222, 0.3, 0.28)], "shape": "streaks"},
    "something else": {"background": (0, 0.0, 0.62), "accents": None, "shape": "squares"},  # accents: any hue
}

# Emotion vocabulary for explanations: adjectives, "makes me feel ..." words, and things it reminds of.
VOCABULARY = {
    "amusement": {"adj": ["funny", "playful", "silly", "whimsical", "cheerful"], "feel": ["amused", "happy", "cheerful"],
                  "noun": ["a circus", "a joke", "a birthday party", "laughter"]},
    "awe": {"adj": ["majestic", "grand", "vast", "sublime", "magnificent"], "feel": ["in awe", "small", "amazed"],
            "noun": ["a cathedral", "the heavens", "eternity", "wonder"]},
    "contentment": {"adj": ["calm", "peaceful", "serene", "gentle", "soothing"], "feel": ["relaxed", "content", "at peace"],
                    "noun": ["a quiet afternoon", "a lazy summer", "home", "peace"]},
    "excitement": {"adj": ["lively", "energetic", "vibrant", "thrilling", "dynamic"], "feel": ["excited", "energized", "thrilled"],
                   "noun": ["a festival", "fireworks", "a dance party", "a race"]},
    "anger": {"adj": ["angry", "violent", "aggressive", "furious", "harsh"], "feel": ["angry", "furious", "irritated"],
              "noun": ["rage", "a fight", "a violent storm", "war"]},
    "disgust": {"adj": ["disgusting", "gross", "rotten", "filthy", "repulsive"], "feel": ["disgusted", "sick", "nauseous"],
                "noun": ["rot", "mold", "spoiled food", "a swamp"]},
    "fear": {"adj": ["scary", "eerie", "ominous", "threatening", "creepy"], "feel": ["afraid", "scared", "uneasy"],
             "noun": ["a nightmare", "danger", "a haunted forest", "death"]},
    "sadness": {"adj": ["sad", "gloomy", "lonely", "melancholy", "bleak"], "feel": ["sad", "lonely", "depressed"],
                "noun": ["loss", "a funeral", "grief", "a rainy goodbye"]},
    "something else": {"adj": ["strange", "confusing", "odd", "puzzling", "unusual"], "feel": ["confused", "curious", "puzzled"],
                       "noun": ["a riddle", "a puzzle", "nothing in particular", "a question"]},
}

TEMPLATES = (
    "the {accent} {shape} look {adj}",
    "the {background} background makes me feel {feel}",
    "the {adj} {shape} make me feel {feel}",
    "i feel {feel} because the {shape} are so {adj}",
    "so much {background} feels {adj} to me",
    "the {shape} remind me of {noun}",
    "{accent} {shape} on {background} feel {adj} and {adj2}",
    "the colors are {adj} and the {shape} remind me of {noun}",
    "the {background} and {accent} colors make me feel {feel}",
    "it looks {adj} like {noun}",
)

# Where minority annotations go: two related emotions weigh twice as much as the others, so no single minority
# emotion dominates a class (pair sampling treats a painting's distinct emotions alike).
RELATED = {
    "amusement": ("excitement", "contentment"),
    "awe": ("fear", "contentment"),
    "contentment": ("awe", "amusement"),
    "excitement": ("amusement", "awe"),
    "anger": ("fear", "disgust"),
    "disgust": ("anger", "sadness"),
    "fear": ("sadness", "awe"),
    "sadness": ("fear", "contentment"),
    "something else": ("awe", "sadness"),
}

# ILLUSTRATIVE valence / arousal / dominance values (0..1) for the demo vocabulary, set by hand for this demo only.
# They are NOT taken from NRC-VAD; real training uses the NRC-VAD lexicon.
DEMO_VAD = {
    "funny": (0.85, 0.60, 0.60), "playful": (0.85, 0.65, 0.60), "silly": (0.70, 0.55, 0.45),
    "whimsical": (0.75, 0.50, 0.50), "cheerful": (0.90, 0.60, 0.65), "amused": (0.85, 0.55, 0.60),
    "happy": (0.95, 0.60, 0.70), "circus": (0.70, 0.70, 0.50), "joke": (0.80, 0.55, 0.55),
    "birthday": (0.85, 0.60, 0.55), "party": (0.85, 0.75, 0.60), "laughter": (0.90, 0.70, 0.60),
    "majestic": (0.80, 0.55, 0.75), "grand": (0.75, 0.50, 0.75), "vast": (0.60, 0.45, 0.55),
    "sublime": (0.85, 0.50, 0.60), "magnificent": (0.90, 0.60, 0.75), "awe": (0.75, 0.65, 0.40),
    "small": (0.40, 0.30, 0.20), "amazed": (0.80, 0.75, 0.50), "cathedral": (0.65, 0.35, 0.60),
    "heavens": (0.80, 0.40, 0.55), "eternity": (0.55, 0.35, 0.50), "wonder": (0.80, 0.60, 0.50),
    "calm": (0.80, 0.10, 0.60), "peaceful": (0.90, 0.10, 0.60), "serene": (0.88, 0.12, 0.60),
    "gentle": (0.80, 0.20, 0.50), "soothing": (0.85, 0.15, 0.55), "relaxed": (0.85, 0.10, 0.60),
    "content": (0.82, 0.20, 0.62), "peace": (0.90, 0.10, 0.60), "quiet": (0.70, 0.12, 0.50),
    "afternoon": (0.65, 0.30, 0.50), "lazy": (0.50, 0.10, 0.35), "summer": (0.80, 0.50, 0.55),
    "home": (0.85, 0.25, 0.65),
    "lively": (0.85, 0.80, 0.65), "energetic": (0.80, 0.90, 0.70), "vibrant": (0.85, 0.80, 0.65),
    "thrilling": (0.85, 0.92, 0.60), "dynamic": (0.75, 0.85, 0.70), "excited": (0.85, 0.90, 0.60),
    "energized": (0.80, 0.88, 0.70), "thrilled": (0.90, 0.90, 0.65), "festival": (0.85, 0.80, 0.55),
    "fireworks": (0.80, 0.90, 0.50), "dance": (0.85, 0.80, 0.60), "race": (0.60, 0.85, 0.60),
    "angry": (0.10, 0.85, 0.65), "violent": (0.08, 0.92, 0.70), "aggressive": (0.15, 0.88, 0.75),
    "furious": (0.08, 0.95, 0.70), "harsh": (0.18, 0.65, 0.60), "irritated": (0.20, 0.70, 0.50),
    "rage": (0.08, 0.95, 0.70), "fight": (0.15, 0.88, 0.60), "storm": (0.30, 0.80, 0.45), "war": (0.05, 0.90, 0.55),
    "disgusting": (0.08, 0.60, 0.45), "gross": (0.12, 0.55, 0.45), "rotten": (0.08, 0.45, 0.35),
    "filthy": (0.10, 0.50, 0.40), "repulsive": (0.08, 0.60, 0.45), "disgusted": (0.10, 0.60, 0.45),
    "sick": (0.12, 0.45, 0.25), "nauseous": (0.12, 0.50, 0.25), "rot": (0.10, 0.40, 0.30),
    "mold": (0.15, 0.35, 0.30), "spoiled": (0.15, 0.40, 0.35), "swamp": (0.30, 0.40, 0.35),
    "scary": (0.12, 0.85, 0.25), "eerie": (0.22, 0.70, 0.30), "ominous": (0.18, 0.70, 0.35),
    "threatening": (0.12, 0.82, 0.45), "creepy": (0.15, 0.72, 0.30), "afraid": (0.12, 0.80, 0.18),
    "scared": (0.12, 0.82, 0.18), "uneasy": (0.25, 0.60, 0.25), "nightmare": (0.08, 0.85, 0.20),
    "danger": (0.12, 0.88, 0.35), "haunted": (0.18, 0.75, 0.25), "death": (0.05, 0.60, 0.20),
    "sad": (0.10, 0.30, 0.22), "gloomy": (0.15, 0.25, 0.28), "lonely": (0.12, 0.25, 0.20),
    "melancholy": (0.20, 0.22, 0.30), "bleak": (0.15, 0.25, 0.30), "depressed": (0.08, 0.25, 0.18),
    "loss": (0.12, 0.40, 0.20), "funeral": (0.10, 0.35, 0.25), "grief": (0.08, 0.45, 0.20),
    "goodbye": (0.30, 0.35, 0.35), "rainy": (0.35, 0.30, 0.40),
    "strange": (0.40, 0.50, 0.40), "confusing": (0.30, 0.55, 0.30), "odd": (0.40, 0.45, 0.40),
    "puzzling": (0.40, 0.50, 0.35), "unusual": (0.50, 0.50, 0.45), "confused": (0.30, 0.50, 0.25),
    "curious": (0.65, 0.60, 0.50), "puzzled": (0.35, 0.50, 0.30), "riddle": (0.55, 0.50, 0.45),
    "puzzle": (0.55, 0.45, 0.50), "question": (0.50, 0.45, 0.45), "nothing": (0.35, 0.20, 0.30),
    "red": (0.50, 0.75, 0.60), "orange": (0.65, 0.60, 0.55), "yellow": (0.75, 0.55, 0.55),
    "green": (0.70, 0.35, 0.55), "blue": (0.62, 0.30, 0.55), "purple": (0.60, 0.40, 0.55),
    "pink": (0.72, 0.45, 0.45), "brown": (0.45, 0.30, 0.50), "black": (0.30, 0.40, 0.55),
    "white": (0.70, 0.25, 0.50), "grey": (0.40, 0.15, 0.40), "olive": (0.45, 0.25, 0.45),
    "dark": (0.30, 0.40, 0.45), "bright": (0.80, 0.60, 0.60), "colors": (0.65, 0.45, 0.50),
    "dots": (0.60, 0.40, 0.45), "peaks": (0.65, 0.50, 0.65), "bands": (0.55, 0.25, 0.50),
    "rays": (0.70, 0.60, 0.55), "zigzags": (0.45, 0.65, 0.50), "blotches": (0.30, 0.35, 0.40),
    "spikes": (0.25, 0.70, 0.55), "streaks": (0.45, 0.40, 0.45), "squares": (0.50, 0.25, 0.50),
    "feel": (0.55, 0.40, 0.45), "background": (0.50, 0.20, 0.45), "like": (0.70, 0.35, 0.55),
}


# ------------------------------------------------------------------------------------------------- drawing
def hsv(hue, saturation, value):
    """(hue in degrees, saturation, value) -> RGB tuple of ints."""
    red, green, blue = colorsys.hsv_to_rgb((hue % 360) / 360, min(max(saturation, 0), 1), min(max(value, 0), 1))
    return int(red * 255), int(green * 255), int(blue * 255)


def color_name(hue, saturation, value):
    """A plain English name for an HSV colour (used in the explanations, so words match the picture)."""
    if value < 0.2:
        return "black"
    if saturation < 0.18:
        return "white" if value > 0.85 else "grey"
    hue %= 360
    if 40 <= hue < 75 and value < 0.5:
        return "olive"
    if 10 <= hue < 45 and value < 0.5:
        return "brown"
    for bound, name in ((12, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (250, "blue"),
                        (290, "purple"), (345, "pink"), (361, "red")):
        if hue < bound:
            return name
    return "red"


def jitter(color, rng, hue=12.0, amount=0.08):
    """A nearby colour: the same family, never exactly the same."""
    h, s, v = color
    return (h + rng.uniform(-hue, hue), s + rng.uniform(-amount, amount), v + rng.uniform(-amount, amount))


def accent_colors(emotion, rng):
    accents = PALETTES[emotion]["accents"]
    if accents is None:  # "something else": any hue, mid saturation
        return [(rng.uniform(0, 360), rng.uniform(0.4, 0.8), rng.uniform(0.5, 0.9)) for _ in range(3)]
    return [jitter(color, rng) for color in accents]


def draw_shapes(draw, shape, colors, rng, scale=1.0):
    """Draw one emotion's shape family with `colors` (HSV); `scale` < 1 draws a sparse version (a distractor)."""
    size = IMAGE_SIZE
    pick = lambda: hsv(*colors[rng.integers(len(colors))])  # noqa: E731 - a colour per shape
    count = lambda low, high: max(1, int(rng.integers(low, high) * scale))  # noqa: E731
    if shape == "dots":
        for _ in range(count(10, 20)):
            x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2, 5)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=pick())
    elif shape == "peaks":
        for _ in range(count(1, 3)):
            apex, width = rng.uniform(0.3, 0.7) * size, rng.uniform(0.5, 0.9) * size
            draw.polygon([(apex - width / 2, size), (apex, rng.uniform(0.1, 0.3) * size), (apex + width / 2, size)], fill=pick())
    elif shape == "bands":
        top = rng.uniform(0.35, 0.6) * size
        for _ in range(count(3, 6)):
            height = rng.uniform(3, 8)
            draw.rectangle([0, top, size, top + height], fill=pick())
            top += height + rng.uniform(1, 4)
        x, y, r = rng.uniform(10, 54), rng.uniform(6, 16), rng.uniform(4, 7)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=pick())
    elif shape == "rays":
        cx, cy = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.7) * size
        for angle in np.linspace(0, 2 * np.pi, count(8, 15), endpoint=False) + rng.uniform(0, 1):
            draw.line([cx, cy, cx + size * np.cos(angle), cy + size * np.sin(angle)], fill=pick(), width=int(rng.integers(2, 4)))
    elif shape == "zigzags":
        for _ in range(count(2, 5)):
            y, points = rng.uniform(5, size - 5), []
            for x in np.linspace(-4, size + 4, int(rng.integers(5, 9))):
                points.append((x, y + rng.uniform(-10, 10)))
            draw.line(points, fill=pick(), width=int(rng.integers(2, 4)))
    elif shape == "blotches":
        for _ in range(count(5, 10)):
            x, y = rng.uniform(0, size), rng.uniform(0, size)
            points = [(x + rng.uniform(4, 11) * np.cos(a), y + rng.uniform(4, 11) * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 7)]
            draw.polygon(points, fill=pick())
    elif shape == "spikes":
        for _ in range(count(4, 9)):
            x, width = rng.uniform(0, size), rng.uniform(3, 7)
            draw.polygon([(x - width / 2, size), (x + rng.uniform(-4, 4), rng.uniform(0.15, 0.6) * size), (x + width / 2, size)], fill=pick())
        x = rng.uniform(16, 48)
        draw.rectangle([x - 2, rng.uniform(20, 30), x + 2, rng.uniform(44, 56)], fill=pick())  # a pale figure
    elif shape == "streaks":
        slant = rng.uniform(-3, 3)
        for _ in range(count(18, 34)):
            x, y, length = rng.uniform(-4, size + 4), rng.uniform(-4, size), rng.uniform(5, 12)
            draw.line([x, y, x + slant, y + length], fill=pick(), width=1)
        x = rng.uniform(16, 48)
        draw.ellipse([x - 4, 36, x + 4, 60], fill=pick())  # a drooping figure
    elif shape == "squares":
        for _ in range(count(5, 12)):
            x, y, w, h = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(5, 18), rng.uniform(5, 18)
            draw.rectangle([x, y, x + w, y + h], fill=pick())
    else:
        raise ValueError(f"Unknown shape family {shape!r}.")


def draw_painting(emotion, rng):
    """A 64x64 RGB picture for `emotion`, and the words that describe it (background, accent, shape)."""
    background = jitter(PALETTES[emotion]["background"], rng)
    if rng.random() < 0.08:  # now and then another emotion's background: colour alone is not the answer
        other = ARTEMIS_EMOTIONS[rng.integers(len(ARTEMIS_EMOTIONS))]
        background = jitter(PALETTES[other]["background"], rng)
    if emotion == "something else":
        background = (rng.uniform(0, 360), rng.uniform(0.0, 0.25), rng.uniform(0.45, 0.75))
    top, bottom = np.array(hsv(*background), float), np.array(hsv(*jitter(background, rng)), float)
    # A vertical gradient between two nearby colours, then shapes, then pixel noise.
    ramp = np.linspace(0, 1, IMAGE_SIZE)[:, None, None]
    canvas = (top * (1 - ramp) + bottom * ramp) * np.ones((1, IMAGE_SIZE, 1))
    image = PILImage.fromarray(canvas.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    accents = accent_colors(emotion, rng)
    if rng.random() < 0.3:  # a few shapes of another emotion, drawn first so the painting's own stay on top
        other = ARTEMIS_EMOTIONS[rng.integers(len(ARTEMIS_EMOTIONS))]
        draw_shapes(draw, PALETTES[other]["shape"], accent_colors(other, rng), rng, scale=0.4)
    draw_shapes(draw, PALETTES[emotion]["shape"], accents, rng)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 9, (IMAGE_SIZE, IMAGE_SIZE, 3))
    image = PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    words = {"background": color_name(*background), "accent": color_name(*accents[0]), "shape": PALETTES[emotion]["shape"]}
    return image, words


# ----------------------------------------------------------------------------------------------- annotations
def annotation_emotions(emotion, rng):
    """4-6 emotion labels: mostly a clear majority of `emotion` plus minority emotions; sometimes unanimous;
    sometimes no majority (no emotion above half)."""
    count = int(rng.integers(4, 7))
    others = [name for name in ARTEMIS_EMOTIONS if name != emotion]
    weights = np.array([2.0 if name in RELATED[emotion] else 1.0 for name in others])
    kind = rng.random()
    if kind < 0.08:
        return [emotion] * count
    majority = int(rng.integers(count // 2 + 1, count)) if kind < 0.85 else count // 2
    while True:
        minority = list(rng.choice(others, size=count - majority, p=weights / weights.sum()))
        # In the no-majority case no minority emotion may outnumber the intended one (nor pass half).
        if max(minority.count(name) for name in set(minority)) <= majority and all(
            minority.count(name) * 2 <= count for name in set(minority)
        ):
            break
    labels = [emotion] * majority + [str(name) for name in minority]
    return [labels[index] for index in rng.permutation(count)]


def explanation(emotion, words, rng):
    """One sentence: an emotion template filled with the painting's colours and shapes."""
    vocabulary = VOCABULARY[emotion]
    adjectives = rng.choice(vocabulary["adj"], size=2, replace=False)
    return TEMPLATES[rng.integers(len(TEMPLATES))].format(
        adj=adjectives[0], adj2=adjectives[1], feel=rng.choice(vocabulary["feel"]), noun=rng.choice(vocabulary["noun"]),
        **words,
    )


def make_painting(index, seed):
    """Everything about painting `index`, from its own random stream (independent of the others)."""
    rng = np.random.default_rng([seed, index])
    emotion = ARTEMIS_EMOTIONS[index % len(ARTEMIS_EMOTIONS)]
    image, words = draw_painting(emotion, rng)
    emotions = annotation_emotions(emotion, rng)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # noisy pixels barely compress; level 1 is 3x faster
    style = DEMO_STYLES[rng.integers(len(DEMO_STYLES))]
    painting = f"demo-painting-{index:05d}"
    return {
        "intended": emotion,
        "painting_id": f"{style}/{painting}",
        "art_style": style,
        "painting": painting,
        "image": {"bytes": buffer.getvalue(), "path": f"{style}/{painting}.png"},
        "emotions": emotions,
        "explanations": [explanation(label, words, rng) for label in emotions],
        "emotion_histogram": emotion_histogram(emotions),
        "source": ["v1"] * len(emotions),
    }


def has_majority(painting):
    return max(painting["emotion_histogram"]) > 0.5


def assign_splits(paintings, seed):
    """Per intended emotion: 10% test, 5% validation, the rest train, with at least one painting with a
    majority emotion in the test split of every class (so emotion accuracy covers all classes)."""
    rng = np.random.default_rng([seed, 1_000_003])
    splits = {"train": [], "validation": [], "test": []}
    for emotion in ARTEMIS_EMOTIONS:
        members = [painting for painting in paintings if painting["intended"] == emotion]
        members = [members[index] for index in rng.permutation(len(members))]
        test_count = max(1, round(len(members) * SPLIT_SHARES[0][1]))
        validation_count = max(1, round(len(members) * SPLIT_SHARES[1][1])) if len(members) > 2 else 0
        if not any(has_majority(painting) for painting in members[:test_count]):
            first = next((index for index, painting in enumerate(members) if has_majority(painting)), None)
            if first is None:
                raise ValueError(f"No {emotion!r} painting has a majority emotion; use more paintings or another seed.")
            members.insert(0, members.pop(first))
        splits["test"] += members[:test_count]
        splits["validation"] += members[test_count:test_count + validation_count]
        splits["train"] += members[test_count + validation_count:]
    return {split: sorted(members, key=lambda painting: painting["painting_id"]) for split, members in splits.items()}


# ------------------------------------------------------------------------------------------------- corpus
def write_vad_lexicon(path):
    """The demo's illustrative lexicon in NRC-VAD file format (header, then word<TAB>V<TAB>A<TAB>D, 0..1)."""
    lines = ["Word\tValence\tArousal\tDominance"]
    lines += [f"{word}\t{v:.3f}\t{a:.3f}\t{d:.3f}" for word, (v, a, d) in sorted(DEMO_VAD.items())]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def generation_params(num_paintings, seed):
    return {"generator_version": GENERATOR_VERSION, "num_paintings": num_paintings, "seed": seed, "image_size": IMAGE_SIZE}


def make_demo_corpus(output_dir=DEMO_DIR, num_paintings=NUM_PAINTINGS, seed=0, overwrite=False):
    """Generate (or reuse) the demo corpus in `output_dir`; returns the DatasetDict (train / validation / test).

    An existing corpus made with the same parameters is loaded instead of regenerated. A folder holding anything
    else is an error unless `overwrite=True` (which replaces only an earlier demo corpus).
    """
    if num_paintings < 2 * len(ARTEMIS_EMOTIONS):
        raise ValueError(f"num_paintings={num_paintings} is too small: need at least {2 * len(ARTEMIS_EMOTIONS)} "
                         "(two per emotion, so that every class has a test painting).")
    output_dir = Path(output_dir)
    params = generation_params(num_paintings, seed)
    params_path = output_dir / PARAMS_NAME
    if output_dir.exists() and any(output_dir.iterdir()):
        existing = json.loads(params_path.read_text()) if params_path.is_file() else None
        if existing == params and (output_dir / "dataset_dict.json").is_file() and not overwrite:
            write_vad_lexicon(output_dir / LEXICON_NAME)
            return DatasetDict.load_from_disk(str(output_dir))
        if existing is None:
            raise FileExistsError(f"{output_dir} is not empty and holds no demo corpus ({PARAMS_NAME} missing); "
                                  "choose another output_dir.")
        if not overwrite:
            raise FileExistsError(f"{output_dir} holds a demo corpus made with {existing}, not {params}; pass "
                                  "overwrite=True (--overwrite) to replace it, or choose another output_dir.")
        shutil.rmtree(output_dir)

    paintings = [make_painting(index, seed) for index in range(num_paintings)]
    columns_of = lambda members: {name: [painting[name] for painting in members] for name in FEATURES}  # noqa: E731
    corpus = DatasetDict(
        {split: dataset_from_columns(columns_of(members), FEATURES, split, params)
         for split, members in assign_splits(paintings, seed).items()}
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus.save_to_disk(str(output_dir), num_shards={split: 1 for split in corpus})
    write_vad_lexicon(output_dir / LEXICON_NAME)
    params_path.write_text(json.dumps(params, indent=2) + "\n")  # last: marks the corpus as complete
    return DatasetDict.load_from_disk(str(output_dir))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m dataset_scripts.make_demo_corpus",
        description="Generate the small procedural ArtEmis-like demo corpus (same schema as prepare_artemis) and its "
                    "illustrative VAD lexicon, for offline training, evaluation and prediction.",
    )
    parser.add_argument("--output_dir", default=DEMO_DIR, help="Where to save it (default: %(default)s, git-ignored).")
    parser.add_argument("--num_paintings", type=int, default=NUM_PAINTINGS,
                        help="Number of paintings, 4-6 annotations each (default: %(default)s).")
    parser.add_argument("--seed", type=int, default=0, help="Generator seed; same seed, same corpus (default: %(default)s).")
    parser.add_argument("--overwrite", action="store_true", help="Replace a demo corpus made with other parameters.")
    args = parser.parse_args(argv)
    try:
        corpus = make_demo_corpus(args.output_dir, args.num_paintings, args.seed, args.overwrite)
    except (FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(corpus)
    print(f"Saved to {args.output_dir} (lexicon: {Path(args.output_dir) / LEXICON_NAME})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
