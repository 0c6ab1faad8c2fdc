"""emotion_index_sevlm.py: storage, distances, FAISS search, filters, queries, updates, resume, galleries.

Storage and search run on synthetic rows committed through the same code path as a real build (`.pending/`
batches merged into a part); the model-dependent parts run the tiny trained model end to end.
"""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import EXPLANATIONS, build_tiny, random_images
from PIL import Image

import sevlm.index.store as E
from pipeline_sevlm import SevlmArtEmotionPipeline, predict_batch
from sevlm.hub import add_pipeline_to_folder
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
        profile = E.vad_profile(explanation, tokenizer, vad_table)
        rows.append(
            {
                "id": f"item-{number:04d}",
                "file": None,
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


def commit_rows(folder, model, processor, rows, batch=64, identity=None):
    """Commit `rows` into the index at `folder` (new or existing) exactly as `EmotionIndex.build` does."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    emotions = list(model.config.emotions)
    identity = identity or {"model": "tiny", "model_fingerprint": E.model_fingerprint(model), "emotions": emotions}
    existing = E._read_config(folder)
    pending = E._open_pending(folder, identity, existing is None, existing)
    for number, start in enumerate(range(0, len(rows), batch)):
        E._write_shard(folder, rows[start : start + batch], emotions, EMBEDDING_DIM, number)
    settings = {"generate_kwargs": {}, "thumbnail_size": 0}
    E._commit(folder, existing, pending, identity, processor, model, [row["id"] for row in rows], settings, False)
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
        assert E.hellinger(p, q) == pytest.approx(bhattacharyya_hellinger(p, q), abs=1e-9)
        squared = ((E.component_vectors("emotion", p) - E.component_vectors("emotion", q)) ** 2).sum()
        assert float(E.component_distance("emotion", squared)) == pytest.approx(bhattacharyya_hellinger(p, q), abs=1e-6)
    assert E.hellinger([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint distributions: the largest distance
    # visual part: (1 - cos) / 2 from unit vectors
    a, b = np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])
    squared = ((E.component_vectors("visual", a) - E.component_vectors("visual", b)) ** 2).sum()
    assert float(E.component_distance("visual", squared)) == pytest.approx((1 - 1 / math.sqrt(2)) / 2)
    # VAD part: opposite corners of the cube are at distance 1
    squared = ((E.component_vectors("vad", [1, 1, 1]) - E.component_vectors("vad", [-1, -1, -1])) ** 2).sum()
    assert float(E.component_distance("vad", squared)) == pytest.approx(1.0)


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
    with pytest.raises(ValueError, match="none of its words has a VAD value"):
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
    assert E.parse_emotion_mix("awe,something else", emotions) == pytest.approx([0, 0.5, 0.5])
    assert E.parse_emotion_mix({"AWE": 3, "amusement": 1}, emotions) == pytest.approx([0.25, 0.75, 0])
    assert E.parse_min_scores("0.3", emotions) == (0.3, {})
    assert E.parse_min_scores("awe=0.2, something else=0.1", emotions) == (None, {1: 0.2, 2: 0.1})
    with pytest.raises(ValueError, match="emotion=number pairs"):
        E.parse_min_scores("lots", emotions)
    assert E.emotion_names_in("Awe and SOMETHING  else", emotions) == ["awe", "something else"]
    assert E.emotion_names_in("awesome amusements", emotions) == []


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
    for component in E.COMPONENTS:
        assert index.dataset.get_index(component).faiss_index.ntotal == 120
    assert index.dataset["id"] == [row["id"] for row in rows]
    hits = index.search(id="item-0110", top_k=3)  # a new row is searchable and finds old ones
    assert hits and all(hit["id"] != "item-0110" for hit in hits)


def test_approximate_indexes_past_the_documented_size(tiny_random, tmp_path, monkeypatch):
    model, processor = tiny_random
    monkeypatch.setattr(E, "APPROXIMATE_FROM", 300)
    monkeypatch.setattr(E, "APPROXIMATE_FROM_LOW_DIM", 350)
    rows = synthetic_rows(model.config.emotions, processor.tokenizer, model.vad_table.numpy(), 400, seed=5)
    small = commit_rows(tmp_path / "index", model, processor, rows[:250])
    assert small.config["faiss_types"]["emotion"] == "Flat"
    index = commit_rows(tmp_path / "index", model, processor, rows[250:])  # crosses the size: indexes rebuilt
    assert index.config["faiss_types"] == {"emotion": "IVF64,Flat", "visual": "IVF64,Flat", "vad": "IVF64,Flat"}
    assert index.config["approximate_from"] == {"low_dim": 350, "other": 300}
    assert E.index_factory(349, 9) == "Flat" and E.index_factory(349, 48) == "IVF64,Flat"
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
    identity = {"model": "tiny", "model_fingerprint": "abc", "emotions": list(model.config.emotions)}
    with pytest.raises(FileExistsError, match="holds no emotion index"):
        E._check_target(other, None, identity, overwrite=True)
    assert (other / "holiday.jpg").exists()


def test_fingerprint_tells_models_apart(tiny_random):
    model, _ = tiny_random
    other, _ = build_tiny(seed=1)
    assert E.model_fingerprint(model) == E.model_fingerprint(model)
    assert E.model_fingerprint(model) != E.model_fingerprint(other)


# ---------------------------------------------------------------------------------------------- galleries
def test_gallery_is_self_contained(synthetic, tmp_path):
    index, _ = synthetic
    hits = index.search(emotions="sadness=0.7,fear=0.3", top_k=7)
    page = E.write_gallery(index, hits, tmp_path / "gallery", title="sad <and> afraid")
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and 'src="//' not in text
    assert "sad &lt;and&gt; afraid" in text
    for hit in hits:
        assert f'data-id="{hit["id"]}"' in text and hit["explanation"] in text
    with Image.open(tmp_path / "gallery" / E.CONTACT_SHEET) as sheet:
        assert sheet.size == (5 * 240, 2 * 330)
    E.write_gallery(index, hits[:2], tmp_path / "gallery")  # an earlier gallery is replaced
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>my own page</html>")
    with pytest.raises(FileExistsError, match="not a gallery"):
        E.write_gallery(index, hits, tmp_path / "site")
    assert (tmp_path / "site" / "index.html").read_text() == "<html>my own page</html>"


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
    assert index.build_report == {"items": 9, "computed": 8, "resumed": 0, "already_indexed": 0, "failed": [str(paintings / "broken.jpg")], "unmatched": []}
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
    assert config["model_fingerprint"] == E.model_fingerprint(model) and config["embedding_dim"] == model.config.text_config.n_embd


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
    real = E.predict_rows
    monkeypatch.setattr(E, "predict_rows", lambda m, p, images, g=None: calls.append(len(images)) or real(m, p, images, g))
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
    real = E.predict_rows
    calls, interrupt = [], [True]

    def interrupted(m, p, images, g=None):
        calls.append(len(images))
        if len(calls) == 3 and interrupt and interrupt.pop():
            raise KeyboardInterrupt  # CTRL-C during the third batch
        return real(m, p, images, g)

    monkeypatch.setattr(E, "predict_rows", interrupted)
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

    monkeypatch.setattr(E, "_commit", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        EmotionIndex.build([paintings], folder, model=other, processor=other_processor, overwrite=True, progress=False, report=lambda *a: None)
    old = EmotionIndex.load(folder)  # the old index is still whole
    assert len(old) == 2 and old.config["model_fingerprint"] == E.model_fingerprint(model)
    monkeypatch.undo()
    index = EmotionIndex.build([paintings], folder, model=other, processor=other_processor, overwrite=True, progress=False, report=lambda *a: None)
    assert len(index) == 8 and index.config["model_fingerprint"] == E.model_fingerprint(other)
    assert index.config["parts"] == ["part-00002"] and sorted(os.listdir(folder / "parts")) == ["part-00002"]


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
    hits = reloaded.search(image=paintings / "painting-3.png", top_k=1, visual_weight=1.0)
    assert hits[0]["id"] == str(paintings / "painting-3.png")
