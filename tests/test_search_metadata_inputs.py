"""What the metadata of an index, --where conditions and search outputs do with awkward input: reserved and
duplicated column names, broken CSV files, conditions written in one text, values with operator characters, rows
matched by file name only or naming several works, searches without hits, and the files written for people."""

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from helpers import random_images
from test_search_metadata import collection, run  # noqa: F401  (the module's 8 paintings, indexed with works.csv)

from sevlm.cli import index as index_command
from sevlm.cli import search as search_command
from sevlm.index.build import attach_metadata
from sevlm.index.metadata import CELL_LIMIT, MetadataSource, merge_metadata, read_metadata_csv
from sevlm.index.query import parse_condition, split_conditions
from sevlm.index.store import EmotionIndex


def read_csv(tmp_path, content, *args):
    path = tmp_path / "works.csv"
    path.write_text(content, encoding="utf-8")
    return read_metadata_csv(path, *args)


def csv_error(tmp_path, content, *args):
    with pytest.raises(ValueError) as error:
        read_csv(tmp_path, content, *args)
    assert "works.csv" in str(error.value)
    return str(error.value)


# ------------------------------------------------------------------------------------------- the CSV file
@pytest.mark.parametrize("name", ["id", "ID", " Id "])
def test_a_column_named_as_the_index_keeps_the_ids_is_refused(tmp_path, name):
    message = csv_error(tmp_path, f"file,{name},artist\na.png,7,X\n")
    assert f"the column {name.strip()!r} of the first line has a name the index keeps for the works' ids" in message
    assert f"--id_column {name.strip()}" in message and "Rename it" in message
    assert read_csv(tmp_path, f"file,{name},artist\na.png,7,X\n", name).rows == {"7": {"file": "a.png", "artist": "X"}}


def test_a_reserved_column_leaves_the_index_as_it_was(collection, tmp_path):  # noqa: F811
    import shutil

    folder = tmp_path / "index"
    shutil.copytree(collection["root"] / "index", folder)
    config = (folder / "index_config.json").read_text()
    works = tmp_path / "more.csv"
    works.write_text(f"file,id,artist\n{collection['files'][0]},17,X\n", encoding="utf-8")
    code, _, stderr = run(index_command, ["--output_dir", str(folder), "--metadata", str(works)])
    assert code == 1 and "the column 'id'" in stderr and "Traceback" not in stderr
    assert (folder / "index_config.json").read_text() == config
    assert EmotionIndex.load(folder).metadata_of(collection["files"][0])["artist"] == "Claude Monet"
    source = MetadataSource({"a.png": {"id": "1"}}, ["id"], "rows given")
    with pytest.raises(ValueError, match="rows given: the column 'id' has a name the index keeps"):
        merge_metadata(None, [source], ["a.png"])


def test_a_corpus_column_named_id_is_kept_under_a_prefix(trained_tiny, tmp_path):
    import datasets

    model, processor, images = trained_tiny
    corpus = datasets.Dataset.from_dict(
        {"painting_id": ["p0", "p1"], "id": ["x-0", "x-1"], "image": images[:2]},
        features=datasets.Features({"painting_id": datasets.Value("string"), "id": datasets.Value("string"), "image": datasets.Image()}),
    )
    EmotionIndex.build(dataset=corpus, output_dir=tmp_path / "index", model=model, processor=processor, progress=False)
    index = EmotionIndex.load(tmp_path / "index")  # loads: the config is not damaged
    assert index.metadata_columns == ["metadata_id"] and index.metadata_of("p1") == {"metadata_id": "x-1"}


def test_a_column_given_twice_is_named_as_a_column(tmp_path):
    message = csv_error(tmp_path, "file,artist,date,Artist\na.png,X,1900,Y\n")
    assert "the column 'Artist' appears twice in the first line (columns 2 and 4" in message and "Rename or remove one" in message
    assert "class" not in message


def test_a_row_with_fewer_cells_is_an_error_naming_its_line(tmp_path):
    message = csv_error(tmp_path, "file,artist,date\na.png,X,1900\nb.png,Y\n")
    assert "line 3: 2 cells, the first line names 3 columns" in message and "a,,c" in message


@pytest.mark.parametrize(
    "content, line",
    [
        ('file,artist,date\na.png,"X,1900\nb.png,Y,1901\n', 2),  # the quote swallows the rest: fewer cells
        ('file,artist\na.png,X\nb.png,"Y\nc.png,Z\nd.png,W\n', 3),  # in the last column: as many cells
    ],
)
def test_a_quote_never_closed_is_an_error_naming_its_line(tmp_path, content, line):
    message = csv_error(tmp_path, content)
    assert f"line {line}:" in message and ("never closed" in message or "quote that is not closed" in message)


def test_long_cells_are_read_and_too_long_ones_named(tmp_path, monkeypatch):
    import sevlm.index.metadata as metadata

    long = "x" * 200_000  # more than the csv module's 131072 by default
    before = csv.field_size_limit(131072)
    try:
        assert read_csv(tmp_path, f"file,notes\na.png,{long}\n").rows == {"a.png": {"notes": long}}
        assert csv.field_size_limit() == 131072  # set back
    finally:
        csv.field_size_limit(before)
    monkeypatch.setattr(metadata, "CELL_LIMIT", 150_000)
    message = csv_error(tmp_path, f"file,notes\na.png,short\nb.png,{long}\n")
    assert "line 3: a cell longer than 150000 characters" in message and CELL_LIMIT > 150_000


# ------------------------------------------------------------------------------------------- matching rows
def test_rows_matched_by_file_name_only_are_counted(collection, tmp_path):  # noqa: F811
    assert "matched by file name only" not in collection["stderr"]  # bare file names (painting-1.png) are exact enough
    files = collection["files"]
    works = tmp_path / "works.csv"
    works.write_text("file,room\nelsewhere/painting-1.png,Room 1\npainting-3.jpg,Room 3\npainting-5.png,Room 5\n", encoding="utf-8")
    source = read_metadata_csv(works)
    table, _, _ = merge_metadata(None, [source], files)
    assert [row["id"] for row in table.to_pylist()] == [files[1], files[3], files[5]]
    assert source.report["by_name"] == [
        f"elsewhere/painting-1.png (line 2) -> {files[1]}",
        f"painting-3.jpg (line 3) -> {files[3]}",
    ]


def test_a_row_giving_a_works_path_wins_over_one_giving_its_name(collection, tmp_path):  # noqa: F811
    files = collection["files"]
    works = tmp_path / "works.csv"
    works.write_text(f"file,artist\nelsewhere/painting-0.png,Nobody\n{files[0]},Claude Monet\n", encoding="utf-8")
    source = read_metadata_csv(works)
    table, _, _ = merge_metadata(None, [source], files)
    assert table.to_pylist() == [{"id": files[0], "artist": "Claude Monet"}]
    assert source.report["matched"] == 1 and source.report["by_name"] == []
    assert source.report["unmatched"] == [f"elsewhere/painting-0.png (line 2): its file name is that of {files[0]}, which {files[0]} (line 3) names"]


@pytest.fixture(scope="module")
def twins(trained_tiny, tmp_path_factory):
    """Two works of one file name (a/same.png, b/same.png) and a third, indexed with a CSV naming `same.png`."""
    model, processor, _ = trained_tiny
    root = tmp_path_factory.mktemp("twins")
    for number, (folder, picture) in enumerate(zip(["a", "b", "c"], random_images(3, seed=5))):
        (root / folder).mkdir()
        picture.save(root / folder / ("same.png" if number < 2 else "other.png"))
    works = root / "works.csv"
    works.write_text("file,artist\nsame.png,X\nc/other.png,Y\n", encoding="utf-8")
    index = EmotionIndex.build([str(root / name) for name in "abc"], root / "index", model=model, processor=processor, progress=False, metadata=str(works))
    return {"root": root, "index": index, "report": index.build_report["metadata"]}


def test_a_file_name_of_two_works_names_both(twins):
    root, report = twins["root"], twins["report"]
    (source,) = report["sources"]
    assert source["unmatched"] == [] and source["ambiguous"] == [f"same.png (line 2): {root / 'a' / 'same.png'}, {root / 'b' / 'same.png'}"]
    from sevlm.cli.index import metadata_summary

    lines = "\n".join(metadata_summary(report, index_command.parse_args(["--output_dir", str(root / "index"), "--metadata", "works.csv"])))
    assert "1 row(s) give a file name that several works have, and describe none of them: same.png (line 2)" in lines
    assert "match no work" not in lines
    with pytest.raises(KeyError) as error:
        twins["index"].row_of("same.png")
    assert "'same.png' names 2 works" in error.value.args[0] and str(root / "b" / "same.png") in error.value.args[0]
    code, _, stderr = run(search_command, ["--index", str(root / "index"), "--id", "same.png"])
    assert code == 1 and "names 2 works" in stderr and "Traceback" not in stderr


# ------------------------------------------------------------------------------------------------ --where
@pytest.mark.parametrize(
    "text, items",
    [
        ("artist=Claude Monet; date>=1900", ["artist=Claude Monet", "date>=1900"]),
        ('title="Red; Blue"\ndate>=1900;', ['title="Red; Blue"', "date>=1900"]),
        ("title='Monet''s garden; 2'; room=1", ["title='Monet''s garden; 2'", "room=1"]),
        ("title=Monet's garden; room=1", ["title=Monet's garden", "room=1"]),  # an apostrophe inside a value
        ("", []),
        ("artist=", ["artist="]),  # an empty value: the works without an artist
        ("room=Room 1;artist=", ["room=Room 1", "artist="]),
        ("artist= ;room=Room 1", ["artist=", "room=Room 1"]),
    ],
)
def test_conditions_split_on_semicolons_outside_quotes(text, items):
    from sevlm.app import conditions

    assert split_conditions(text) == items
    assert conditions(text) == (items or None)  # the app reads them as the command line does


@pytest.mark.parametrize(
    "text, operator, value",
    [
        ('title="=X"', "=", "=X"),
        ("title='<b>'", "=", "<b>"),
        ('title="The ""Storm"" at sea"', "=", 'The "Storm" at sea'),
        ("title==X", "=", "X"),  # == reads as =
        ("date >= 1900", ">=", "1900"),
        ("title=", "=", ""),
    ],
)
def test_quoted_values_may_hold_operator_characters(text, operator, value):
    condition = parse_condition(text, ["title", "date"])
    assert (condition.operator, condition.value) == (operator, value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("title= =X", "starts with '=', an operator character; write the operator once, or, if the value is meant, quote it: title=\"=X\""),
        ("title= <X", "starts with '<'"),
        ('title="Red', "is never closed"),
        ('title="Red" Blue', "is closed before the value ends"),
    ],
)
def test_values_starting_with_operator_characters_are_not_read_silently(text, message):
    with pytest.raises(ValueError) as error:
        parse_condition(text, ["title"])
    assert message in str(error.value)


def test_unclosed_quotes_in_a_text_of_conditions_are_errors():
    with pytest.raises(ValueError, match="never closed"):
        split_conditions('title="Red; date>1900')
    with pytest.raises(ValueError, match="goes on after its value's closing quote"):
        split_conditions('title="Red" Blue; date>1900')


def test_the_command_line_splits_conditions_as_the_app_does(collection):  # noqa: F811
    folder = str(collection["root"] / "index")
    _, apart, _ = run(search_command, ["--index", folder, "--emotions", "awe=1", "--where", "artist=Claude Monet", "--where", "date>=1900"])
    code, together, stderr = run(search_command, ["--index", folder, "--emotions", "awe=1", "--where", "artist=Claude Monet; date>=1900"])
    assert code == 0, stderr
    assert together == apart and len(together.splitlines()) == 2
    assert collection["index"].search(emotions="awe=1", where="artist=Claude Monet; date>=1900") == collection["index"].search(emotions="awe=1", where=["artist=Claude Monet", "date>=1900"])


def test_an_empty_value_finds_the_works_without_one(collection):  # noqa: F811
    """`artist=` as documented: the works whose artist is empty or missing, from the command line and the API."""
    index = collection["index"]
    without = sorted(hit["id"] for hit in index.search(emotions="awe=1", where="artist=", top_k=20))
    assert without == [collection["files"][7]]  # the one painting works.csv does not describe
    code, stdout, stderr = run(search_command, ["--index", str(collection["root"] / "index"), "--emotions", "awe=1", "--where", "room=Room 1;artist="])
    assert code == 0 and "Traceback" not in stderr


def test_the_apps_box_finds_the_works_without_a_value(collection, trained_tiny):  # noqa: F811
    """The app's "Only works where" box reads `artist=` as the command line does: the works without an artist."""
    from sevlm.app import MIX, Explainer

    model, processor, _ = trained_tiny
    explainer = Explainer(model, processor, collection["index"], top_k=20)
    page, _ = explainer.search_and_export(MIX, "awe=1", [], 0, "room=Room 1\nartist=")
    assert 'class="sevlm-error"' not in page and "artist= keeps 1" in page  # no work of Room 1 lacks an artist
    page, _ = explainer.search_and_export(MIX, "awe=1", [], 0, "artist=")
    assert page.count('class="sevlm-hit"') == 1 and collection["files"][7].replace("\\", "/").split("/")[-1] in page


def test_order_comparisons_with_text_say_they_are_alphabetical(collection):  # noqa: F811
    hits = collection["index"].search(emotions="awe=1", where="date<c. 1900", top_k=20)
    (note,) = hits.notes
    assert note.startswith("date<c. 1900 compares text in alphabetical order, ignoring case, because 'c. 1900' is not a number")
    assert not any("alphabetical" in note for note in collection["index"].search(emotions="awe=1", where="date<1900", top_k=20).notes)
    code, _, stderr = run(search_command, ["--index", str(collection["root"] / "index"), "--emotions", "awe=1", "--where", "title<M"])
    assert code == 0 and "note: title<M compares text in alphabetical order" in stderr


# ------------------------------------------------------------------------------------------ empty answers
def test_a_search_without_hits_says_why(collection):  # noqa: F811
    index, files = collection["index"], collection["files"]
    hits = index.search(emotions="awe=1", where="artist=Nobody")
    assert list(hits) == [] and hits.notes == ["No hits: no work of the 8 meets the filter (artist=Nobody keeps 0)."]
    hits = index.search(emotions="awe=1", where=["artist=Jane Doe", "room=Room 3"])
    assert hits.notes == ["No hits: no work of the 8 meets every filter at once (artist=Jane Doe keeps 2, room=Room 3 keeps 2)."]
    hits = index.search(id=files[0], where="title=Water Lilies")
    assert hits.notes == ["No hits: the only work(s) the filters keep (title=Water Lilies keeps 1) are the work searched from, which is never among its own hits."]
    hits = index.recommend([files[0]], [files[1]], where="room=Room 3")
    assert hits.notes == ["No hits: the only work(s) the filters keep (room=Room 3 keeps 2) are liked or disliked, and those are never recommended."]
    code, stdout, stderr = run(search_command, ["--index", str(collection["root"] / "index"), "--emotions", "awe=1", "--emotion", "awe", "--where", "artist=Nobody"])
    assert code == 0 and stdout == "" and "note: No hits: no work of the 8 meets every filter at once (artist=Nobody keeps 0, emotion awe keeps" in stderr


def test_dislike_without_like_says_what_it_needs(collection):  # noqa: F811
    stderr = io.StringIO()
    with redirect_stderr(stderr), redirect_stdout(io.StringIO()), pytest.raises(SystemExit):
        search_command.main(["--index", str(collection["root"] / "index"), "--dislike", collection["files"][0]])
    assert "--dislike goes with --like: recommendations start from works you like" in stderr.getvalue() and "--like water-lilies.jpg --dislike storm.jpg" in stderr.getvalue()
    with pytest.raises(ValueError, match="disliked works only steer them away"):
        collection["index"].recommend([], [collection["files"][0]])


@pytest.mark.parametrize("top_k", [2.5, 0, -1, True, "3"])
def test_top_k_must_be_a_whole_number_of_at_least_one(collection, top_k):  # noqa: F811
    index = collection["index"]
    with pytest.raises(ValueError, match="top_k must be a whole number of at least 1"):
        index.search(emotions="awe=1", top_k=top_k)
    with pytest.raises(ValueError, match="top_k must be a whole number of at least 1"):
        index.recommend([collection["files"][0]], top_k=top_k)
    assert len(index.search(emotions="awe=1", top_k=np.int64(2))) == 2


# ------------------------------------------------------------------------------------------ files for people
def test_csv_column_names_are_written_as_text(collection):  # noqa: F811
    from sevlm.index.gallery import write_hits

    (hit,) = collection["index"].search(emotions="awe=1", top_k=1)
    hit["metadata"] = {"=SUM(A1)": "@x", "title": "T"}
    stream = io.StringIO()
    write_hits([hit], stream, "csv", collection["index"].emotions)
    header, row = list(csv.reader(io.StringIO(stream.getvalue())))
    assert "'=SUM(A1)" in header and "=SUM(A1)" not in header
    assert row[header.index("'=SUM(A1)")] == "'@x" and row[header.index("title")] == "T"


def test_csv_keeps_every_metadata_column(collection):  # noqa: F811
    """A metadata column named as a hit's column (by the name rule too) gets a prefix, and a number when the prefixed
    name is a column of its own: no value is dropped, no two columns share a name."""
    from sevlm.index.gallery import write_hits
    from sevlm.names import emotion_key

    (hit,) = collection["index"].search(emotions="awe=1", top_k=1)
    emotion = collection["index"].emotions[0]
    metadata = {"metadata_score": "MS", "score": "S", "Emotion": "E", f"Score_{emotion.title()}": "SA", "distance emotion": "DE", "title": "T"}
    hit["metadata"] = metadata
    stream = io.StringIO()
    write_hits([hit], stream, "csv", collection["index"].emotions)
    header, row = list(csv.reader(io.StringIO(stream.getvalue())))
    assert len({emotion_key(name) for name in header}) == len(header)
    assert row[header.index("metadata_score")] == "MS" and row[header.index("metadata_score_2")] == "S"
    assert row[header.index("metadata_Emotion")] == "E" and row[header.index("emotion")] == hit["emotion"]
    assert sorted(value for name, value in zip(header, row) if value in metadata.values()) == sorted(metadata.values())


def test_the_contact_sheet_draws_with_dejavu_sans(collection, tmp_path, monkeypatch):  # noqa: F811
    from PIL import ImageFont

    from sevlm.index.gallery import contact_sheet, sheet_font

    assert sheet_font(13).path.endswith("DejaVuSans.ttf") and sheet_font(16, bold=True).path.endswith("DejaVuSans-Bold.ttf")

    def no_default(*args, **kwargs):
        raise AssertionError("PIL's own font has no accented glyphs")

    monkeypatch.setattr(ImageFont, "load_default", no_default)
    hits = collection["index"].search(emotions="awe=1", top_k=2)
    hits[0]["metadata"] = {"title": "Nymphéas à Giverny", "artist": "Claude Monet"}
    contact_sheet(hits, [None, None], tmp_path / "sheet.png")
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert json.loads(json.dumps(hits[0]["metadata"]))["title"] == "Nymphéas à Giverny"


def test_attach_metadata_reports_rows_by_name(collection, tmp_path):  # noqa: F811
    import shutil

    folder = tmp_path / "index"
    shutil.copytree(collection["root"] / "index", folder)
    works = tmp_path / "rooms.csv"
    works.write_text("file,room\nrooms/painting-2.png,Room 9\n", encoding="utf-8")
    index = attach_metadata(folder, works)
    (source,) = index.build_report["metadata"]["sources"]
    assert source["by_name"] == [f"rooms/painting-2.png (line 2) -> {collection['files'][2]}"]
    assert index.metadata_of(collection["files"][2])["room"] == "Room 9"
