"""How alike two works are: the three parts of a query (emotions, looks, the feeling of the words), their distances,
how they are blended, and how to say it in plain words.

- emotion: the Hellinger distance between emotion distributions, H(p, q) = ||sqrt(p) - sqrt(q)|| / sqrt(2). The
  FAISS index holds sqrt(scores), so its L2 order is exactly the Hellinger order.
- visual: (1 - cos) / 2 between image embeddings (the FAISS index holds unit vectors: L2^2 = 2 - 2 cos).
- vad: the Euclidean distance between VAD profiles / (2 sqrt 3), the diagonal of the [-1, 1]^3 cube (1 for an item
  whose explanation has no VAD profile).

    distance = w_emotion * emotion + visual_weight * visual + vad_weight * vad,  w_emotion = 1 - visual_weight - vad_weight

and a hit's `score` is 1 - distance. Parts the query does not have get no weight and the others are scaled to sum
to 1.
"""

import math
from dataclasses import dataclass, field

import numpy as np

COMPONENTS = ("emotion", "visual", "vad")
VAD_SCALE = 2.0 * math.sqrt(3.0)  # the longest distance in the [-1, 1]^3 VAD cube

# What each part compares, for people (galleries, the app) and for the docs (tooltips).
PLAIN_PARTS = {
    "emotion": "the mix of emotions a work evokes",
    "visual": "how a work looks",
    "vad": "the feeling of the words that explain a work (pleasant or not, calm or intense, weak or strong)",
}
TECHNICAL_PARTS = {
    "emotion": "Hellinger distance between the emotion distributions",
    "visual": "(1 - cosine) / 2 between the image embeddings",
    "vad": "Euclidean distance between the explanations' VAD (valence, arousal, dominance) profiles / (2 sqrt 3)",
}


def text_vad_profile(text, tokenizer, vad_table):
    """The VAD profile (`sevlm.vad.vad_profile`) of `text`, encoded as explanations are
    (`processing_sevlm.explanation_ids`); None for an empty text or one without any VAD-bearing token."""
    from processing_sevlm import explanation_ids
    from sevlm.vad import vad_profile

    text = (text or "").strip()
    if not text:
        return None
    profile = vad_profile(explanation_ids(tokenizer, [text])[0], vad_table)
    return None if profile is None else profile.astype(np.float32)


def component_vectors(component, values):
    """Rows as FAISS vectors of one similarity part (`values`: scores, embeddings or VAD profiles)."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        values = values[None]
    if component == "emotion":
        return np.sqrt(np.clip(values, 0.0, None))
    if component == "visual":
        norms = np.linalg.norm(values, axis=1, keepdims=True)
        return np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)
    if component == "vad":
        return np.nan_to_num(values, nan=0.0)
    raise ValueError(f"Unknown similarity part {component!r}; expected one of {COMPONENTS}.")


def component_distance(component, squared_l2):
    """Distances in [0, 1] of one similarity part from squared L2 distances between its FAISS vectors."""
    squared = np.maximum(np.asarray(squared_l2, dtype=np.float64), 0.0)
    if component == "emotion":
        distance = np.sqrt(squared / 2.0)  # Hellinger
    elif component == "visual":
        distance = squared / 4.0  # (1 - cos) / 2
    elif component == "vad":
        distance = np.sqrt(squared) / VAD_SCALE
    else:
        raise ValueError(f"Unknown similarity part {component!r}; expected one of {COMPONENTS}.")
    return np.clip(distance, 0.0, 1.0)


def hellinger(p, q):
    """Hellinger distance between two distributions (each normalised to sum 1), in [0, 1]."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum() / 2.0))


@dataclass
class Query:
    """What a search compares items with: any of an emotion distribution, an image embedding and a VAD profile.

    `unused_words`: for a words query, `(word, nearest known words)` for each word that took no part in it.
    `source_id`: the indexed item searched from (an `id` query).
    """

    scores: np.ndarray = None
    embedding: np.ndarray = None
    vad: np.ndarray = None
    exclude_row: int = None
    description: str = ""
    kind: str = ""
    default_vad_weight: float = 0.0
    unused_words: list = field(default_factory=list)
    source_id: str = None


def blend_weights(query, visual_weight=0.0, vad_weight=None):
    """{part: weight} for the parts the query has; the weights sum to 1 (see the module docstring)."""
    visual_weight = float(visual_weight or 0.0)
    vad_weight = query.default_vad_weight if vad_weight is None else float(vad_weight)
    for name, value in (("visual_weight", visual_weight), ("vad_weight", vad_weight)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}.")
    if visual_weight + vad_weight > 1.0 + 1e-9:
        raise ValueError(f"visual_weight + vad_weight must be at most 1, got {visual_weight} + {vad_weight}.")
    if visual_weight > 0 and query.embedding is None:
        raise ValueError("visual_weight needs a query with an image (image=, id= or prediction=); emotion mixes and words have no image.")
    weights = {
        "emotion": (1.0 - visual_weight - vad_weight) if query.scores is not None else 0.0,
        "visual": visual_weight if query.embedding is not None else 0.0,
        "vad": vad_weight if query.vad is not None else 0.0,
    }
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"Nothing to compare for the query {query.description}: every part it has got weight 0.")
    return {name: weight / total for name, weight in weights.items() if weight > 0}


# What a search of each kind is compared with, for `ranking_sentence`.
SEARCHED = {
    "emotions": "the mix searched for",
    "words": "your words",
    "id": "the work searched from",
    "image": "the image searched with",
    "prediction": "this painting",
    "like": "the works you liked",
    "like-dislike": "the works you liked, less what the works you did not like evoke",
}


def ranking_sentence(weights, kind=None):
    """How hits of a search with these blend weights are ranked, in plain words (`kind`: the `Query.kind`)."""
    against = SEARCHED.get(kind, "the search")
    if len(weights) == 1:
        (part,) = weights
        return f"Ranked by how close {PLAIN_PARTS[part]} is to {against}."
    shares = ", ".join(f"{PLAIN_PARTS[part]} ({100 * weight:.0f}%)" for part, weight in weights.items())
    return f"Ranked by closeness to {against} in {shares}."


def ranking_details(weights):
    """The same, technically: each part's distance and its weight (for a tooltip)."""
    parts = "; ".join(f"{part}: {TECHNICAL_PARTS[part]}, weight {weight:.2f}" for part, weight in weights.items())
    return f"alike = 1 - the weighted sum of the distances, each in [0, 1] ({parts})."
