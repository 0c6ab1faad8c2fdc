"""Small procedural corpora, so that training, evaluation and prediction run offline anywhere.

Two taxonomies, each with the schema of `sevlm/data/schema.py` (built with `corpus_features`):

- `artemis` (default, `data/demo`): 2,400 ArtEmis-like "paintings" with the 9 ArtEmis emotions. Each painting is a
  64x64 picture drawn for one intended emotion: a palette (hue, brightness, saturation) and a shape family per
  emotion, with jitter, pixel noise, shapes borrowed from other emotions and, now and then, another emotion's
  background. Explanations combine templates, emotion vocabulary and the painting's own colours and shapes.
- `product-reviews` (`data/demo-product`): 2,400 product pictures (mugs, lamps, sneakers, ...) with customer
  feedback in 5 classes of its own: delighted, satisfied, mixed feelings, disappointed, frustrated. The class shows
  in the picture's presentation (sparkles on a sunny background, a tidy product with a green check, a split
  backdrop, a faded product with dents, cracks and a white cross on dark red), and in the review's words.

Each item has 4-6 annotations: most have a clear majority emotion (share > 0.5, the intended one) plus minority
emotions (so contrastive pairs exist); some have no majority (by the metric's rule,
`sevlm.evaluation.metric.majority_emotion`).

Also writes `<output_dir>/demo_vad_lexicon.txt` (NRC-VAD file format) covering the corpus's vocabulary. Its values
are ILLUSTRATIVE, chosen by hand for the demo; they are not NRC-VAD values. Real training uses the NRC-VAD lexicon.

    python -m dataset_scripts.make_demo_corpus [--taxonomy artemis|product-reviews] [--output_dir DIR]
        [--num_paintings N] [--seed 0] [--overwrite]
"""

import colorsys
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import DatasetDict
from PIL import Image as PILImage
from PIL import ImageDraw

from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.data.corpus import SPLITS, dataset_from_columns, emotion_histogram
from sevlm.data.schema import corpus_features, read_saved
from sevlm.data.settings import CORPUS_OWNER, DEMO_CORPORA, DEMO_LEXICON_NAME, DEMO_LEXICON_NOTE
from sevlm.evaluation.metric import majority_emotion
from sevlm.io import check_output_folder, display_path, record_entries, staged_output, write_text_atomic

DEMO_DIR, NUM_PAINTINGS = DEMO_CORPORA["artemis"]
PRODUCT_DEMO_DIR, NUM_PRODUCTS = DEMO_CORPORA["product-reviews"]
IMAGE_SIZE = 64
PARAMS_NAME = "demo_params.json"
# What a demo corpus folder holds: a prepared corpus's entries, the lexicon and the generation parameters.
DEMO_FILES = ("dataset_dict.json", *SPLITS, DEMO_LEXICON_NAME, PARAMS_NAME)
# Bump when the generator changes, so that an old corpus on disk is not reused as if it were current.
# 2: the emotion list recorded in the features (ClassLabel), the product-reviews taxonomy.
GENERATOR_VERSION = 2
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



# ------------------------------------------------------------------------------------ product-reviews taxonomy
PRODUCT_EMOTIONS = ("delighted", "satisfied", "mixed feelings", "disappointed", "frustrated")
PRODUCTS = ("mug", "lamp", "sneaker", "backpack", "phone", "chair")

# Per class: the backdrop (hue, saturation, value), the product's colour range and the presentation cue.
PRODUCT_LOOKS = {
    "delighted": {"background": (55, 0.65, 1.0), "saturation": (0.75, 0.95), "value": (0.85, 1.0), "cue": "sparkles"},
    "satisfied": {"background": (200, 0.35, 0.95), "saturation": (0.4, 0.6), "value": (0.7, 0.85), "cue": "check"},
    "mixed feelings": {"background": (28, 0.6, 0.95), "saturation": (0.3, 0.5), "value": (0.6, 0.8), "cue": "split"},
    "disappointed": {"background": (30, 0.12, 0.45), "saturation": (0.05, 0.2), "value": (0.45, 0.6), "cue": "dents"},
    "frustrated": {"background": (0, 0.85, 0.45), "saturation": (0.3, 0.6), "value": (0.5, 0.7), "cue": "cracks"},
}

PRODUCT_VOCABULARY = {
    "delighted": {"adj": ["amazing", "gorgeous", "perfect", "stunning", "wonderful"],
                  "feel": ["delighted", "thrilled", "overjoyed"],
                  "noun": ["made my day", "exceeded my expectations", "was worth every penny", "is a little treasure"]},
    "satisfied": {"adj": ["solid", "decent", "reliable", "neat", "sturdy"], "feel": ["satisfied", "pleased", "content"],
                  "noun": ["does the job", "works as described", "arrived on time", "fits my needs"]},
    "mixed feelings": {"adj": ["okay", "uneven", "average", "inconsistent", "mediocre"],
                       "feel": ["unsure", "torn", "ambivalent"],
                       "noun": ["has good and bad sides", "is nice but pricey", "looks fine but feels cheap",
                                "works but wobbles"]},
    "disappointed": {"adj": ["dull", "flimsy", "faded", "cheap", "underwhelming"],
                     "feel": ["disappointed", "let down", "sad"],
                     "noun": ["lost its color", "looks worse than the photo", "was not worth it", "broke after a week"]},
    "frustrated": {"adj": ["broken", "useless", "cracked", "defective", "awful"], "feel": ["frustrated", "angry", "annoyed"],
                   "noun": ["arrived cracked", "stopped working", "wasted my time", "needs a refund"]},
}

PRODUCT_TEMPLATES = (
    "the {accent} {shape} looks {adj}",
    "i feel {feel} because the {shape} is {adj}",
    "the {shape} {noun}",
    "{adj} {shape} with {cue} and it {noun}",
    "the {cue} make the {shape} look {adj}",
    "honestly the {accent} {shape} {noun}",
    "i am {feel} with this {adj} {shape}",
    "the {shape} {noun} so i feel {feel}",
    "{cue} on the {background} backdrop feel {adj}",
)
# What each presentation cue is called in the reviews (so that words and picture agree, as in the ArtEmis demo).
CUE_WORDS = {"sparkles": "sparkles", "check": "check marks", "split": "two tones", "dents": "dents", "cracks": "cracks"}

PRODUCT_RELATED = {
    "delighted": ("satisfied", "mixed feelings"),
    "satisfied": ("delighted", "mixed feelings"),
    "mixed feelings": ("satisfied", "disappointed"),
    "disappointed": ("frustrated", "mixed feelings"),
    "frustrated": ("disappointed", "mixed feelings"),
}

# ILLUSTRATIVE valence / arousal / dominance values (0..1), set by hand for this demo only; NOT from NRC-VAD.
PRODUCT_VAD = {
    "amazing": (0.92, 0.75, 0.65), "gorgeous": (0.9, 0.65, 0.6), "perfect": (0.95, 0.55, 0.7),
    "stunning": (0.9, 0.75, 0.6), "wonderful": (0.93, 0.65, 0.65), "delighted": (0.95, 0.7, 0.65),
    "thrilled": (0.92, 0.85, 0.65), "overjoyed": (0.96, 0.85, 0.65), "treasure": (0.85, 0.55, 0.6),
    "worth": (0.75, 0.4, 0.6), "expectations": (0.6, 0.45, 0.5), "day": (0.65, 0.35, 0.5),
    "solid": (0.7, 0.3, 0.7), "decent": (0.68, 0.25, 0.6), "reliable": (0.78, 0.25, 0.7), "neat": (0.72, 0.3, 0.6),
    "sturdy": (0.7, 0.3, 0.72), "satisfied": (0.8, 0.3, 0.65), "pleased": (0.82, 0.35, 0.62), "content": (0.8, 0.2, 0.6),
    "job": (0.55, 0.4, 0.55), "described": (0.55, 0.25, 0.5), "time": (0.55, 0.4, 0.5), "needs": (0.5, 0.4, 0.45),
    "okay": (0.55, 0.25, 0.5), "uneven": (0.35, 0.4, 0.4), "average": (0.5, 0.2, 0.45), "inconsistent": (0.3, 0.45, 0.4),
    "mediocre": (0.3, 0.25, 0.4), "unsure": (0.35, 0.45, 0.25), "torn": (0.3, 0.55, 0.3), "ambivalent": (0.4, 0.4, 0.35),
    "nice": (0.8, 0.35, 0.6), "pricey": (0.3, 0.45, 0.4), "cheap": (0.3, 0.35, 0.35), "wobbles": (0.3, 0.5, 0.3),
    "good": (0.85, 0.4, 0.65), "bad": (0.12, 0.55, 0.35), "sides": (0.5, 0.3, 0.5),
    "dull": (0.25, 0.12, 0.35), "flimsy": (0.2, 0.35, 0.25), "faded": (0.25, 0.15, 0.3),
    "underwhelming": (0.22, 0.2, 0.3), "disappointed": (0.12, 0.4, 0.25), "sad": (0.1, 0.3, 0.22),
    "color": (0.6, 0.35, 0.5), "worse": (0.12, 0.5, 0.3), "photo": (0.6, 0.35, 0.5), "broke": (0.1, 0.6, 0.25),
    "week": (0.5, 0.3, 0.5), "broken": (0.1, 0.6, 0.25), "useless": (0.08, 0.4, 0.2), "cracked": (0.15, 0.55, 0.3),
    "defective": (0.1, 0.5, 0.25), "awful": (0.05, 0.7, 0.3), "frustrated": (0.12, 0.75, 0.35),
    "angry": (0.1, 0.85, 0.65), "annoyed": (0.15, 0.7, 0.45), "wasted": (0.12, 0.55, 0.3), "refund": (0.3, 0.6, 0.45),
    "working": (0.6, 0.45, 0.55), "stopped": (0.3, 0.5, 0.4), "honestly": (0.65, 0.35, 0.55), "feel": (0.55, 0.4, 0.45),
    "mug": (0.65, 0.2, 0.5), "lamp": (0.65, 0.2, 0.5), "sneaker": (0.65, 0.45, 0.5), "backpack": (0.6, 0.35, 0.5),
    "phone": (0.65, 0.5, 0.55), "chair": (0.6, 0.15, 0.5), "sparkles": (0.85, 0.65, 0.55), "check": (0.7, 0.3, 0.65),
    "marks": (0.5, 0.3, 0.5), "tones": (0.5, 0.35, 0.45), "dents": (0.2, 0.35, 0.3), "cracks": (0.12, 0.55, 0.3),
    "backdrop": (0.55, 0.2, 0.5),
    "red": (0.5, 0.75, 0.6), "orange": (0.65, 0.6, 0.55), "yellow": (0.75, 0.55, 0.55), "green": (0.7, 0.35, 0.55),
    "blue": (0.62, 0.3, 0.55), "purple": (0.6, 0.4, 0.55), "pink": (0.72, 0.45, 0.45), "brown": (0.45, 0.3, 0.5),
    "black": (0.3, 0.4, 0.55), "white": (0.7, 0.25, 0.5), "grey": (0.4, 0.15, 0.4), "olive": (0.45, 0.25, 0.45),
}


def draw_product_shape(draw, product, color, scale):
    """One product silhouette, centred, `scale` (0..1) of the picture."""
    c, s = IMAGE_SIZE / 2, IMAGE_SIZE * scale / 2
    if product == "mug":
        draw.rectangle([c - s * 0.6, c - s * 0.7, c + s * 0.4, c + s * 0.8], fill=color)
        draw.ellipse([c + s * 0.25, c - s * 0.35, c + s * 0.85, c + s * 0.35], outline=color, width=max(2, int(s / 6)))
    elif product == "lamp":
        draw.polygon([(c - s * 0.7, c - s * 0.1), (c - s * 0.35, c - s * 0.9), (c + s * 0.35, c - s * 0.9), (c + s * 0.7, c - s * 0.1)], fill=color)
        draw.line([c, c - s * 0.1, c, c + s * 0.7], fill=color, width=max(2, int(s / 8)))
        draw.rectangle([c - s * 0.5, c + s * 0.7, c + s * 0.5, c + s * 0.9], fill=color)
    elif product == "sneaker":
        draw.polygon([(c - s * 0.9, c + s * 0.5), (c - s * 0.8, c - s * 0.2), (c - s * 0.2, c - s * 0.3), (c + s * 0.2, c + s * 0.1),
                      (c + s * 0.9, c + s * 0.2), (c + s * 0.9, c + s * 0.5)], fill=color)
        draw.rectangle([c - s * 0.95, c + s * 0.5, c + s * 0.95, c + s * 0.7], fill=(240, 240, 240))
    elif product == "backpack":
        draw.rounded_rectangle([c - s * 0.65, c - s * 0.8, c + s * 0.65, c + s * 0.9], radius=max(2, int(s / 3)), fill=color)
        draw.rectangle([c - s * 0.4, c + s * 0.2, c + s * 0.4, c + s * 0.7], outline=(30, 30, 30), width=1)
    elif product == "phone":
        draw.rounded_rectangle([c - s * 0.45, c - s * 0.9, c + s * 0.45, c + s * 0.9], radius=max(2, int(s / 5)), fill=color)
        draw.rectangle([c - s * 0.35, c - s * 0.7, c + s * 0.35, c + s * 0.6], fill=(25, 25, 35))
    elif product == "chair":
        draw.rectangle([c - s * 0.6, c - s * 0.9, c - s * 0.35, c + s * 0.1], fill=color)
        draw.rectangle([c - s * 0.6, c, c + s * 0.6, c + s * 0.2], fill=color)
        for x in (c - s * 0.55, c + s * 0.45):
            draw.rectangle([x, c + s * 0.2, x + s * 0.1, c + s * 0.9], fill=color)
    else:
        raise ValueError(f"Unknown product {product!r}.")


def draw_cue(draw, cue, rng, box):
    """The presentation cue of a class, around or on the product (`box`: its bounding box)."""
    left, top, right, bottom = box
    if cue == "sparkles":
        for _ in range(int(rng.integers(6, 11))):
            x, y, r = rng.uniform(2, IMAGE_SIZE - 2), rng.uniform(2, IMAGE_SIZE - 2), rng.uniform(2, 5)
            color = hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.3), 1.0)
            draw.line([x - r, y, x + r, y], fill=color, width=2)
            draw.line([x, y - r, x, y + r], fill=color, width=2)
    elif cue == "check":
        x, y = IMAGE_SIZE - 18 + rng.uniform(-2, 2), IMAGE_SIZE - 14 + rng.uniform(-2, 2)
        draw.line([(x, y + 5), (x + 5, y + 10), (x + 14, y - 3)], fill=hsv(120, 0.9, 0.65), width=4)
    elif cue == "split":
        pass  # drawn with the backdrop
    elif cue == "dents":
        for _ in range(int(rng.integers(4, 8))):
            x, y, r = rng.uniform(left, right), rng.uniform(top, bottom), rng.uniform(2, 4)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=hsv(30, 0.2, 0.2))
    elif cue == "cracks":
        for _ in range(int(rng.integers(2, 4))):
            x, y, points = rng.uniform(left, right), top, []
            while y < bottom:
                points.append((x, y))
                x, y = x + rng.uniform(-5, 5), y + rng.uniform(3, 7)
            draw.line(points, fill=(10, 10, 10), width=3)
        x, y = rng.uniform(3, 10), rng.uniform(3, 10)
        draw.line([x, y, x + 12, y + 12], fill=hsv(0, 0.2, 1.0), width=4)
        draw.line([x + 12, y, x, y + 12], fill=hsv(0, 0.2, 1.0), width=4)
    else:
        raise ValueError(f"Unknown cue {cue!r}.")


def draw_product(emotion, rng):
    """A 64x64 product picture presented for `emotion`, and the words that describe it."""
    look = PRODUCT_LOOKS[emotion]
    background = jitter(look["background"], rng)
    if rng.random() < 0.08:  # now and then another class's backdrop: colour alone is not the answer
        other = PRODUCT_EMOTIONS[rng.integers(len(PRODUCT_EMOTIONS))]
        background = jitter(PRODUCT_LOOKS[other]["background"], rng)
    canvas = np.ones((IMAGE_SIZE, IMAGE_SIZE, 3)) * np.array(hsv(*background), float)
    if look["cue"] == "split":  # half warm and bright, half cool and grey
        canvas[:, IMAGE_SIZE // 2:] = hsv(*jitter((225, 0.35, 0.45), rng))
    image = PILImage.fromarray(canvas.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    product = PRODUCTS[rng.integers(len(PRODUCTS))]
    color = (rng.uniform(0, 360), rng.uniform(*look["saturation"]), rng.uniform(*look["value"]))
    scale = rng.uniform(0.4, 0.5) if emotion == "disappointed" else rng.uniform(0.5, 0.65)
    draw_product_shape(draw, product, hsv(*color), scale)
    half = IMAGE_SIZE * scale / 2
    draw_cue(draw, look["cue"], rng, (IMAGE_SIZE / 2 - half * 0.6, IMAGE_SIZE / 2 - half * 0.8,
                                      IMAGE_SIZE / 2 + half * 0.6, IMAGE_SIZE / 2 + half * 0.8))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 7, (IMAGE_SIZE, IMAGE_SIZE, 3))
    image = PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return image, {"background": color_name(*background), "accent": color_name(*color), "shape": product,
                   "cue": CUE_WORDS[look["cue"]]}


# --------------------------------------------------------------------------------------------- taxonomies
@dataclass(frozen=True)
class Taxonomy:
    """Everything that differs between the demo corpora."""

    name: str
    emotions: tuple
    default_dir: str
    default_count: int
    draw: Callable  # (emotion, rng) -> (PIL image, words for the templates)
    vocabulary: dict
    templates: tuple
    related: dict
    vad: dict
    folders: Callable  # (rng, words) -> the item's folder (`art_style`)
    item_prefix: str


TAXONOMIES = {
    "artemis": Taxonomy("artemis", tuple(ARTEMIS_EMOTIONS), DEMO_DIR, NUM_PAINTINGS, lambda e, rng: draw_painting(e, rng),
                        VOCABULARY, TEMPLATES, RELATED, DEMO_VAD,
                        lambda rng, words: DEMO_STYLES[rng.integers(len(DEMO_STYLES))], "demo-painting"),
    "product-reviews": Taxonomy("product-reviews", PRODUCT_EMOTIONS, PRODUCT_DEMO_DIR, NUM_PRODUCTS, draw_product,
                                PRODUCT_VOCABULARY, PRODUCT_TEMPLATES, PRODUCT_RELATED, PRODUCT_VAD,
                                lambda rng, words: words["shape"], "product"),
}


# ----------------------------------------------------------------------------------------------- annotations
def annotation_emotions(emotion, rng, taxonomy=TAXONOMIES["artemis"]):
    """4-6 emotion labels: mostly a clear majority of `emotion` plus minority emotions; sometimes unanimous;
    sometimes no majority (no emotion above half)."""
    count = int(rng.integers(4, 7))
    others = [name for name in taxonomy.emotions if name != emotion]
    weights = np.array([2.0 if name in taxonomy.related[emotion] else 1.0 for name in others])
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


def explanation(emotion, words, rng, taxonomy=TAXONOMIES["artemis"]):
    """One sentence: a template filled with the emotion's vocabulary and the picture's colours and shapes."""
    vocabulary = taxonomy.vocabulary[emotion]
    adjectives = rng.choice(vocabulary["adj"], size=2, replace=False)
    return taxonomy.templates[rng.integers(len(taxonomy.templates))].format(
        adj=adjectives[0], adj2=adjectives[1], feel=rng.choice(vocabulary["feel"]), noun=rng.choice(vocabulary["noun"]),
        **words,
    )


def make_painting(index, seed, taxonomy=TAXONOMIES["artemis"]):
    """Everything about item `index`, from its own random stream (independent of the others)."""
    rng = np.random.default_rng([seed, index])
    emotion = taxonomy.emotions[index % len(taxonomy.emotions)]
    image, words = taxonomy.draw(emotion, rng)
    emotions = annotation_emotions(emotion, rng, taxonomy)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # noisy pixels barely compress; level 1 is 3x faster
    style = taxonomy.folders(rng, words)
    painting = f"{taxonomy.item_prefix}-{index:05d}"
    return {
        "intended": emotion,
        "painting_id": f"{style}/{painting}",
        "art_style": style,
        "painting": painting,
        "image": {"bytes": buffer.getvalue(), "path": f"{style}/{painting}.png"},
        "emotions": emotions,
        "explanations": [explanation(label, words, rng, taxonomy) for label in emotions],
        "emotion_histogram": emotion_histogram(emotions, taxonomy.emotions),
        "source": ["v1"] * len(emotions),
    }


def assign_splits(paintings, seed, emotions=ARTEMIS_EMOTIONS):
    """Per intended emotion: 10% test, 5% validation, the rest train, with at least one item with a majority
    emotion in the test split of every class (so emotion accuracy covers all classes)."""
    rng = np.random.default_rng([seed, 1_000_003])
    splits = {"train": [], "validation": [], "test": []}
    for emotion in emotions:
        members = [painting for painting in paintings if painting["intended"] == emotion]
        members = [members[index] for index in rng.permutation(len(members))]
        test_count = max(1, round(len(members) * SPLIT_SHARES[0][1]))
        validation_count = max(1, round(len(members) * SPLIT_SHARES[1][1])) if len(members) > 2 else 0
        majorities = [majority_emotion(painting["emotion_histogram"], emotions) for painting in members]
        if all(majority is None for majority in majorities[:test_count]):
            first = next((index for index, majority in enumerate(majorities) if majority is not None), None)
            if first is None:
                raise ValueError(f"No {emotion!r} item has a majority emotion; use more items or another seed.")
            members.insert(0, members.pop(first))
        splits["test"] += members[:test_count]
        splits["validation"] += members[test_count:test_count + validation_count]
        splits["train"] += members[test_count + validation_count:]
    return {split: sorted(members, key=lambda painting: painting["painting_id"]) for split, members in splits.items()}


# ------------------------------------------------------------------------------------------------- corpus
def write_vad_lexicon(path, vad=DEMO_VAD):
    """The demo's illustrative lexicon in NRC-VAD file format (header, then word<TAB>V<TAB>A<TAB>D, 0..1)."""
    lines = ["Word\tValence\tArousal\tDominance"]
    lines += [f"{word}\t{v:.3f}\t{a:.3f}\t{d:.3f}" for word, (v, a, d) in sorted(vad.items())]
    return write_text_atomic(path, "\n".join(lines) + "\n")


def generation_params(num_paintings, seed, taxonomy="artemis"):
    return {"generator_version": GENERATOR_VERSION, "taxonomy": taxonomy, "num_paintings": num_paintings, "seed": seed,
            "image_size": IMAGE_SIZE, "lexicon": DEMO_LEXICON_NOTE}


def read_params(folder):
    """The generation parameters of the demo corpus in `folder`, or None."""
    try:
        return json.loads((Path(folder) / PARAMS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def make_demo_corpus(output_dir=None, num_paintings=None, seed=0, overwrite=False, taxonomy="artemis"):
    """Generate (or reuse) a demo corpus in `output_dir`; returns the DatasetDict (train / validation / test).

    `taxonomy`: "artemis" (default folder data/demo, 2,400 paintings) or "product-reviews" (data/demo-product,
    2,400 products). An existing corpus made with the same parameters is loaded instead of regenerated. A corpus
    made with other parameters (or any prepared corpus) is replaced only with `overwrite=True`, only once the new
    one is complete, and only the entries it wrote: other files in the folder stay (`sevlm.io.staged_output`).
    """
    if taxonomy not in TAXONOMIES:
        raise ValueError(f"Unknown taxonomy {taxonomy!r}; choose one of {sorted(TAXONOMIES)}.")
    spec = TAXONOMIES[taxonomy]
    output_dir = Path(output_dir or spec.default_dir)
    num_paintings = spec.default_count if num_paintings is None else num_paintings
    if num_paintings < 2 * len(spec.emotions):
        raise ValueError(f"num_paintings={num_paintings} is too small: need at least {2 * len(spec.emotions)} "
                         "(two per emotion, so that every class has a test item).")
    params = generation_params(num_paintings, seed, taxonomy)
    existing = read_params(output_dir)
    if existing == params and (output_dir / "dataset_dict.json").is_file() and not overwrite:
        if not (output_dir / DEMO_LEXICON_NAME).exists():
            write_vad_lexicon(output_dir / DEMO_LEXICON_NAME, spec.vad)
            record_entries(output_dir, [DEMO_LEXICON_NAME], CORPUS_OWNER)
        return read_saved(output_dir, f"The demo corpus {display_path(output_dir)}")
    if existing is not None and not overwrite:
        raise FileExistsError(f"{display_path(output_dir)} holds a demo corpus made with {existing}, not {params}; "
                              "pass --overwrite (overwrite=True) to replace it, or choose another output_dir.")
    check_output_folder(output_dir, CORPUS_OWNER, DEMO_FILES, overwrite, "--overwrite", "--output_dir")

    paintings = [make_painting(index, seed, spec) for index in range(num_paintings)]
    features = corpus_features(spec.emotions)
    index = {name: position for position, name in enumerate(spec.emotions)}

    def columns_of(members):
        columns = {name: [painting[name] for painting in members] for name in features}
        columns["emotions"] = [[index[emotion] for emotion in emotions] for emotions in columns["emotions"]]
        return columns

    corpus = DatasetDict(
        {split: dataset_from_columns(columns_of(members), features, split, params)
         for split, members in assign_splits(paintings, seed, spec.emotions).items()}
    )
    with staged_output(output_dir, CORPUS_OWNER, DEMO_FILES, overwrite, "--overwrite", "--output_dir") as staging:
        corpus.save_to_disk(str(staging), num_shards={split: 1 for split in corpus})
        write_vad_lexicon(staging / DEMO_LEXICON_NAME, spec.vad)
        write_text_atomic(staging / PARAMS_NAME, json.dumps(params, indent=2) + "\n")
    return DatasetDict.load_from_disk(str(output_dir))
