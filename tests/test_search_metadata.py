"""Works with their metadata (sevlm-index --metadata, sevlm-search --where) and recommendations from the works a
visitor likes (sevlm-search --like/--dislike, EmotionIndex.recommend)."""

import csv
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from helpers import REPO_ROOT, WORKS, random_images, write_collection

from sevlm.cli import index as index_command
from sevlm.cli import search as search_command
from sevlm.hub import add_pipeline_to_folder
from sevlm.index.build import attach_metadata
from sevlm.index.store import EmotionIndex


def run(command, argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = command.main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def collection(trained_tiny, tmp_path_factory):
    """8 paintings, 7 of them described by works.csv (with a row for a file that is not there), indexed by the
    command with --metadata."""
    model, processor, images = trained_tiny
    root = tmp_path_factory.mktemp("collection")
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    add_pipeline_to_folder(root / "model")
    paintings, works = write_collection(root, images + random_images(4, seed=21))
    argv = [str(paintings), "--model_name_or_path", str(root / "model"), "--output_dir", str(root / "index"), "--device", "cpu"]
    code, _, stderr = run(index_command, argv + ["--metadata", str(works), "--id_column", "file", "--no_progress"])
    assert code == 0, stderr
    files = [str(paintings / f"painting-{number}.png") for number in range(8)]
    return {"root": root, "index": EmotionIndex.load(root / "index"), "stderr": stderr, "files": files, "works": works}


def described(collection):
    """`{id: {title, artist, date, room}}` as works.csv gives them."""
    return {collection["files"][number]: dict(zip(("title", "artist", "date", "room"), work)) for number, work in enumerate(WORKS)}


# ------------------------------------------------------------------------------------------------ metadata
def test_the_index_holds_each_works_row(collection):
    index = collection["index"]
    assert index.metadata_columns == ["title", "artist", "date", "room"]
    for item_id, values in described(collection).items():
        assert index.metadata_of(item_id) == values
    unlisted = collection["files"][7]
    assert index.metadata_of(unlisted) == dict.fromkeys(index.metadata_columns)
    stderr = collection["stderr"]
    assert "Metadata: title, artist, date, room (7 row(s) matched)." in stderr
    assert f"1 work(s) have no metadata: {unlisted}" in stderr
    assert "1 row(s) match no work of the index: ghost.png (line 9)" in stderr


def test_metadata_alone_replaces_values_without_predicting(collection, tmp_path):
    import shutil

    folder = tmp_path / "index"
    shutil.copytree(collection["root"] / "index", folder)
    before = EmotionIndex.load(folder)
    update = tmp_path / "rooms.csv"
    update.write_text(f"file;room;curator\n{collection['files'][0]};Room 7;Ann\n", encoding="utf-8")  # semicolons, as spreadsheets save
    code, _, stderr = run(index_command, ["--output_dir", str(folder), "--metadata", str(update)])
    assert code == 0, stderr
    after = EmotionIndex.load(folder)
    assert after.config["parts"] == before.config["parts"] and after.config["generation"] == before.config["generation"] + 1
    assert after.metadata_of(collection["files"][0]) == {**described(collection)[collection["files"][0]], "room": "Room 7", "curator": "Ann"}
    assert after.metadata_of(collection["files"][1])["room"] == "Room 3" and after.metadata_of(collection["files"][1])["curator"] is None
    assert sorted(path.name for path in folder.glob("metadata-*.parquet")) == [after.config["metadata"]["file"]]  # the old file is gone


@pytest.mark.parametrize(
    "content, message",
    [
        ("file,artist\na.png,X\n", None),  # fine: checked below with --id_column
        ("name,artist\na.png,X\n", "no column naming the works"),
        ("file,artist,artist\na.png,X,Y\n", "twice"),
        ("file,artist\na.png,X\na.png,Y\n", "describes 'a.png' twice (lines 2 and 3)"),
        ("file,artist\na.png,X,Y,Z\n", "line 2: 4 cells"),
    ],
)
def test_metadata_file_errors_name_the_file_and_line(collection, tmp_path, content, message):
    from sevlm.index.metadata import read_metadata_csv

    path = tmp_path / "works.csv"
    path.write_text(content, encoding="utf-8")
    if message is None:
        with pytest.raises(ValueError, match=r"not 'painting'; pass --id_column"):
            read_metadata_csv(path, "painting")
        assert read_metadata_csv(path).rows == {"a.png": {"artist": "X"}}
        return
    with pytest.raises(ValueError) as error:
        read_metadata_csv(path)
    assert message in str(error.value) and "works.csv" in str(error.value)


def test_an_index_of_a_corpus_keeps_its_columns(trained_tiny, tmp_path):
    import datasets

    model, processor, images = trained_tiny
    corpus = datasets.Dataset.from_dict(
        {"painting_id": ["p0", "p1", "p2"], "art_style": ["Impressionism", "Baroque", "Impressionism"], "image": images[:3]},
        features=datasets.Features({"painting_id": datasets.Value("string"), "art_style": datasets.Value("string"), "image": datasets.Image()}),
    )
    works = tmp_path / "works.csv"
    works.write_text("painting_id,artist\np1,Rembrandt\n", encoding="utf-8")
    index = EmotionIndex.build(dataset=corpus, output_dir=tmp_path / "index", model=model, processor=processor, progress=False, metadata=str(works))
    assert index.metadata_columns == ["art_style", "artist"]
    assert index.metadata_of("p1") == {"art_style": "Baroque", "artist": "Rembrandt"}
    hits = index.search(emotions="awe=1", where="art_style=impressionism", top_k=5)
    assert sorted(hit["id"] for hit in hits) == ["p0", "p2"]


# ------------------------------------------------------------------------------------------------- --where
def expected_ids(collection, keep):
    return {item_id for item_id, values in described(collection).items() if keep(values)}


@pytest.mark.parametrize(
    "where, keep",
    [
        (["artist=Claude Monet"], lambda work: work["artist"].casefold() == "claude monet"),
        (["artist = claude  MONET"], lambda work: work["artist"].casefold() == "claude monet"),
        (["date>=1900"], lambda work: work["date"].isdigit() and int(work["date"]) >= 1900),
        (["artist=Claude Monet", "date>=1900"], lambda work: work["artist"].casefold() == "claude monet" and int(work["date"]) >= 1900),
        (["room!=Room 2"], lambda work: work["room"] != "Room 2"),
        (["title<M"], lambda work: work["title"].casefold() < "m"),
        (["Date<1900"], lambda work: work["date"].isdigit() and int(work["date"]) < 1900),
    ],
)
def test_where_keeps_the_works_that_meet_every_condition(collection, where, keep):
    index = collection["index"]
    hits = index.search(emotions="awe=0.5,sadness=0.5", where=where, top_k=20)
    wanted = expected_ids(collection, keep)
    if where == ["room!=Room 2"]:
        wanted.add(collection["files"][7])  # a work without a room is not in Room 2
    assert {hit["id"] for hit in hits} == wanted
    assert all(hit["metadata"] == index.metadata_of(hit["id"]) for hit in hits)
    unfiltered = [hit["id"] for hit in index.search(emotions="awe=0.5,sadness=0.5", top_k=20)]
    assert [hit["id"] for hit in hits] == [item_id for item_id in unfiltered if item_id in wanted]  # same order


def test_a_value_that_is_not_a_number_is_named_when_compared_with_one(collection):
    hits = collection["index"].search(emotions="awe=1", where="date>=1800", top_k=20)
    assert hits.notes == ["1 work(s) whose date is not a number took no part in date>=1800 ('c. 1890')."]
    assert collection["files"][2] not in {hit["id"] for hit in hits}


@pytest.mark.parametrize(
    "where, message",
    [
        ("artst=Claude Monet", "Unknown column 'artst' in the condition 'artst=Claude Monet' (did you mean 'artist'?); the works' metadata has the columns title, artist, date, room."),
        ("artist", "The condition 'artist' is not COLUMN OPERATOR VALUE"),
        ("date=>1900", "Unknown operator '=>' in the condition 'date=>1900'; use one of = != < <= > >= (did you mean >=?)."),
        ("=1900", "is not COLUMN OPERATOR VALUE"),
    ],
)
def test_bad_conditions_say_what_is_wrong(collection, where, message):
    with pytest.raises(ValueError) as error:
        collection["index"].search(emotions="awe=1", where=where)
    assert message in str(error.value)


def test_an_index_without_metadata_says_how_to_add_it(collection, tmp_path):
    import shutil

    folder = tmp_path / "plain"
    shutil.copytree(collection["root"] / "index", folder)
    config = json.loads((folder / "index_config.json").read_text())
    del config["metadata"]
    (folder / "index_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError) as error:
        EmotionIndex.load(folder).search(emotions="awe=1", where="artist=X")
    assert "needs the works' metadata, and this index holds none. Attach it without rebuilding the index: " in str(error.value)
    assert f"sevlm-index --output_dir {folder} --metadata works.csv" in str(error.value)


def test_search_command_filters_and_writes_metadata(collection, tmp_path):
    folder = str(collection["root"] / "index")
    wanted = expected_ids(collection, lambda work: work["artist"].casefold() == "claude monet" and int(work["date"]) >= 1900)
    code, stdout, stderr = run(search_command, ["--index", folder, "--emotions", "awe=1", "--where", "artist=Claude Monet", "--where", "date>=1900"])
    assert code == 0, stderr
    hits = [json.loads(line) for line in stdout.splitlines()]
    assert {hit["id"] for hit in hits} == wanted and all(hit["metadata"]["artist"].casefold() == "claude monet" for hit in hits)

    code, _, stderr = run(search_command, ["--index", folder, "--emotions", "awe=1", "--output", str(tmp_path / "hits.csv"), "--gallery", str(tmp_path / "gallery")])
    assert code == 0, stderr
    with open(tmp_path / "hits.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert {"title", "artist", "date", "room"} <= set(rows[0])
    assert {row["id"]: row["artist"] for row in rows} == {item_id: (values or {}).get("artist") or "" for item_id, values in ((item_id, collection["index"].metadata_of(item_id)) for item_id in collection["files"])}
    page = (tmp_path / "gallery" / "index.html").read_text(encoding="utf-8")
    assert "Water Lilies" in page and "<dt>artist</dt><dd>Claude Monet</dd>" in page

    code, _, stderr = run(search_command, ["--index", folder, "--emotions", "awe=1", "--where", "artst=Monet"])
    assert code == 1 and "Unknown column 'artst'" in stderr and "did you mean 'artist'" in stderr and "Traceback" not in stderr


# --------------------------------------------------------------------------------------------- recommend
def hellinger(p, q):
    return np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(-1) / 2)


def expected_recommendations(index, liked, disliked, dislike_weight=0.5):
    """The recommend rule written out: per liked work the taste sqrt(p) - w * mean(sqrt(p_disliked)), clipped and
    renormalised; a work's distance is its Hellinger distance to the closest taste."""
    scores = index.scores.astype(np.float64)
    rows = [index.row_of(item_id) for item_id in liked]
    avoided = np.sqrt(scores[[index.row_of(item_id) for item_id in disliked]]).mean(0) if disliked else 0.0
    tastes = []
    for row in rows:
        kept = np.clip(np.sqrt(scores[row]) - dislike_weight * avoided, 0, None) ** 2
        tastes.append(kept / kept.sum())
    distance = np.min([hellinger(scores, taste) for taste in tastes], axis=0)
    excluded = set(rows) | {index.row_of(item_id) for item_id in disliked}
    order = [row for row in np.argsort(distance, kind="stable") if row not in excluded]
    return [index.dataset[int(row)]["id"] for row in order], distance


def test_recommend_ranks_by_the_closest_taste_and_never_returns_liked_works(collection):
    index = collection["index"]
    files = collection["files"]
    liked, disliked = [files[0], files[3]], [files[1]]
    hits = index.recommend(liked, disliked, top_k=4)
    order, distance = expected_recommendations(index, liked, disliked)
    assert [hit["id"] for hit in hits] == order[:4]
    for hit in hits:
        assert hit["score"] == pytest.approx(1 - distance[index.row_of(hit["id"])], abs=1e-4)
        assert hit["closest_liked"] in liked and hit["because"].endswith(".")
        assert hit["id"] not in liked + disliked
    every = index.recommend(liked, disliked, top_k=100)
    assert len(every) == 5 and not {hit["id"] for hit in every} & set(liked + disliked)


def test_each_recommendation_says_why_in_plain_words(collection):
    index = collection["index"]
    files = collection["files"]
    (hit,) = index.recommend([files[0]], top_k=1)
    liked_scores, scores = index.scores[0], index.scores[index.row_of(hit["id"])]
    shared = [name for name, ours, theirs in zip(index.emotions, scores, liked_scores) if min(ours, theirs) >= 0.1]
    assert set(hit["shared_emotions"]) <= set(shared) and hit["shared_emotions"]
    assert hit["because"].startswith(f"Evokes {hit['shared_emotions'][0]}") and "as Water Lilies does" in hit["because"]  # the liked work's title
    assert hit["closest_liked"] == files[0] and hit["avoided_emotions"] == []
    assert not re.search(r"Hellinger|distance|\d\.\d", hit["because"])


def test_what_disliked_works_evoke_counts_against_a_work(collection):
    """With the disliked work's emotion taken out, the works that evoke it most fall in the ranking."""
    index = collection["index"]
    files = collection["files"]
    disliking = index.recommend([files[4]], [files[5]], top_k=6, dislike_weight=1.0)
    order, _ = expected_recommendations(index, [files[4]], [files[5]], dislike_weight=1.0)
    assert [hit["id"] for hit in disliking] == order[:6] and files[5] not in [hit["id"] for hit in disliking]
    plain = [hit["id"] for hit in index.recommend([files[4]], top_k=6)]
    assert [item for item in plain if item != files[5]] != [hit["id"] for hit in disliking][: len(plain) - 1]  # it changed the ranking


def test_recommend_errors_name_the_work(collection):
    index = collection["index"]
    files = collection["files"]
    with pytest.raises(KeyError, match="A liked work: No item with id 'nope.png'"):
        index.recommend(["nope.png"])
    with pytest.raises(ValueError, match="is both liked and disliked"):
        index.recommend([files[0]], [files[0]])
    with pytest.raises(ValueError, match="at least one liked work"):
        index.recommend([])
    assert index.recommend(["painting-0"], top_k=1)[0]["closest_liked"] == files[0]  # a file's name, as only one work has it


def test_like_and_dislike_on_the_command_line(collection, tmp_path):
    folder = str(collection["root"] / "index")
    files = collection["files"]
    argv = ["--index", folder, "--like", files[0], files[3], "--dislike", files[1], "--top_k", "3", "--output", str(tmp_path / "for-you.csv")]
    code, _, stderr = run(search_command, argv)
    assert code == 0, stderr
    with open(tmp_path / "for-you.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    expected = collection["index"].recommend([files[0], files[3]], [files[1]], top_k=3)
    assert [row["id"] for row in rows] == [hit["id"] for hit in expected]
    assert [row["because"] for row in rows] == [hit["because"] for hit in expected] and all(row["closest_liked"] for row in rows)
    code, stdout, stderr = run(search_command, ["--index", folder, "--like", files[2], "--where", "room=Room 3", "--top_k", "5"])
    hits = [json.loads(line) for line in stdout.splitlines()]
    assert code == 0 and {hit["id"] for hit in hits} == {files[0], files[1]} and all("because" in hit for hit in hits)
    code, _, stderr = run(search_command, ["--index", folder, "--like", "ghost.png"])
    assert code == 1 and "No item with id 'ghost.png'" in stderr and "Traceback" not in stderr


# ------------------------------------------------------------------------------------------- VAD profiles
def test_one_vad_profile_for_the_evaluation_and_the_index(trained_tiny):
    """The index's profile of a text is the evaluation's profile of the text's explanation encoding."""
    import ast

    from processing_sevlm import explanation_ids
    from sevlm.evaluation import metric
    from sevlm.index.similarity import text_vad_profile

    model, processor, _ = trained_tiny
    table = model.vad_table.numpy()
    text = "  the calm sea feels gloomy and sad "
    expected = metric.vad_profile(explanation_ids(processor.tokenizer, [text])[0], table)
    assert expected is not None
    np.testing.assert_allclose(text_vad_profile(text, processor.tokenizer, table), expected, rtol=1e-6)
    owners = []
    for path in REPO_ROOT.rglob("*.py"):
        if {".venv", "tests", "build", "outputs"} & set(path.parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owners += [path.relative_to(REPO_ROOT).as_posix() for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "vad_profile"]
    assert owners == ["sevlm/vad.py"]


def test_attach_metadata_to_a_folder_without_an_index_says_so(tmp_path):
    works = tmp_path / "works.csv"
    works.write_text("file,artist\na.png,X\n", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no emotion index"):
        attach_metadata(tmp_path / "empty", works)
