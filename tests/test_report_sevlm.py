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
    # groups: "claude monet" and "Claude Monet" are one artist; the work without a row is "(none)"
    groups = {group["name"]: group["count"] for group in numbers["groups"]["groups"]}
    assert numbers["groups"]["column"] == "artist" and groups == {"Claude Monet": 3, "Jane Doe": 2, "A. Painter": 2, "(none)": 1}
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
    ],
)
def test_errors_say_what_to_fix(collection, tmp_path, extra, message):
    route = tmp_path / "route.txt"
    route.write_text("painting-0.png\nghost.png\n")
    extra = [str(route) if value == "ROUTE" else str(tmp_path / value) if value.endswith(".txt") else value for value in extra]
    code, _, stderr = run(["--index", str(collection["root"] / "index"), "--output_dir", str(tmp_path / "out")] + extra)
    assert code == 1 and message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()
