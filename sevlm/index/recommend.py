"""Recommendations from the works a visitor likes (and those they do not), with the reason for each, in plain words.

Each liked work gives a taste: the mix of emotions it evokes, less what the disliked works evoke. In the space of
square roots of the emotion distributions (where the Euclidean distance is sqrt(2) times the Hellinger distance),

    taste(liked) = normalise( max(0, sqrt(p_liked) - dislike_weight * mean(sqrt(p_disliked))) ) ** 2

(Rocchio's relevance feedback, applied to one liked work at a time), and a work's distance to the visitor is its
distance to the closest taste, blended with how it looks beside that liked work when `visual_weight` > 0:

    distance(work) = min over liked works l of  (1 - visual_weight) * H(p_work, taste(l)) + visual_weight * visual(work, l)

One taste per liked work, not one mean of them all: a visitor who likes a calm landscape and a frightening storm is
shown works like either, not works halfway between. The best `top_k` of the minimum are among the best `top_k` of
each taste (a work in the overall top k is in the top k of its closest taste), so each taste is one exact index
search and the answer is exact. Liked and disliked works are never returned.
"""

import numpy as np

from sevlm.index.similarity import Query, blend_weights

DISLIKE_WEIGHT = 0.5  # how much of the disliked works' emotions is taken out of each taste
SHARED_MINIMUM = 0.1  # an emotion both works evoke with at least this probability is "shared"
SHARED_SHOWN = 3
AVOIDED_MINIMUM = 0.2  # an emotion the disliked works evoke this much on average, that a hit evokes half as much
LOOKS_ALIKE = 0.2  # visual distance ((1 - cos) / 2) under which a hit "looks much like" the liked work
NO_LIKED = (
    "Recommendations start from works you like: disliked works only steer them away from what those evoke. Name at "
    "least one liked work too (like=[...]; on the command line --like ID together with --dislike ID)."
)


def taste(liked_scores, avoided_roots, dislike_weight):
    """The emotion distribution a liked work stands for, less the disliked works' (see the module docstring). When
    nothing is left (the disliked works evoke everything the liked one does), the liked work's own distribution."""
    roots = np.sqrt(np.clip(np.asarray(liked_scores, dtype=np.float64), 0.0, None))
    kept = np.clip(roots - dislike_weight * avoided_roots, 0.0, None)
    if not kept.any():
        kept = roots
    distribution = kept**2
    return (distribution / distribution.sum()).astype(np.float32)


def liked_rows(index, ids, what):
    """Row numbers of the works `ids` name (each once, in order); an unknown id is an error naming it."""
    if isinstance(ids, str):
        ids = [ids]
    rows = []
    for item_id in ids or ():
        try:
            row = index.row_of(item_id)
        except KeyError as error:
            raise KeyError(f"{what}: {error.args[0]}") from None
        if row not in rows:
            rows.append(row)
    return rows


def recommend(index, like, dislike=(), *, top_k=10, visual_weight=0.0, dislike_weight=None, emotion=None, min_score=None, where=None):
    """`EmotionIndex.recommend` (see there and the module docstring)."""
    from sevlm.index.store import Hits, check_top_k, combined

    dislike_weight = DISLIKE_WEIGHT if dislike_weight is None else float(dislike_weight)
    if not 0.0 <= dislike_weight <= 1.0:
        raise ValueError(f"dislike_weight must be between 0 and 1, got {dislike_weight}.")
    top_k = check_top_k(top_k)
    liked = liked_rows(index, like, "A liked work")
    disliked = liked_rows(index, dislike, "A disliked work")
    if not liked:
        raise ValueError(NO_LIKED if disliked else "Recommendations need at least one liked work.")
    both = [row for row in liked if row in disliked]
    if both:
        names = [record["id"] for record in index.records(both, ("id",))]
        raise ValueError(f"{', '.join(map(repr, names))} is both liked and disliked; choose one.")
    steps, notes = index.filter_steps(emotion, min_score, where)
    allowed = combined(steps)
    allowed = np.ones(len(index), dtype=bool) if allowed is None else allowed.copy()
    allowed[liked + disliked] = False
    avoided_roots = np.sqrt(index.scores[disliked].astype(np.float64)).mean(0) if disliked else np.zeros(len(index.emotions))
    liked_ids = [record["id"] for record in index.records(liked, ("id",))]

    best = {}  # row -> (distance, taste number, {part: distance})
    weights = None
    for number, row in enumerate(liked):
        query = Query(scores=taste(index.scores[row], avoided_roots, dislike_weight), embedding=index._embeddings([row])[0], kind="like")
        weights = blend_weights(query, visual_weight, 0.0)
        rows, distances, parts = index._rank(query, weights, allowed, top_k)
        for rank, (hit, distance) in enumerate(zip(rows, distances)):
            if hit not in best or distance < best[hit][0]:
                best[hit] = (distance, number, {name: values[rank] for name, values in parts.items()})
    ordered = sorted(best, key=lambda row: (best[row][0], row))[:top_k]
    parts = {name: [best[row][2][name] for row in ordered] for name in weights}
    hits = index.hits(ordered, [best[row][0] for row in ordered], parts)
    liked_records = {row: record for row, record in zip(liked, liked_hits(index, liked))}
    avoided_mix = index.scores[disliked].mean(0) if disliked else None
    for hit, row in zip(hits, ordered):
        source = liked_records[liked[best[row][1]]]
        explain(hit, source, index.emotions, avoided_mix)
    description = f"liked {', '.join(liked_ids)}" + (f"; disliked {', '.join(record['id'] for record in index.records(disliked, ('id',)))}" if disliked else "")
    query = Query(kind="like-dislike" if disliked else "like", description=description)
    if not hits:
        notes += [note for note in [index.no_hits_note(steps, liked + disliked, "liked or disliked, and those are never recommended")] if note]
    return Hits(hits, query, weights, notes)


def liked_hits(index, rows):
    """The liked works as hit dicts (id, file, scores, metadata) for the reasons."""
    return index.hits(rows, [0.0] * len(rows), {})


def explain(hit, liked, emotions, avoided_mix=None):
    """Add to a recommended `hit` why it is there: the liked work it is closest to, the emotions both evoke, the
    emotions the disliked works evoke that it hardly does, and `because`, all of it in one sentence."""
    from sevlm.index.gallery import shown_name

    ours, theirs = hit["scores"], liked["scores"]
    shared = sorted(emotions, key=lambda name: -min(ours[name], theirs[name]))
    shared = [name for name in shared if min(ours[name], theirs[name]) >= SHARED_MINIMUM][:SHARED_SHOWN]
    avoided = []
    if avoided_mix is not None:
        for position in np.argsort(-avoided_mix):
            name = emotions[int(position)]
            if avoided_mix[position] >= AVOIDED_MINIMUM and ours[name] < avoided_mix[position] / 2:
                avoided.append(name)
    name = shown_name(liked)
    if shared:
        sentence = f"Evokes {and_list(shared)}, as {name} does"
    else:
        sentence = f"Closest in feeling to {name}"
    if avoided:
        sentence += f", with little {and_list(avoided)}, which the works you did not like evoke"
    if hit["distances"].get("visual", 1.0) < LOOKS_ALIKE:
        sentence += ", and looks much like it"
    hit.update(because=sentence + ".", closest_liked=liked["id"], shared_emotions=shared, avoided_emotions=avoided)
    return hit


def and_list(names):
    """`awe`, `awe and fear`, `awe, fear and sadness`."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
