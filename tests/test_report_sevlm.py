"""sevlm-report: a collection's emotional portrait, its numbers checked against the index, its page opened offline in
the real browser, and its folder written the way every SEVLM output is (nothing of anyone else's replaced)."""

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from helpers import browser_page, chromium_or_skip, random_images, write_collection

from sevlm.cli import report as report_command
from sevlm.index.build import attach_metadata
from sevlm.index.store import EmotionIndex


def run(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = report_command.main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def collection(trained_tiny, tmp_path_factory):
    model, processor, images = trained_tiny
    root = tmp_path_factory.mktemp("report")
    paintings, works = write_collection(root, images + random_images(4, seed=21))
    EmotionIndex.build([paintings], root / "index", model=model, processor=processor, progress=False)
    index = attach_metadata(root / "index", works)
    route = root / "route.txt"
    route.write_text("# the route of Room 3, then Room 1\npaintings/painting-0.png\npainting-1.png\n\npainting-2\n" + str(paintings / "painting-3.png") + "\n")
    return {"root": root, "index": index, "route": route, "files": [str(paintings / f"painting-{n}.png") for n in range(8)]}


@pytest.fixture(scope="module")
def report(collection):
    output = collection["root"] / "portrait"
    code, _, stderr = run(["--index", str(collection["root"] / "index"), "--output_dir", str(output), "--group_by", "Artist", "--route", str(collection["route"])])
    assert code == 0, stderr
    return output, json.loads((output / "portrait.json").read_text(encoding="utf-8"))


def hellinger(p, q):
    return np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(-1) / 2)


def test_the_numbers_are_the_indexs(collection, report):
    index = collection["index"]
    output, numbers = report
    assert sorted(path.name for path in output.iterdir() if not path.name.startswith(".")) == [
        "ambiguity.png", "distribution.png", "groups.png", "index.html", "portrait.json", "route.png",
    ]  # fmt: skip
    scores = index.scores.astype(np.float64)
    assert numbers["works"] == 8
    np.testing.assert_allclose([numbers["distribution"]["mean_scores"][name] for name in index.emotions], scores.mean(0), rtol=1e-6)
    predicted = [index.dataset[row]["emotion"] for row in range(len(index))]
    assert numbers["distribution"]["predicted_count"] == {name: predicted.count(name) for name in index.emotions}
    # groups: "claude monet" and "Claude Monet" are one artist; the work without a row is the group None
    groups = {group["name"]: group["count"] for group in numbers["groups"]["groups"]}
    assert numbers["groups"]["column"] == "artist" and groups == {"Claude Monet": 3, "Jane Doe": 2, "A. Painter": 2, None: 1}
    monet = [collection["files"][n] for n in (0, 1, 6)]
    (group,) = [group for group in numbers["groups"]["groups"] if group["name"] == "Claude Monet"]
    np.testing.assert_allclose([group["mean_scores"][name] for name in index.emotions], scores[[index.row_of(i) for i in monet]].mean(0), rtol=1e-6)
    # most typical of an emotion: the highest probabilities of it
    for position, name in enumerate(index.emotions):
        expected = [index.dataset[int(row)]["id"] for row in np.argsort(-scores[:, position], kind="stable")[:5]]
        assert [work["id"] for work in numbers["typical"][name]["most"]] == expected
        assert all(work["emotion"] == name for work in numbers["typical"][name]["least"])
    # most ambiguous: the flattest scores
    flatness = -(scores * np.log(scores)).sum(1) / np.log(len(index.emotions))
    assert numbers["ambiguity"]["most_ambiguous"][0]["id"] == index.dataset[int(flatness.argmax())]["id"]
    assert numbers["ambiguity"]["most_ambiguous"][0]["entropy"] == pytest.approx(flatness.max(), rel=1e-5)


def test_the_route_marks_its_sharpest_change(collection, report):
    index = collection["index"]
    _, numbers = report
    route = numbers["route"]
    assert [step["id"] for step in route["steps"]] == collection["files"][:4]
    assert [step["name"] for step in route["steps"]] == ["Water Lilies", "Haystacks", "The Storm", "Night Sea"]
    scores = index.scores[[index.row_of(item) for item in collection["files"][:4]]].astype(np.float64)
    distances = hellinger(scores[:-1], scores[1:])
    assert [change["distance"] for change in route["changes"]] == pytest.approx(distances.tolist(), rel=1e-5)
    assert route["sharpest"][0] == int(distances.argmax()) + 1
    change = route["changes"][route["sharpest"][0] - 1]
    delta = scores[route["sharpest"][0]] - scores[route["sharpest"][0] - 1]
    assert change["rises"] == index.emotions[int(delta.argmax())] and change["falls"] == index.emotions[int(delta.argmin())]


def test_the_page_opens_offline_in_the_browser(report, tmp_path):
    executable = chromium_or_skip()
    output, numbers = report
    url = (output / "index.html").as_uri()
    with browser_page(executable, tmp_path / "profile", offline=True) as page:
        page.goto(url)
        page.wait_for_load_state("load")
        images = page.locator("img").evaluate_all("images => images.map(image => [image.getAttribute('src'), image.complete && image.naturalWidth > 0])")
        plots = {source: loaded for source, loaded in images if source.endswith(".png")}
        assert plots == {"distribution.png": True, "groups.png": True, "ambiguity.png": True, "route.png": True}
        assert all(loaded for _, loaded in images) and len(images) > 4  # the works' thumbnails too
        assert page.locator("#route li.change").count() == len(numbers["route"]["sharpest"])
        text = page.locator("body").inner_text()
        assert "By artist" in text and "Claude Monet" in text and "The most ambiguous works" in text
        foreign = [address for address in page.requests if not address.startswith(("file://", "data:"))]
        assert not foreign, foreign


def test_nothing_of_anyone_elses_is_replaced(collection, report, tmp_path):
    index_folder = str(collection["root"] / "index")
    output, _ = report
    code, _, stderr = run(["--index", index_folder, "--output_dir", str(output)])
    assert code == 1 and "--overwrite" in stderr
    code, _, stderr = run(["--index", index_folder, "--output_dir", str(output), "--overwrite"])  # an earlier report: replaced
    assert code == 0, stderr
    assert not (output / "groups.png").exists()  # what this report does not write is gone with the earlier report
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my page")
    code, _, stderr = run(["--index", index_folder, "--output_dir", str(mine), "--overwrite"])
    assert code == 1 and "index.html" in stderr and (mine / "index.html").read_text() == "my page"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--group_by", "painter"], "Unknown column 'painter' in --group_by"),
        (["--route", "ROUTE"], "1 line(s) name no work of the index: 'ghost.png' (line 2)"),
        (["--route", "missing.txt"], "missing.txt: no such file"),
        (["--route", "FOLDER"], "folder is a folder; give a text file, one work per line"),
        (["--route", "PNG"], "route.png is not a text file"),
        (["--route", "LATIN1"], "latin1.txt, line 2: not UTF-8 text (byte 0xe9); give a text file"),
    ],
)
def test_errors_say_what_to_fix(collection, tmp_path, extra, message):
    route = tmp_path / "route.txt"
    route.write_text("painting-0.png\nghost.png\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "route.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("painting-0.png\nCaf\u00e9.png\n".encode("latin-1"))
    named = {"ROUTE": route, "FOLDER": tmp_path / "folder", "PNG": tmp_path / "route.png", "LATIN1": tmp_path / "latin1.txt"}
    extra = [str(named[value]) if value in named else str(tmp_path / value) if value.endswith(".txt") else value for value in extra]
    code, _, stderr = run(["--index", str(collection["root"] / "index"), "--output_dir", str(tmp_path / "out")] + extra)
    assert code == 1 and message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_an_index_without_metadata_is_named_in_the_hint(collection, tmp_path):
    import shutil

    folder = tmp_path / "plain-index"
    shutil.copytree(collection["root"] / "index", folder)
    config = json.loads((folder / "index_config.json").read_text(encoding="utf-8"))
    (folder / config.pop("metadata")["file"]).unlink()
    (folder / "index_config.json").write_text(json.dumps(config), encoding="utf-8")
    code, _, stderr = run(["--index", str(folder), "--output_dir", str(tmp_path / "out"), "--group_by", "room"])
    assert code == 1 and f"sevlm-index --output_dir {folder} --metadata works.csv" in stderr and "INDEX" not in stderr, stderr


def test_names_are_plain_text_in_the_plots(tmp_path):
    """A `$` in a work's or group's name is a dollar sign: matplotlib's math would garble it, or fail on it."""
    from sevlm.report import plot_groups, plot_route

    emotions = ["calm", "storm"]
    names = ["Price: $5 and $x^{", "$\\frac{1}{2}$ moon", "plain"]
    steps = [{"step": n + 1, "id": f"w{n}", "name": name, "emotion": "calm", "scores": {"calm": 0.6, "storm": 0.4}} for n, name in enumerate(names)]
    numbers = {
        "emotions": emotions,
        "groups": {"column": "title", "groups": [{"name": name, "count": 1, "mean_scores": {"calm": 0.5, "storm": 0.5}} for name in names] + [{"name": None, "count": 1, "mean_scores": {"calm": 0.5, "storm": 0.5}}]},
        "route": {"steps": steps, "sharpest": [1]},
    }
    plot_groups(numbers, tmp_path / "groups.png")
    plot_route(numbers, tmp_path / "route.png")
    assert (tmp_path / "groups.png").stat().st_size > 0 and (tmp_path / "route.png").stat().st_size > 0


def test_a_long_route_is_drawn_and_listed_within_bounds(collection, tmp_path):
    from PIL import Image

    from sevlm.report import ROUTE_CARDS, ROUTE_PLOT_WIDTH

    route = tmp_path / "long.txt"
    route.write_text("\n".join(collection["files"][n % 8] for n in range(300)) + "\n")
    output = tmp_path / "portrait"
    code, _, stderr = run(["--index", str(collection["root"] / "index"), "--output_dir", str(output), "--route", str(route)])
    assert code == 0, stderr
    assert "warning: --route" in stderr and "8 work(s) come back along the route: Water Lilies (steps 1, 9, 17" in stderr
    numbers = json.loads((output / "portrait.json").read_text(encoding="utf-8"))
    assert len(numbers["route"]["steps"]) == 300 and len(numbers["route"]["repeated"]) == 8
    with Image.open(output / "route.png") as plot:
        assert plot.width <= ROUTE_PLOT_WIDTH * 100 + 300  # the plot's widest, and its legend
    page = (output / "index.html").read_text(encoding="utf-8")
    route_part = page.split('id="route"')[1]
    assert route_part.count('<figure class="work"') == ROUTE_CARDS
    assert f"The first {ROUTE_CARDS} of the route's 300 works" in page and "Works that come back along the route" in page
    # each work comes back 37 times: the page names its first 10 steps and how many more (portrait.json has them all)
    repeated = page.split('class="how repeated">')[1].split("</p>")[0]
    assert "Water Lilies (steps 1, 9, 17, 25, 33, 41, 49, 57, 65, 73 \u2026 and 28 more)" in repeated and "297" not in repeated
    assert numbers["route"]["repeated"][0]["steps"][-1] == 297 and len(numbers["route"]["repeated"][0]["steps"]) == 38
    assert "1, 9, 17, 25, 33, 41, 49, 57, 65, 73 \u2026 and 28 more" in stderr


def test_missing_values_long_titles_and_the_page_title(collection, tmp_path):
    """A value that reads "(none)" is a group apart from the works without a value; a very long title is cut where
    it is shown; the page's title is one line, escaped."""
    import shutil

    from sevlm.index.build import attach_metadata

    folder = tmp_path / "index"
    shutil.copytree(collection["root"] / "index", folder)
    long_title = "A " + "very " * 400 + "long title"
    csv = collection["root"] / "paintings" / "other-works.csv"
    csv.write_text(
        "file,title,artist\npainting-0.png,Water Lilies,(none)\npainting-1.png,Haystacks,(none)\n"
        f"painting-2.png,{long_title},Jane Doe\npainting-3.png,Night Sea,\n",
        encoding="utf-8",
    )
    try:
        attach_metadata(folder, csv)
    finally:
        csv.unlink()
    output = tmp_path / "portrait"
    code, _, stderr = run(["--index", str(folder), "--output_dir", str(output), "--group_by", "artist", "--title", "Our\nrooms <b>1</b>"])
    assert code == 0, stderr
    numbers = json.loads((output / "portrait.json").read_text(encoding="utf-8"))
    groups = {group["name"]: group["count"] for group in numbers["groups"]["groups"]}
    assert groups[None] == 2 and groups["(none)"] == 2 and groups["Jane Doe"] == 1  # Night Sea lost its artist; the last work has no row
    page = (output / "index.html").read_text(encoding="utf-8")
    assert '<td class="no-value">(no artist)</td>' in page and "<td>(none)</td>" in page
    assert "<title>Our rooms &lt;b&gt;1&lt;/b&gt;</title>" in page and "<h1>Our rooms &lt;b&gt;1&lt;/b&gt;</h1>" in page
    assert long_title not in page and "very " * 20 not in page
    assert any(work["name"] == long_title for works in numbers["typical"].values() for work in works["most"])  # whole in the numbers


def test_an_index_or_model_folder_is_never_the_report_folder(collection, tmp_path):
    index_folder = collection["root"] / "index"
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    cases = [(index_folder, "is --index"), (index_folder / "portrait", "is inside --index"), (model / "portrait", "which is a model folder")]
    for target, message in cases:
        code, _, stderr = run(["--index", str(index_folder), "--output_dir", str(target)])
        assert code == 1 and message in stderr, stderr
    assert not (index_folder / "index.html").exists() and not (index_folder / "portrait").exists() and not (model / "portrait").exists()


def test_help_is_clean(capsys):
    with pytest.raises(SystemExit):
        report_command.main(["--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "[OVERWRITE]" not in text and text.count("default:") == 2
    assert "--index DIR" in text and "--output_dir DIR" in text
