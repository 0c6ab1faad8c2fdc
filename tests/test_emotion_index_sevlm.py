"""sevlm.index: storage, distances, FAISS search, filters, queries, updates, resume, galleries.

Storage and search run on synthetic rows committed through the same code path as a real build (`.pending/`
batches merged into a part); the model-dependent parts run the tiny trained model end to end.
"""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import EXPLANATIONS, build_tiny, random_images
from PIL import Image
from transformers import CompileConfig

from pipeline_sevlm import SevlmArtEmotionPipeline, predict_batch
from sevlm.hub import add_pipeline_to_folder
from sevlm.index import build as B
from sevlm.index import faiss_indexes as F
from sevlm.index import gallery as G
from sevlm.index import query as Q
from sevlm.index import similarity as S
from sevlm.index import store as E
from sevlm.index.store import EmotionIndex

EMBEDDING_DIM = 48  # above 32: the approximate visual index is IVF


# ---------------------------------------------------------------------------------------- synthetic indexes
def synthetic_rows(emotions, tokenizer, vad_table, count, start=0, seed=0):
    """Rows like a build writes them: Dirichlet emotion scores, random embeddings, explanations and their VAD."""
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(start, start + count):
        scores = rng.dirichlet(np.full(len(emotions), 0.6))
        explanation = EXPLANATIONS[number % len(EXPLANATIONS)]
        profile = S.text_vad_profile(explanation, tokenizer, vad_table)
        rows.append(
            {
                "id": f"item-{number:04d}",
                "file": None,
                "file_size": None,
                "file_mtime_ns": None,
                "emotion": emotions[int(scores.argmax())],
                "score": float(scores.max()),
                "scores": scores.tolist(),
                "explanation": explanation,
                "vad": [math.nan] * 3 if profile is None else profile.tolist(),
                "image_embeds": rng.normal(size=EMBEDDING_DIM).tolist(),
                "thumbnail": None,
            }
        )
    return rows


def commit_rows(folder, model, processor, rows, batch=64):
    """Commit `rows` into the index at `folder` (new or existing) exactly as `EmotionIndex.build` does."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    emotions = list(model.config.emotions)
    existing = E.read_config(folder)
    plan = {
        "model": "tiny",
        "model_fingerprint": B.model_fingerprint(model),
        "emotions": emotions,
        "generate_kwargs": {},
        "thumbnail_size": 0,
        "replace": existing is None,
    }
    pending, _ = B.open_pending(folder, plan)
    for number, start in enumerate(range(0, len(rows), batch)):
        B.write_shard(folder, rows[start : start + batch], emotions, EMBEDDING_DIM, number)
    B.commit(folder, existing, pending, (processor.tokenizer, model.vad_table.numpy()), [row["id"] for row in rows])
    return EmotionIndex.load(folder)


@pytest.fixture(scope="module")
def tiny_random():
    return build_tiny()


@pytest.fixture(scope="module")
def synthetic(tiny_random, tmp_path_factory):
    """An index of 600 synthetic rows (small enough for exact FAISS indexes)."""
    model, processor = tiny_random
    rows = synthetic_rows(model.config.emotions, processor.tokenizer, model.vad_table.numpy(), 600)
    return commit_rows(tmp_path_factory.mktemp("synthetic") / "index", model, processor, rows), rows


def bhattacharyya_hellinger(p, q):
    """Hellinger distance by its other formula, sqrt(1 - sum sqrt(p q)): an independent check."""
    return math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(np.asarray(p) * np.asarray(q))))))


# ------------------------------------------------------------------------------------------------ distances
def test_l2_over_square_roots_is_sqrt2_times_hellinger():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(9)), rng.dirichlet(np.ones(9) * 0.3)
        l2 = np.linalg.norm(np.sqrt(p) - np.sqrt(q))
        assert l2 == pytest.approx(math.sqrt(2) * bhattacharyya_hellinger(p, q), abs=1e-9)
        assert S.hellinger(p, q) == pytest.approx(bhattacharyya_hellinger(p, q), abs=1e-9)
        squared = ((S.component_vectors("emotion", p) - S.component_vectors("emotion", q)) ** 2).sum()
        assert float(S.component_distance("emotion", squared)) == pytest.approx(bhattacharyya_hellinger(p, q), abs=1e-6)
    assert S.hellinger([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint distributions: the largest distance
    # visual part: (1 - cos) / 2 from unit vectors
    a, b = np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])
    squared = ((S.component_vectors("visual", a) - S.component_vectors("visual", b)) ** 2).sum()
    assert float(S.component_distance("visual", squared)) == pytest.approx((1 - 1 / math.sqrt(2)) / 2)
    # VAD part: opposite corners of the cube are at distance 1
    squared = ((S.component_vectors("vad", [1, 1, 1]) - S.component_vectors("vad", [-1, -1, -1])) ** 2).sum()
    assert float(S.component_distance("vad", squared)) == pytest.approx(1.0)


def test_emotion_search_ranks_by_hellinger(synthetic):
    index, rows = synthetic
    query = {"awe": 0.6, "sadness": 0.4}
    hits = index.search(emotions="Awe=0.6, sadness=0.4", top_k=10)
    q = np.array([query.get(name, 0.0) for name in index.emotions])
    expected = sorted(range(len(rows)), key=lambda i: (bhattacharyya_hellinger(rows[i]["scores"], q), i))[:10]
    assert [hit["id"] for hit in hits] == [rows[i]["id"] for i in expected]
    for hit, i in zip(hits, expected):
        assert hit["distances"]["emotion"] == pytest.approx(bhattacharyya_hellinger(rows[i]["scores"], q), abs=1e-5)
        assert hit["score"] == pytest.approx(1 - hit["distances"]["emotion"], abs=1e-5)
        assert list(hit["scores"]) == index.emotions
        assert hit["scores"]["awe"] == pytest.approx(rows[i]["scores"][1], abs=1e-6)
        assert hit["explanation"] == rows[i]["explanation"] and hit["emotion"] == rows[i]["emotion"]
    assert [hit["rank"] for hit in hits] == list(range(1, 11))


def test_faiss_candidates_give_the_exact_answer(synthetic, monkeypatch):
    """The FAISS path (candidate lists + threshold algorithm) returns exactly the brute-force ranking, for blended
    queries and with filters."""
    index, rows = synthetic
    queries = [
        dict(id="item-0007", visual_weight=0.4, vad_weight=0.2),
        dict(id="item-0100", visual_weight=1.0),
        dict(emotions="fear=1"),
        dict(text="the storm is frightening and sadness", emotion=["sadness", "fear"]),
        dict(emotions="contentment=0.5,awe=0.5", min_score="awe=0.2"),
        dict(id="item-0003", visual_weight=0.3, min_score=0.3),
    ]
    for query in queries:
        monkeypatch.setattr(E, "BRUTE_FORCE_ROWS", 10**9)
        brute = index.search(top_k=7, **query)
        monkeypatch.setattr(E, "BRUTE_FORCE_ROWS", 0)
        via_faiss = index.search(top_k=7, **query)
        assert [hit["id"] for hit in via_faiss] == [hit["id"] for hit in brute], query
        assert [hit["score"] for hit in via_faiss] == pytest.approx([hit["score"] for hit in brute], abs=1e-6)


def test_blend_is_the_documented_weighted_sum(synthetic):
    index, rows = synthetic
    hits = index.search(id="item-0042", top_k=600, visual_weight=0.3, vad_weight=0.2)
    assert "item-0042" not in [hit["id"] for hit in hits] and len(hits) == 599  # the query item is left out
    own = rows[42]
    embed = np.asarray(own["image_embeds"])
    for hit in hits[:50]:
        other = rows[int(hit["id"].split("-")[1])]
        emotion = bhattacharyya_hellinger(own["scores"], other["scores"])
        other_embed = np.asarray(other["image_embeds"])
        visual = (1 - embed @ other_embed / np.linalg.norm(embed) / np.linalg.norm(other_embed)) / 2
        if np.isnan(other["vad"]).any() or np.isnan(own["vad"]).any():
            vad = 1.0
        else:
            vad = np.linalg.norm(np.asarray(own["vad"]) - np.asarray(other["vad"])) / (2 * math.sqrt(3))
        assert hit["distances"] == pytest.approx({"emotion": emotion, "visual": visual, "vad": vad}, abs=1e-5)
        assert hit["score"] == pytest.approx(1 - (0.5 * emotion + 0.3 * visual + 0.2 * vad), abs=1e-5)
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)


def test_filters(synthetic):
    index, rows = synthetic
    hits = index.search(emotions="awe=1", top_k=50, emotion="sadness,fear", min_score=0.4)
    eligible = [row for row in rows if row["emotion"] in ("sadness", "fear") and row["score"] >= 0.4 - 1e-6]
    assert len(hits) == min(50, len(eligible)) > 0
    assert all(hit["emotion"] in ("sadness", "fear") and hit["scores"][hit["emotion"]] >= 0.4 - 1e-6 for hit in hits)
    hits = index.search(emotions="awe=1", top_k=600, min_score={"awe": 0.5, "anger": 0.01})
    assert len(hits) == sum(row["scores"][1] >= 0.5 and row["scores"][4] >= 0.01 for row in rows)
    assert index.search(emotions="awe=1", min_score=1.0) == []
    with pytest.raises(ValueError, match="Unknown emotion filter 'joy'"):
        index.search(emotions="awe=1", emotion="joy")
    with pytest.raises(ValueError, match="between 0 and 1"):
        index.search(emotions="awe=1", min_score=1.5)


def test_text_query_uses_the_vad_table_and_emotion_names(synthetic, tiny_random):
    index, rows = synthetic
    model, processor = tiny_random
    text = "the sky is calm and peaceful"
    ids = processor.tokenizer(" " + text, add_special_tokens=False)["input_ids"]
    table = model.vad_table.numpy()
    nonzero = [table[i] for i in ids if np.any(table[i] != 0)]
    query = index.query(text=text)
    assert query.scores is None and query.vad == pytest.approx(np.mean(nonzero, axis=0), abs=1e-6)
    hits = index.search(text=text, top_k=3)
    assert set(hits[0]["distances"]) == {"vad"} and hits[0]["explanation"] == text and hits[0]["score"] == pytest.approx(1.0)
    # emotion names: the emotion part is an even mix of the emotions named (multi-word names too)
    query = index.query(text="something else, and sadness; not awesome")
    expected = np.zeros(len(index.emotions))
    expected[[index.emotions.index("something else"), index.emotions.index("sadness")]] = 0.5
    assert query.scores == pytest.approx(expected)
    hits = index.search(text="something else, and sadness", top_k=1)
    assert set(hits[0]["distances"]) == {"emotion", "vad"}
    with pytest.raises(Q.UnusableWords, match="No word of 'zzzz qqqq' could be used"):
        index.search(text="zzzz qqqq")


def test_query_errors(synthetic):
    index, _ = synthetic
    with pytest.raises(ValueError, match="exactly one of"):
        index.search(emotions="awe=1", text="calm")
    with pytest.raises(ValueError, match="exactly one of"):
        index.search()
    with pytest.raises(KeyError, match="No item with id 'nothing'"):
        index.search(id="nothing")
    with pytest.raises(ValueError, match="visual_weight needs a query with an image"):
        index.search(emotions="awe=1", visual_weight=0.5)
    with pytest.raises(ValueError, match="at most 1"):
        index.search(id="item-0001", visual_weight=0.7, vad_weight=0.5)
    for mix, message in [
        ("awe=-1", "must be a number >= 0"),
        ("awe=x", "not a number"),
        ("joy=1", "Unknown emotion 'joy'"),
        ("", "Empty emotion mix"),
        ("awe=0", "no positive weight"),
    ]:
        with pytest.raises(ValueError, match=message):
            index.search(emotions=mix)


def test_parsers():
    emotions = ["amusement", "awe", "something else"]
    assert Q.parse_emotion_mix("awe,something else", emotions) == pytest.approx([0, 0.5, 0.5])
    assert Q.parse_emotion_mix({"AWE": 3, "amusement": 1}, emotions) == pytest.approx([0.25, 0.75, 0])
    assert Q.parse_min_scores("0.3", emotions) == (0.3, {})
    assert Q.parse_min_scores("awe=0.2, something else=0.1", emotions) == (None, {1: 0.2, 2: 0.1})
    with pytest.raises(ValueError, match="emotion=number pairs"):
        Q.parse_min_scores("lots", emotions)
    assert Q.emotion_names_in("Awe and SOMETHING  else", emotions) == ["awe", "something else"]
    assert Q.emotion_names_in("awesome amusements", emotions) == []


def test_emotion_mix_of_huge_weights_is_normalised_safely():
    emotions = ["amusement", "awe", "sadness"]
    assert Q.parse_emotion_mix("awe=1e308,sadness=1e308", emotions) == pytest.approx([0, 0.5, 0.5])  # the sum overflows
    assert Q.parse_emotion_mix("awe=1e308,sadness=1e307", emotions) == pytest.approx([0, 10 / 11, 1 / 11])
    assert Q.parse_emotion_mix("awe=5e-324", emotions) == pytest.approx([0, 1, 0])  # the smallest float still counts
    for mix, message in [("awe=inf", "must be a number >= 0"), ("awe=nan", "must be a number >= 0"), ("awe=1,sadness=-1e308", ">= 0")]:
        with pytest.raises(ValueError, match=message):
            Q.parse_emotion_mix(mix, emotions)
    with pytest.raises(ValueError, match="names 'awe' twice"):
        Q.parse_emotion_mix("awe=1,AWE=2", emotions)


def test_names_follow_the_one_name_rule_and_may_hold_commas_and_equals():
    """Class names that preparation and training accept (with ',' or '=') can be written in a mix, a filter and a
    minimum: CSV quotes for a comma, the weight after the last '='; case, '_' and spaces do not matter."""
    emotions = ["joy", "mixed, feelings", "a=b", "something else"]
    assert Q.parse_emotion_mix('"mixed, feelings"=0.25,a=b=0.75', emotions) == pytest.approx([0, 0.25, 0.75, 0])
    assert Q.parse_emotion_mix('"MIXED,  Feelings",A=B', emotions) == pytest.approx([0, 0.5, 0.5, 0])
    assert Q.parse_emotion_mix("Something_Else=1", emotions) == pytest.approx([0, 0, 0, 1])
    assert Q.parse_emotion_filter('"mixed, feelings",JOY', emotions) == [1, 0]
    assert Q.parse_emotion_filter(["mixed, feelings", "something_else"], emotions) == [1, 3]
    assert Q.parse_min_scores('"mixed, feelings"=0.2,a=b=0.1', emotions) == (None, {1: 0.2, 2: 0.1})
    assert Q.emotion_names_in("SOMETHING_else and Joy", emotions) == ["something else", "joy"]
    with pytest.raises(ValueError, match="the weight of 'joy' is 'x', not a number"):
        Q.parse_emotion_mix("joy=x", emotions)


def test_words_not_used_are_named_with_the_nearest_known_words(synthetic, tiny_random):
    index, _ = synthetic
    model, processor = tiny_random
    hits = index.search(text="calm, glomy", top_k=3)
    assert hits.query.unused_words == [("glomy", ["gloomy"])]  # a typo: not used, and the word it may have meant
    calm = S.text_vad_profile("calm", processor.tokenizer, model.vad_table.numpy())
    assert hits.query.vad == pytest.approx(calm)  # the query is the feeling of "calm" alone
    assert "'glomy' (nearest known: gloomy)" in G.unused_words_note(hits)
    with pytest.raises(Q.UnusableWords) as error:
        index.search(text="glomy zzzz")
    assert error.value.unused == [("glomy", ["gloomy"]), ("zzzz", [])]
    assert "--" not in str(error.value)  # the command or the app says how to search otherwise, in its own terms


# ----------------------------------------------------------------------------------------- storage, updates
def test_folder_layout_and_incremental_add(synthetic, tiny_random, tmp_path):
    model, processor = tiny_random
    rows = synthetic_rows(model.config.emotions, processor.tokenizer, model.vad_table.numpy(), 120, seed=3)
    folder = tmp_path / "index"
    index = commit_rows(folder, model, processor, rows[:100])
    config = json.loads((folder / E.CONFIG_NAME).read_text())
    assert config["num_items"] == 100 and config["parts"] == ["part-00001"] and config["emotions"] == list(model.config.emotions)
    assert config["faiss_types"] == {"emotion": "Flat", "visual": "Flat", "vad": "Flat"}
    first_part = {path: path.stat().st_mtime_ns for path in (folder / "parts" / "part-00001").iterdir()}
    assert not (folder / E.PENDING_DIR).exists()

    index = commit_rows(folder, model, processor, rows[100:])
    assert len(index) == 120 and index.config["parts"] == ["part-00001", "part-00002"]
    assert {path: path.stat().st_mtime_ns for path in (folder / "parts" / "part-00001").iterdir()} == first_part  # not rewritten
    assert sorted(os.listdir(folder / "faiss")) == ["emotion-00002.faiss", "vad-00002.faiss", "visual-00002.faiss"]
    for component in S.COMPONENTS:
        assert index.faiss[component].ntotal == 120
    assert index.dataset["id"] == [row["id"] for row in rows]
    hits = index.search(id="item-0110", top_k=3)  # a new row is searchable and finds old ones
    assert hits and all(hit["id"] != "item-0110" for hit in hits)


def test_approximate_indexes_past_the_documented_size(tiny_random, tmp_path, monkeypatch):
    model, processor = tiny_random
    monkeypatch.setattr(F, "APPROXIMATE_FROM", 300)
    monkeypatch.setattr(F, "APPROXIMATE_FROM_LOW_DIM", 350)
    rows = synthetic_rows(model.config.emotions, processor.tokenizer, model.vad_table.numpy(), 400, seed=5)
    small = commit_rows(tmp_path / "index", model, processor, rows[:250])
    assert small.config["faiss_types"]["emotion"] == "Flat"
    index = commit_rows(tmp_path / "index", model, processor, rows[250:])  # crosses the size: indexes rebuilt
    assert index.config["faiss_types"] == {"emotion": "IVF64,Flat", "visual": "IVF64,Flat", "vad": "IVF64,Flat"}
    assert index.config["approximate_from"] == {"low_dim": 350, "other": 300}
    assert F.index_factory(349, 9) == "Flat" and F.index_factory(349, 48) == "IVF64,Flat"
    monkeypatch.setattr(E, "BRUTE_FORCE_ROWS", 0)
    approximate = index.search(id="item-0011", top_k=10, visual_weight=0.5)
    monkeypatch.setattr(E, "BRUTE_FORCE_ROWS", 10**9)
    exact = index.search(id="item-0011", top_k=10, visual_weight=0.5)
    overlap = len({hit["id"] for hit in approximate} & {hit["id"] for hit in exact})
    assert overlap >= 8, (approximate, exact)
    # a selective filter: the probed IVF lists hold too few eligible rows, every eligible row is scored instead
    eligible = [row["id"] for row in rows if row["scores"][-1] >= 0.5]
    monkeypatch.setattr(E, "BRUTE_FORCE_ROWS", 0)
    hits = index.search(emotions="awe=1", min_score="something else=0.5", top_k=len(eligible) + 5)
    assert sorted(hit["id"] for hit in hits) == sorted(eligible) and 0 < len(eligible) < 100


def test_unfinished_or_foreign_folders(tiny_random, tmp_path):
    model, processor = tiny_random
    with pytest.raises(FileNotFoundError, match="not an emotion index"):
        EmotionIndex.load(tmp_path)
    (tmp_path / E.PENDING_DIR).mkdir()
    with pytest.raises(FileNotFoundError, match="unfinished build"):
        EmotionIndex.load(tmp_path)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    plan = {"model": "tiny", "model_fingerprint": "abc", "emotions": list(model.config.emotions)}
    with pytest.raises(FileExistsError, match="holds no emotion index"):
        B.check_target(other, None, plan, overwrite=True)
    assert (other / "holiday.jpg").exists()


def test_fingerprint_tells_models_apart(tiny_random):
    model, _ = tiny_random
    other, _ = build_tiny(seed=1)
    assert B.model_fingerprint(model) == B.model_fingerprint(model)
    assert B.model_fingerprint(model) != B.model_fingerprint(other)


# ---------------------------------------------------------------------------------------------- galleries
def test_gallery_is_self_contained(synthetic, tmp_path):
    index, _ = synthetic
    hits = index.search(emotions="sadness=0.7,fear=0.3", top_k=7)
    page = G.write_gallery(index, hits, tmp_path / "gallery", title="sad <and> afraid")
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and 'src="//' not in text
    assert "sad &lt;and&gt; afraid" in text
    for hit in hits:
        assert f'data-id="{hit["id"]}"' in text and hit["explanation"] in text
    with Image.open(tmp_path / "gallery" / G.CONTACT_SHEET) as sheet:
        assert sheet.size == (5 * 240, 2 * 350)


def test_gallery_replaces_only_its_own_files(synthetic, tmp_path):
    """A gallery is recorded as such in its folder: a user's contact_sheet.png or index.html is never replaced, an
    earlier gallery only with overwrite, and the folder's other files stay."""
    index, _ = synthetic
    hits = index.search(emotions="awe=1", top_k=3)
    folder = tmp_path / "gallery"
    folder.mkdir()
    (folder / G.CONTACT_SHEET).write_bytes(b"my own contact sheet")
    with pytest.raises(FileExistsError, match="contact_sheet.png"):
        G.write_gallery(index, hits, folder)
    assert (folder / G.CONTACT_SHEET).read_bytes() == b"my own contact sheet" and not (folder / G.GALLERY_PAGE).exists()

    (folder / G.CONTACT_SHEET).rename(folder / "mine.png")
    G.write_gallery(index, hits, folder)
    with pytest.raises(FileExistsError, match="--overwrite"):
        G.write_gallery(index, hits[:1], folder)  # an earlier gallery: replaced only when asked
    G.write_gallery(index, hits[:1], folder, overwrite=True)
    assert (folder / "mine.png").read_bytes() == b"my own contact sheet"
    assert (folder / G.GALLERY_PAGE).read_text(encoding="utf-8").count("data-rank=") == 1

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>my own page</html>")
    with pytest.raises(FileExistsError, match="did not write"):
        G.write_gallery(index, hits, tmp_path / "site", overwrite=True)
    assert (tmp_path / "site" / "index.html").read_text() == "<html>my own page</html>"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        G.write_gallery(index, hits, tmp_path / "a-file")
    with pytest.raises(FileExistsError, match="belongs to the emotion index"):
        G.write_gallery(index, hits, index.folder / "parts")  # inside the index's own files


def visible_text(page):
    """What a reader sees of an HTML page: no tags, no attribute values (tooltips), no style."""
    import re

    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return re.sub(r"<[^>]*>", " ", page)


def test_galleries_speak_plain_words_and_say_how_they_rank(synthetic, tmp_path):
    index, _ = synthetic
    mix = index.search(emotions="sadness=0.7,fear=0.3", top_k=3)
    words = index.search(text="the storm is frightening and sadness", top_k=3)
    for name, hits in (("mix", mix), ("words", words)):
        page = G.write_gallery(index, hits, tmp_path / name).read_text(encoding="utf-8")
        seen = visible_text(page)
        assert "Hellinger" not in seen and "VAD profile" not in seen and "match 0." not in seen, seen
        assert f"{100 * hits[0]['score']:.0f}% alike" in seen
        assert f"score {hits[0]['score']:.3f}" in page  # the exact number, in a tooltip
    mix_text = " ".join(visible_text(G.write_gallery(index, mix, tmp_path / "mix", overwrite=True).read_text()).split())
    words_text = " ".join(seen.split())
    assert "Ranked by how close the mix of emotions a work evokes is to the mix searched for." in mix_text
    # a words search ranks by the feeling of the words as much as by the emotions named: the page says so
    assert words.weights == pytest.approx({"emotion": 0.5, "vad": 0.5})
    assert "Ranked by closeness to your words in the mix of emotions a work evokes (50%), the feeling of the words" in words_text


def test_works_like_this_one_show_the_work_searched_from(synthetic, tmp_path, monkeypatch):
    from PIL import ImageDraw

    index, rows = synthetic
    hits = index.search(id="item-0042", top_k=4)
    drawn = []
    real_text = ImageDraw.ImageDraw.text
    monkeypatch.setattr(ImageDraw.ImageDraw, "text", lambda self, xy, text, *a, **k: drawn.append(text) or real_text(self, xy, text, *a, **k))
    page = G.write_gallery(index, hits, tmp_path / "gallery").read_text(encoding="utf-8")
    assert 'data-source="item-0042"' in page and "searched from" in page
    assert "searched from" in drawn and "item-0042" in drawn  # the contact sheet names the work searched from
    for hit in hits:  # and every work's name
        assert hit["id"] in drawn


def test_hits_in_csv_are_never_spreadsheet_formulas(tiny_random, tmp_path):
    import csv
    import io

    model, processor = tiny_random
    rows = synthetic_rows(model.config.emotions, processor.tokenizer, model.vad_table.numpy(), 6)
    for row, name in zip(rows, ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tTAB", "plain"]):
        row["id"], row["file"] = name, f"/art/{name}.png" if name != "plain" else "=cmd|'/c calc'!A1.png"
    index = commit_rows(tmp_path / "index", model, processor, rows)
    hits = index.search(emotions="awe=1", top_k=6)
    stream = io.StringIO()
    G.write_hits(hits, stream, "csv", index.emotions)
    cells = [row for row in csv.DictReader(io.StringIO(stream.getvalue()))]
    for cell in [row[key] for row in cells for key in ("id", "file", "explanation")]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert {row["id"] for row in cells} == {"'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "'\tTAB", "plain"}


# --------------------------------------------------------------------------------------- with the tiny model
@pytest.fixture(scope="module")
def paintings(trained_tiny, tmp_path_factory):
    """The 4 paintings the tiny model learned, 4 more, an unreadable file."""
    _, _, images = trained_tiny
    root = tmp_path_factory.mktemp("paintings")
    for number, image in enumerate(images + random_images(4, seed=9)):
        image.save(root / f"painting-{number}.png")
    (root / "broken.jpg").write_bytes(b"not a JPEG")
    return root


@pytest.fixture(scope="module")
def built(trained_tiny, paintings, tmp_path_factory):
    model, processor, _ = trained_tiny
    reports = []
    folder = tmp_path_factory.mktemp("built") / "index"
    index = EmotionIndex.build([paintings], folder, model=model, processor=processor, batch_size=3, progress=False, report=lambda *a: reports.append(a))
    return index, reports


def test_build_stores_the_pipelines_results(built, trained_tiny, paintings):
    index, reports = built
    model, processor, _ = trained_tiny
    files = sorted(str(path) for path in paintings.glob("painting-*.png"))
    assert index.dataset["id"] == files and index.dataset["file"] == files
    assert [item_id for item_id, _ in reports] == [str(paintings / "broken.jpg")] and "cannot be read" in reports[0][1]
    assert index.build_report == {
        "items": 9, "computed": 8, "resumed": 0, "already_indexed": 0, "changed": 0, "removed": [],
        "failed": [str(paintings / "broken.jpg")], "unmatched": [], "not_images": [], "metadata": None,
    }  # fmt: skip
    pipe = SevlmArtEmotionPipeline(model=model, processor=processor, device="cpu")
    table = model.vad_table.numpy()
    for row, path in zip(index.dataset, files):
        expected = pipe(path)
        assert row["emotion"] == expected["emotion"] and row["explanation"] == expected["explanation"]
        assert row["scores"] == pytest.approx([expected["scores"][name] for name in model.config.emotions], abs=1e-5)
        ids = processor.tokenizer(" " + expected["explanation"], add_special_tokens=False)["input_ids"]
        nonzero = [table[i] for i in ids if np.any(table[i] != 0)]
        assert row["vad"] == pytest.approx(np.mean(nonzero, axis=0), abs=1e-5)
        embeds = predict_batch(model, processor, [path], return_image_embeds=True)[0]["image_embeds"]
        assert row["image_embeds"] == pytest.approx(embeds.numpy(), abs=1e-5)
        assert row["thumbnail"].size[0] <= E.THUMBNAIL_SIZE
    config = index.config
    assert config["model_fingerprint"] == B.model_fingerprint(model) and config["embedding_dim"] == model.config.text_config.n_embd


def test_compiled_build_stores_the_eager_results(built, trained_tiny, paintings, tmp_path):
    """`compile=` decodes with a static cache and a compiled step (aot_eager: what inductor would compile, without
    its slow code generation on a CPU) and stores what the eager build stored; it is not part of the plan."""
    model, processor, _ = trained_tiny
    eager, _ = built
    torch._dynamo.reset()
    config = CompileConfig(fullgraph=True, dynamic=False, backend="aot_eager", mode=None)
    compiled = EmotionIndex.build([paintings], tmp_path / "index", model=model, processor=processor, batch_size=3, compile=config, progress=False, report=lambda *a: None)
    assert hasattr(model, "_compiled_call")  # the compiled step ran
    for column in ("id", "emotion", "explanation"):
        assert compiled.dataset[column] == eager.dataset[column], column
    assert np.asarray(compiled.dataset["scores"]) == pytest.approx(np.asarray(eager.dataset["scores"]), abs=1e-6)
    assert "compile" not in json.dumps(compiled.config)


def test_image_query_finds_the_same_painting(built, trained_tiny, paintings):
    index, _ = built
    model, processor, _ = trained_tiny
    path = str(paintings / "painting-2.png")
    hits = index.search(image=path, model=model, processor=processor, top_k=3, visual_weight=0.5)
    assert hits[0]["id"] == path and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    other, other_processor = build_tiny(emotions=["joy", "grief", "calm"])
    with pytest.raises(ValueError, match="emotions are"):
        index.search(image=path, model=other, processor=other_processor)


def test_add_computes_only_new_images(built, trained_tiny, paintings, tmp_path, monkeypatch):
    model, processor, images = trained_tiny
    index, _ = built
    folder = tmp_path / "index"
    first = EmotionIndex.build(sorted(paintings.glob("painting-[0-3].png")), folder, model=model, processor=processor, progress=False)
    calls = []
    real = B.predict_rows
    monkeypatch.setattr(B, "predict_rows", lambda m, p, images, *rest: calls.append(len(images)) or real(m, p, images, *rest))
    first.add([paintings], model=model, processor=processor, batch_size=2, progress=False, report=lambda *a: None)
    assert sum(calls) == 4  # painting-4..7; the 4 indexed ones are not run again
    assert first.build_report["already_indexed"] == 4 and len(first) == 8
    assert sorted(first.dataset["id"]) == sorted(index.dataset["id"])
    assert np.asarray(first.dataset["scores"]) == pytest.approx(np.asarray(sorted_like(index, first.dataset["id"], "scores")), abs=1e-6)


def sorted_like(index, ids, column):
    rows = {item_id: value for item_id, value in zip(index.dataset["id"], index.dataset[column])}
    return [rows[item_id] for item_id in ids]


def test_interrupted_build_resumes(built, trained_tiny, paintings, tmp_path, monkeypatch):
    model, processor, _ = trained_tiny
    folder = tmp_path / "index"
    real = B.predict_rows
    calls, interrupt = [], [True]

    def interrupted(m, p, images, *rest):
        calls.append(len(images))
        if len(calls) == 3 and interrupt and interrupt.pop():
            raise KeyboardInterrupt  # CTRL-C during the third batch
        return real(m, p, images, *rest)

    monkeypatch.setattr(B, "predict_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        EmotionIndex.build([paintings], folder, model=model, processor=processor, batch_size=2, progress=False, report=lambda *a: None)
    # batches: [broken.jpg, 0], [1, 2], [3, 4] <- interrupted: two finished batches, 3 paintings, are kept
    assert len(list((folder / E.PENDING_DIR).glob("*.parquet"))) == 2 and not (folder / E.CONFIG_NAME).exists()
    calls.clear()
    index = EmotionIndex.build([paintings], folder, model=model, processor=processor, batch_size=2, progress=False, report=lambda *a: None)
    assert sum(calls) == 5 and index.build_report["resumed"] == 3 and index.build_report["computed"] == 5
    expected, _ = built
    assert index.dataset["id"] == expected.dataset["id"]  # the order of the inputs, not of the runs
    assert index.dataset["explanation"] == expected.dataset["explanation"]
    assert not (folder / E.PENDING_DIR).exists()


def test_another_model_needs_overwrite_and_keeps_the_old_index(built, trained_tiny, paintings, tmp_path, monkeypatch):
    model, processor, _ = trained_tiny
    folder = tmp_path / "index"
    EmotionIndex.build(sorted(paintings.glob("painting-[01].png")), folder, model=model, processor=processor, progress=False)
    other, other_processor = build_tiny(seed=3)
    with pytest.raises(ValueError, match="--overwrite"):
        EmotionIndex.build([paintings], folder, model=other, processor=other_processor, progress=False, report=lambda *a: None)

    def failing(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(B, "commit", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        EmotionIndex.build([paintings], folder, model=other, processor=other_processor, overwrite=True, progress=False, report=lambda *a: None)
    old = EmotionIndex.load(folder)  # the old index is still whole
    assert len(old) == 2 and old.config["model_fingerprint"] == B.model_fingerprint(model)
    monkeypatch.undo()
    index = EmotionIndex.build([paintings], folder, model=other, processor=other_processor, overwrite=True, progress=False, report=lambda *a: None)
    assert len(index) == 8 and index.config["model_fingerprint"] == B.model_fingerprint(other)
    assert index.config["parts"] == ["part-00002"] and sorted(os.listdir(folder / "parts")) == ["part-00002"]


def interrupt_on_batch(monkeypatch, number):
    """Make `predict_rows` raise KeyboardInterrupt (CTRL-C) on its `number`-th call, once."""
    real, calls = B.predict_rows, []

    def interrupted(m, p, values, *rest):
        calls.append(len(values))
        if len(calls) == number:
            raise KeyboardInterrupt
        return real(m, p, values, *rest)

    monkeypatch.setattr(B, "predict_rows", interrupted)
    return calls


def quiet(**kwargs):
    return dict(progress=False, report=lambda *a: None, notify=lambda line: None, **kwargs)


def test_an_interrupted_rebuild_never_turns_a_later_addition_into_a_wipe(trained_tiny, paintings, tmp_path, monkeypatch):
    """`--overwrite` interrupted leaves its work in .pending/: a later plain addition must not finish it as a rebuild
    (the index of 243 items became 1); it is told what differs, and the rebuild finishes only when asked again."""
    model, processor, _ = trained_tiny
    folder = tmp_path / "index"
    EmotionIndex.build([paintings], folder, model=model, processor=processor, batch_size=3, **quiet())
    interrupt_on_batch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        EmotionIndex.build([paintings / "painting-0.png", paintings / "painting-1.png"], folder, model=model, processor=processor, batch_size=1, overwrite=True, **quiet())
    monkeypatch.undo()
    new = tmp_path / "new.png"
    random_images(1, seed=31)[0].save(new)
    with pytest.raises(ValueError, match=r"it was a rebuild \(--overwrite\), this one is an addition.*with --overwrite"):
        EmotionIndex.build([new], folder, model=model, processor=processor, **quiet())
    assert len(EmotionIndex.load(folder)) == 8  # the index is whole
    index = EmotionIndex.build([new], folder, model=model, processor=processor, discard_pending=True, **quiet())
    assert len(index) == 9 and index.build_report["computed"] == 1  # an addition, the rebuild's work dropped
    assert not (folder / E.PENDING_DIR).exists()


def test_an_interrupted_build_continues_only_with_its_own_settings(trained_tiny, paintings, tmp_path, monkeypatch):
    model, processor, _ = trained_tiny
    folder = tmp_path / "index"
    interrupt_on_batch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        EmotionIndex.build([paintings], folder, model=model, processor=processor, batch_size=3, generate_kwargs={"max_new_tokens": 3}, **quiet())
    monkeypatch.undo()
    with pytest.raises(ValueError, match="it used generation settings --max_new_tokens 3, this one the model's default"):
        EmotionIndex.build([paintings], folder, model=model, processor=processor, batch_size=3, **quiet())
    index = EmotionIndex.build([paintings], folder, model=model, processor=processor, batch_size=3, generate_kwargs={"max_new_tokens": 3}, **quiet())
    assert index.build_report["resumed"] == 2 and len(index) == 8  # broken.jpg + 2 paintings were the first batch
    assert index.config["generate_kwargs"] == {"max_new_tokens": 3}
    assert all(len(text.split()) <= 3 for text in index.dataset["explanation"])  # one kind of explanation throughout
    # an existing index of other settings is not extended with other explanations either
    with pytest.raises(ValueError, match="generated with generation settings --max_new_tokens 3"):
        EmotionIndex.build([tmp_path], folder, model=model, processor=processor, **quiet())


def test_one_build_writes_an_index_at_a_time(trained_tiny, paintings, tmp_path):
    """Two builds into one folder at once lost each other's items (147 of 360 kept, both "succeeded"): the second
    one is refused, naming the first; the lock of a process that ended is taken over."""
    import fcntl

    model, processor, _ = trained_tiny
    folder = tmp_path / "index"
    folder.mkdir()
    inputs = [paintings / "painting-0.png", paintings / "painting-1.png"]
    with open(folder / E.LOCK_NAME, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another build, running
        held.write(json.dumps({"pid": 4242, "host": "elsewhere", "since": "2026-01-01T00:00:00"}))
        held.flush()
        with pytest.raises(B.IndexBusyError, match="another build \\(process 4242 on elsewhere"):
            EmotionIndex.build(inputs, folder, model=model, processor=processor, **quiet())
        assert not (folder / E.PENDING_DIR).exists() and not (folder / E.CONFIG_NAME).exists()
    # the process is gone: its lock file stays, nobody holds it
    index = EmotionIndex.build(inputs, folder, model=model, processor=processor, **quiet())
    assert len(index) == 2 and (folder / E.LOCK_NAME).read_text() == ""


def test_changed_files_are_predicted_again(trained_tiny, tmp_path):
    model, processor, images = trained_tiny
    folder = tmp_path / "paintings"
    folder.mkdir()
    for number in range(3):
        images[number].save(folder / f"p{number}.png")
    index = EmotionIndex.build([folder], tmp_path / "index", model=model, processor=processor, batch_size=2, **quiet())
    before = {row["id"]: row["scores"] for row in index.dataset}
    images[3].save(folder / "p0.png")  # a new picture under an indexed name
    (folder / "p1.png").write_bytes(b"no longer a picture")
    later = os.stat(folder / "p2.png").st_mtime + 60
    for name in ("p0.png", "p1.png"):
        os.utime(folder / name, (later, later))
    index.add([folder], model=model, processor=processor, **quiet())
    report = index.build_report
    assert report["changed"] == 2 and report["computed"] == 1 and report["already_indexed"] == 1
    assert report["removed"] == [str(folder / "p1.png")]  # changed and unreadable: its old row is gone
    assert sorted(index.dataset["id"]) == [str(folder / "p0.png"), str(folder / "p2.png")]
    expected = predict_batch(model, processor, [images[3]], return_image_embeds=True)[0]
    row = index.dataset[index.row_of(str(folder / "p0.png"))]
    assert row["explanation"] == expected["explanation"]
    assert row["scores"] == pytest.approx([expected["scores"][name] for name in model.config.emotions], abs=1e-5)
    assert row["scores"] != pytest.approx(before[str(folder / "p0.png")], abs=1e-3)  # not the old picture's
    assert row["file_mtime_ns"] == os.stat(folder / "p0.png").st_mtime_ns
    hits = index.search(id=str(folder / "p2.png"), top_k=5)  # the FAISS indexes follow the rows
    assert [hit["id"] for hit in hits] == [str(folder / "p0.png")]
    index.add([folder], model=model, processor=processor, **quiet())
    assert index.build_report["changed"] == 0 and index.build_report["computed"] == 0  # p1.png still fails: not "changed"


def test_files_that_are_not_images_are_named(trained_tiny, tmp_path):
    model, processor, images = trained_tiny
    folder = tmp_path / "paintings"
    folder.mkdir()
    images[0].save(folder / "p0.png")
    (folder / "notes.txt").write_text("about the paintings")
    (folder / "logo.svg").write_text("<svg/>")
    (folder / ".DS_Store").write_bytes(b"")
    index = EmotionIndex.build([folder], tmp_path / "index", model=model, processor=processor, **quiet())
    assert index.build_report["not_images"] == [str(folder / "logo.svg"), str(folder / "notes.txt")]


def test_a_batch_holds_model_inputs_not_decoded_images(trained_tiny, paintings, tmp_path, monkeypatch):
    """Each image is turned into the model's input and a thumbnail as it is read: when a batch is predicted, no
    decoded original is held (a batch of six 13000 x 13000 16-bit PNGs took 12.5 GB)."""
    import gc
    import weakref

    model, processor, _ = trained_tiny
    decoded, alive_at_predict = [], []
    real_read, real_predict = B.read_item_image, B.predict_rows

    def read(item):
        image = real_read(item)
        decoded.append(weakref.ref(image))
        return image

    def predict(m, p, values, *rest):
        gc.collect()
        alive_at_predict.append(sum(ref() is not None for ref in decoded))
        return real_predict(m, p, values, *rest)

    monkeypatch.setattr(B, "read_item_image", read)
    monkeypatch.setattr(B, "predict_rows", predict)
    index = EmotionIndex.build([paintings], tmp_path / "index", model=model, processor=processor, batch_size=4, **quiet())
    assert len(index) == 8 and len(decoded) == 8 and alive_at_predict == [0, 0, 0]


def test_a_damaged_index_is_named_and_can_be_rebuilt(trained_tiny, paintings, tmp_path):
    model, processor, _ = trained_tiny
    folder = tmp_path / "index"
    inputs = [paintings / "painting-0.png"]
    EmotionIndex.build(inputs, folder, model=model, processor=processor, **quiet())
    (folder / E.CONFIG_NAME).write_text("{ not json")
    with pytest.raises(ValueError, match=f"{folder / E.CONFIG_NAME} is damaged .* --overwrite"):
        EmotionIndex.build(inputs, folder, model=model, processor=processor, **quiet())
    index = EmotionIndex.build(inputs, folder, model=model, processor=processor, overwrite=True, **quiet())
    assert len(index) == 1 and sorted(os.listdir(folder / "parts")) == index.config["parts"]


def test_dataset_split_and_saved_folder(trained_tiny, tmp_path):
    import datasets

    model, processor, images = trained_tiny
    rows = {"painting_id": ["style/a", "style/b", "style/c"], "image": [images[0], images[1], images[2]]}
    corpus = datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows, features=datasets.Features({"painting_id": datasets.Value("string"), "image": datasets.Image()}))})
    corpus.save_to_disk(str(tmp_path / "corpus"))
    index = EmotionIndex.build(dataset_path=str(tmp_path / "corpus"), split="test", output_dir=tmp_path / "index", model=model, processor=processor, progress=False)
    assert index.dataset["id"] == ["style/a", "style/b", "style/c"] and index.dataset["file"] == [None, None, None]
    expected = predict_batch(model, processor, images[:3])
    assert index.dataset["explanation"] == [result["explanation"] for result in expected]
    assert index.thumbnail("style/b").size == images[1].size  # smaller than the thumbnail size: kept as is
    with pytest.raises(ValueError, match="splits"):
        EmotionIndex.build(dataset_path=str(tmp_path / "corpus"), split="train", output_dir=tmp_path / "other", model=model, processor=processor)


def test_saved_model_folder_by_path(trained_tiny, paintings, tmp_path):
    """A model given as a folder: recorded by absolute path; image queries load it from there."""
    model, processor, _ = trained_tiny
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    index = EmotionIndex.build([paintings / "painting-1.png", paintings / "painting-3.png"], tmp_path / "index", model=str(folder), device="cpu", progress=False)
    assert index.config["model"] == str(folder.resolve())
    reloaded = EmotionIndex.load(tmp_path / "index")
    with pytest.raises(ValueError, match="trust_index_model=True"):  # the index names a folder: its code runs only when asked
        reloaded.search(image=paintings / "painting-3.png", top_k=1)
    hits = reloaded.search(image=paintings / "painting-3.png", top_k=1, visual_weight=1.0, trust_index_model=True)
    assert hits[0]["id"] == str(paintings / "painting-3.png")
