"""A collection's emotional portrait: one offline HTML page with PNG plots, from an emotion index (sevlm-report).

    from sevlm.index.store import EmotionIndex
    from sevlm.report import write_report

    write_report(EmotionIndex.load("my-index"), "portrait/", group_by="room", route="route.txt")

What the page shows, and how each number is made:

- what the collection evokes: per emotion, the share of works whose predicted emotion it is, and the mean
  probability the model gives it over all works (`distribution.png`);
- the same by group (`--group_by artist`, `style`, `room`: any metadata column; groups named alike by the name rule
  are one group; the works without a value are a group of their own, named null in `portrait.json` and "(no
  <column>)" on the page, apart from a value that reads "(none)"): the mean probabilities as a table of colours,
  largest groups first (`groups.png`);
- the works most typical of each emotion (the highest probability of it in the collection) and the least typical
  (among the works whose predicted emotion it is, the lowest probability of it: the borderline ones);
- the most ambiguous works: the flattest scores, by their entropy divided by the largest possible (log of the number
  of emotions; 1 = every emotion equally likely), with the spread of that number over the collection
  (`ambiguity.png`);
- for an ordered route through an exhibition (a text file, one work per line): its emotional arc, the scores of every
  emotion along the route as stacked bands (`route.png`), with the sharpest changes marked: the largest Hellinger
  distances between consecutive works, with the emotion that rises and the one that falls most. A route of any length
  is drawn whole in a plot of bounded width; the page lists its first `ROUTE_CARDS` works and says how many more
  there are (`portrait.json` holds every step); a work that comes back along the route is named in a warning.

The numbers behind the page are in `portrait.json`. Plots are drawn with matplotlib (Agg) and its own fonts, every
text plain (a `$` in a title is a dollar sign, not math); long names are cut in the middle (`short`); pictures are
inlined; the page fetches nothing. The folder is an output of its own kind (`sevlm.io.staged_output`): an earlier
report there is replaced only with `overwrite`, anyone else's file never; the folder may not be (or be inside) an
index or a model folder.
"""

import functools
import html
import os
from pathlib import Path

import numpy as np

from sevlm.io import (
    check_output_folder,
    check_outside_input_folders,
    check_outside_tool_outputs,
    display_path,
    json_safe,
    staged_output,
    write_json_atomic,
)
from sevlm.render import PLAIN_TEXT

REPORT_OWNER = "collection report"
REPORT_PAGE = "index.html"
PORTRAIT_FILE = "portrait.json"
DISTRIBUTION_PLOT = "distribution.png"
GROUPS_PLOT = "groups.png"
AMBIGUITY_PLOT = "ambiguity.png"
ROUTE_PLOT = "route.png"
TOP = 5  # works shown per list
MAX_GROUPS = 30  # groups drawn in groups.png (portrait.json holds them all)
SHARPEST = 3  # changes marked along a route
ROUTE_CARDS = 100  # works of a route listed on the page (portrait.json holds them all)
ROUTE_PLOT_WIDTH = 20  # inches: route.png's widest (a long route's steps come closer together)
REPEATED_WORKS = 10  # works that come back along a route named on the page (portrait.json holds them all)
REPEATED_STEPS = 10  # steps named per such work, on the page and in the warning
NAME_WIDTH = 60  # characters of a work's or group's name shown on the page (the rest cut in the middle)
DPI = 100
REPORT_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1100px; color: #222; background: #fafafa; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; } h3 { font-size: 15px; margin: 14px 0 6px; }
.sub, .how { color: #555; font-size: 13px; } img.plot { max-width: 100%; border: 1px solid #eee; background: #fff; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
td.number { text-align: right; }
.works { display: flex; flex-wrap: wrap; gap: 10px; } .label { font-size: 12px; color: #666; margin: 6px 0 2px; }
.work { width: 140px; margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 6px; font-size: 12px; }
.work img { display: block; max-width: 100%; max-height: 110px; margin: 0 auto 4px; } .work .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.missing { height: 80px; background: #eee; } .change { color: #a4262c; } .no-value { color: #666; font-style: italic; }
"""


# --------------------------------------------------------------------------------------------- the numbers
def entropy(scores):
    """Entropy of each row of a probability matrix divided by log(K): 0 = one emotion only, 1 = all equally likely."""
    p = np.clip(np.asarray(scores, dtype=np.float64), 0.0, None)
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(1) / np.log(p.shape[1]) if p.shape[1] > 1 else np.zeros(len(p))


def hellinger_rows(p, q):
    """Hellinger distance between matching rows of two probability matrices."""
    return np.sqrt(((np.sqrt(np.clip(p, 0, None)) - np.sqrt(np.clip(q, 0, None))) ** 2).sum(1) / 2.0)


def group_rows(index, column):
    """`[(group name, row numbers)]` of a metadata column, largest groups first (then by name); works without a value
    form the group named None (a value "(none)" is a group like any other). Values alike by the name rule are one
    group, named as first seen."""
    from sevlm.index.query import match_column

    column = match_column(column, index.metadata_columns, "--group_by", index.folder)
    keys, values = index.metadata.keys(column), index.metadata.values(column)
    names, rows = {}, {}
    for row, (key, value) in enumerate(zip(keys, values)):
        key = key or ""
        names.setdefault(key, value if key else None)
        rows.setdefault(key, []).append(row)
    groups = [(names[key], np.asarray(members, dtype=np.int64)) for key, members in rows.items()]
    return column, sorted(groups, key=lambda group: (-len(group[1]), group[0] is None, str(group[0]).casefold()))


def read_route(path, index):
    """Row numbers of the works of a route file: one work per line (its id, its path, relative to the file's folder
    or not, or a file name only one work has); blank lines and lines starting with `#` are skipped. Every line that
    names no work is listed in one error."""
    path = Path(path)
    shown = display_path(path)
    what = "a text file, one work per line (its file or id) in the route's order, saved as UTF-8"
    if path.is_dir():
        raise IsADirectoryError(f"--route {shown} is a folder; give {what}.")
    if not path.is_file():
        raise FileNotFoundError(f"--route {shown}: no such file; write {what}.")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise OSError(f"--route {shown} cannot be read ({error.strerror or error}); give {what}.") from None
    if b"\0" in data:
        raise ValueError(f"--route {shown} is not a text file (a picture or other binary file?); give {what}.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"--route {shown}, line {line}: not UTF-8 text (byte {data[error.start]:#x}); give {what}.") from None
    rows, unknown = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        candidates = [name] + ([os.path.join(path.parent, name)] if not os.path.isabs(name) else [])
        for candidate in reversed(candidates):  # the file's folder first, as a reader of the file means it
            try:
                rows.append(index.row_of(candidate))
                break
            except KeyError:
                continue
        else:
            unknown.append(f"{name!r} (line {number})")
    if unknown:
        raise ValueError(f"--route {shown}: {len(unknown)} line(s) name no work of the index: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}.")
    if len(rows) < 2:
        raise ValueError(f"--route {shown} names {len(rows)} work(s); a route needs at least 2, one per line in the route's order.")
    return rows


def portrait(index, group_by=None, route_rows=None, top=TOP):
    """The numbers of the portrait (what `portrait.json` holds; see the module docstring)."""
    emotions = index.emotions
    scores = index.scores.astype(np.float64)
    count = len(index)
    predicted = np.bincount(index.emotion_positions, minlength=len(emotions))
    result = {
        "works": count,
        "emotions": emotions,
        "distribution": {
            "mean_scores": dict(zip(emotions, scores.mean(0).tolist())),
            "predicted_count": dict(zip(emotions, predicted.tolist())),
            "predicted_share": dict(zip(emotions, (predicted / max(count, 1)).tolist())),
        },
    }
    if group_by:
        column, groups = group_rows(index, group_by)
        result["groups"] = {
            "column": column,
            "groups": [
                {
                    "name": name,
                    "count": int(len(rows)),
                    "mean_scores": dict(zip(emotions, scores[rows].mean(0).tolist())),
                    "predicted_count": dict(zip(emotions, np.bincount(index.emotion_positions[rows], minlength=len(emotions)).tolist())),
                }
                for name, rows in groups
            ],
        }
    typical = {}
    for position, name in enumerate(emotions):
        column = scores[:, position]
        most = np.lexsort((np.arange(count), -column))[:top]
        members = np.flatnonzero(index.emotion_positions == position)
        least = members[np.lexsort((members, column[members]))][:top]
        typical[name] = {"most": entries(index, most, column), "least": entries(index, least, column)}
    result["typical"] = typical
    flatness = entropy(scores)
    ambiguous = np.lexsort((np.arange(count), -flatness))[:top]
    result["ambiguity"] = {
        "mean": float(flatness.mean()) if count else 0.0,
        "most_ambiguous": entries(index, ambiguous, flatness, key="entropy"),
    }
    if route_rows is not None:
        result["route"] = route_arc(index, route_rows)
    return result


def entries(index, rows, values, key="score"):
    """`[{"id", "name", key: value}]` of `rows` for lists of works."""
    from sevlm.index.gallery import shown_name

    rows = [int(row) for row in rows]
    works = index.hits(rows, [0.0] * len(rows), {}) if rows else []
    return [{"id": work["id"], "name": shown_name(work), "emotion": work["emotion"], key: float(values[row])} for work, row in zip(works, rows)]


def route_arc(index, rows):
    """The route's arc: per step its work and scores; per change between consecutive steps the Hellinger distance
    and the emotions that rise and fall most; the `SHARPEST` largest changes are `sharpest` (step numbers from 1)."""
    from sevlm.index.gallery import shown_name

    emotions = index.emotions
    scores = index.scores[np.asarray(rows, dtype=np.int64)].astype(np.float64)
    works = index.hits(list(rows), [0.0] * len(rows), {})
    distances = hellinger_rows(scores[:-1], scores[1:])
    changes = []
    for step, distance in enumerate(distances, start=1):
        delta = scores[step] - scores[step - 1]
        changes.append(
            {
                "from_step": step,
                "to_step": step + 1,
                "distance": float(distance),
                "rises": emotions[int(delta.argmax())],
                "rise": float(delta.max()),
                "falls": emotions[int(delta.argmin())],
                "fall": float(delta.min()),
                "from_emotion": works[step - 1]["emotion"],
                "to_emotion": works[step]["emotion"],
            }
        )
    order = np.lexsort((np.arange(len(distances)), -distances))[: min(SHARPEST, len(distances))]
    steps = [{"step": number, "id": work["id"], "name": shown_name(work), "emotion": work["emotion"], "scores": dict(zip(emotions, row.tolist()))} for number, (work, row) in enumerate(zip(works, scores), start=1)]
    at = {}
    for step in steps:
        at.setdefault(step["id"], []).append(step["step"])
    return {
        "steps": steps,
        "changes": changes,
        "sharpest": [changes[int(number)]["from_step"] for number in order],
        "repeated": [{"id": work, "name": steps[numbers[0] - 1]["name"], "steps": numbers} for work, numbers in at.items() if len(numbers) > 1],
    }


# ---------------------------------------------------------------------------------------------------- plots
def emotion_colors(emotions):
    """One colour per emotion (matplotlib's tab10 / tab20 qualitative palettes)."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(emotions) <= 10 else "tab20"]
    return [palette(number % palette.N) for number in range(len(emotions))]


def plain_text(draw):
    """Draw with every text plain: a `$` in a name is a dollar sign, never matplotlib's math."""

    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        from matplotlib import rc_context

        with rc_context(PLAIN_TEXT):
            return draw(*args, **kwargs)

    return drawn


def save_figure(figure, path):
    figure.savefig(path, dpi=DPI, bbox_inches="tight", pil_kwargs={"optimize": True})
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path


@plain_text
def plot_distribution(numbers, path):
    import matplotlib.pyplot as plt

    emotions = numbers["emotions"]
    shares = [100 * numbers["distribution"]["predicted_share"][name] for name in emotions]
    means = [100 * numbers["distribution"]["mean_scores"][name] for name in emotions]
    y = np.arange(len(emotions))
    figure, axes = plt.subplots(figsize=(7.5, 0.42 * len(emotions) + 1.2))
    axes.barh(y - 0.2, shares, height=0.4, color="#3a6ea5", label="works whose predicted emotion it is (%)")
    axes.barh(y + 0.2, means, height=0.4, color="#9aa7b5", label="mean probability over all works (%)")
    axes.set_yticks(y, emotions)
    axes.invert_yaxis()
    axes.set_xlabel("%")
    axes.legend(loc="lower right", fontsize=8, frameon=False)
    axes.set_title(f"What the {numbers['works']} works evoke", fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    return save_figure(figure, path)


@plain_text
def plot_groups(numbers, path):
    import matplotlib.pyplot as plt

    emotions = numbers["emotions"]
    groups = numbers["groups"]["groups"][:MAX_GROUPS]
    table = np.asarray([[100 * group["mean_scores"][name] for name in emotions] for group in groups])
    figure, axes = plt.subplots(figsize=(0.7 * len(emotions) + 3.5, 0.38 * len(groups) + 1.6))
    image = axes.imshow(table, cmap="Blues", aspect="auto", vmin=0)
    axes.set_xticks(range(len(emotions)), emotions, rotation=40, ha="right")
    axes.set_yticks(range(len(groups)), [f"{group_label(group['name'], numbers['groups']['column'], 28)} ({group['count']})" for group in groups])
    for row, values in enumerate(table):
        for column, value in enumerate(values):
            axes.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=7, color="white" if value > table.max() * 0.6 else "#222")
    figure.colorbar(image, ax=axes, label="mean probability (%)", shrink=0.8)
    shown = f" (the {MAX_GROUPS} largest)" if len(numbers["groups"]["groups"]) > MAX_GROUPS else ""
    axes.set_title(f"What each {numbers['groups']['column']} evokes{shown}", fontsize=11)
    return save_figure(figure, path)


@plain_text
def plot_ambiguity(flatness, numbers, path):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 2.8))
    axes.hist(flatness, bins=min(40, max(5, len(flatness) // 3)), range=(0, 1), color="#9aa7b5")
    shown = numbers["ambiguity"]["most_ambiguous"]
    if shown:
        axes.axvline(shown[-1]["entropy"], color="#a4262c", linestyle="--", linewidth=1)
        axes.text(shown[-1]["entropy"], axes.get_ylim()[1] * 0.9, f" the {len(shown)} most ambiguous", color="#a4262c", fontsize=8)
    axes.set_xlabel("how flat a work's scores are (0: one emotion only, 1: every emotion equally likely)")
    axes.set_ylabel("works")
    axes.spines[["top", "right"]].set_visible(False)
    return save_figure(figure, path)


@plain_text
def plot_route(numbers, path):
    import matplotlib.pyplot as plt

    emotions = numbers["emotions"]
    route = numbers["route"]
    steps = np.arange(1, len(route["steps"]) + 1)
    table = np.asarray([[step["scores"][name] for name in emotions] for step in route["steps"]]).T
    figure, axes = plt.subplots(figsize=(min(ROUTE_PLOT_WIDTH, max(7.5, 0.45 * len(steps) + 3)), 4.2))
    axes.stackplot(steps, 100 * table, labels=emotions, colors=emotion_colors(emotions), alpha=0.9)
    for rank, start in enumerate(route["sharpest"], start=1):
        axes.axvspan(start, start + 1, facecolor="none", edgecolor="#a4262c", hatch="//", linewidth=0)
        for edge in (start, start + 1):
            axes.axvline(edge, color="#a4262c", linewidth=1.5)
        axes.text(start + 0.5, 94, str(rank), ha="center", va="center", fontsize=9, color="white", fontweight="bold",
                  bbox={"boxstyle": "circle,pad=0.25", "facecolor": "#a4262c", "edgecolor": "none"})  # fmt: skip
    every = -(-len(steps) // 30)  # at most 30 labels
    axes.set_xticks(steps[::every], [f"{step['step']}. {short(step['name'], 16)}" for step in route["steps"][::every]], rotation=45, ha="right", fontsize=8)
    axes.set_xlim(1, max(2, len(steps)))
    axes.set_ylim(0, 100)
    axes.set_ylabel("probability (%)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    axes.set_title("The emotional arc of the route (red: the sharpest changes, 1 = sharpest)", fontsize=11, pad=10)
    return save_figure(figure, path)


def group_label(name, column, width=NAME_WIDTH):
    """A group's name as shown: the works without a value are "(no <column>)"."""
    return f"(no {short(column, width - 5)})" if name is None else short(name, width)


def cut_list(items, count):
    """The first `count` of `items`, comma-separated, then how many more there are ("1, 7, 13 \u2026 and 8 more")."""
    shown = ", ".join(map(str, items[:count]))
    return shown + (f" \u2026 and {len(items) - count} more" if len(items) > count else "")


def short(text, width):
    """`text` cut to `width` characters in the middle, where names of one collection differ least
    ("demo-painting-00083" -> "demo-pa…00083")."""
    text = str(text)
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "\u2026" + text[len(text) - (width - 1 - head) :]


# ----------------------------------------------------------------------------------------------------- page
def works_html(index, works, value_key="score", label=None):
    """Small cards (thumbnail, name, predicted emotion, and `label` with the work's `value_key` number: the
    probability of the emotion a list is about, or the flatness) of a list of works, each with `data-id`."""
    from sevlm.index.gallery import jpeg_data_uri

    cards = []
    for work in works:
        picture = index.thumbnail(work["id"])
        name = html.escape(short(work["name"], NAME_WIDTH))
        image = f'<img alt="{name}" src="{jpeg_data_uri(picture)}">' if picture is not None else '<div class="missing"></div>'
        number = f"{100 * work[value_key]:.0f}%" if value_key == "score" else f"{work[value_key]:.2f}"
        about = f" \u00b7 {html.escape(label)}" if label else ""
        cards.append(
            f'<figure class="work" data-id="{html.escape(work["id"])}">{image}<div class="name" title="{html.escape(short(work["id"], 4 * NAME_WIDTH))}">'
            f'{name}</div><div>{html.escape(work["emotion"])}{about} {number}</div></figure>'
        )
    return f'<div class="works">{"".join(cards)}</div>'


def distribution_sentence(numbers):
    shares = numbers["distribution"]["predicted_share"]
    ordered = sorted(shares, key=lambda name: -shares[name])
    parts = [f"{name} ({100 * shares[name]:.0f}%)" for name in ordered[:3] if shares[name] > 0]
    return f"Most works evoke {', then '.join(parts)}." if parts else "The collection is empty."


def page_html(index, numbers, title):
    """The report page (see the module docstring)."""
    emotions = numbers["emotions"]
    model = html.escape(display_path(index.config["model"]))
    metadata = f" Metadata: {html.escape(', '.join(index.metadata_columns))}." if index.metadata_columns else ""
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">{numbers["works"]} works of {html.escape(display_path(index.folder))}, described by the model {model}.{metadata}</p>',
        '<section id="distribution"><h2>What the collection evokes</h2>',
        f"<p>{html.escape(distribution_sentence(numbers))}</p>",
        f'<img class="plot" src="{DISTRIBUTION_PLOT}" alt="The share of works per predicted emotion, and the mean probability of each emotion">',
        "<table><tr><th>emotion</th><th>works</th><th>share</th><th>mean probability</th></tr>",
    ]
    for name in emotions:
        parts.append(
            f'<tr><td>{html.escape(name)}</td><td class="number">{numbers["distribution"]["predicted_count"][name]}</td>'
            f'<td class="number">{100 * numbers["distribution"]["predicted_share"][name]:.0f}%</td>'
            f'<td class="number">{100 * numbers["distribution"]["mean_scores"][name]:.1f}%</td></tr>'
        )
    parts.append("</table></section>")
    if "groups" in numbers:
        column = html.escape(numbers["groups"]["column"])
        parts += [
            f'<section id="groups"><h2>By {column}</h2><p class="how">The mean probability of each emotion over the works of each {column} '
            f"(darker: more), largest groups first; in brackets, how many works.</p>",
            f'<img class="plot" src="{GROUPS_PLOT}" alt="The mean probability of each emotion per {column}">',
            f"<table><tr><th>{column}</th><th>works</th><th>most often predicted</th></tr>",
        ]
        for group in numbers["groups"]["groups"]:
            common = max(emotions, key=lambda name: (group["predicted_count"][name], -emotions.index(name)))
            name = group_label(group["name"], numbers["groups"]["column"])
            cell = f'<td class="no-value">{html.escape(name)}</td>' if group["name"] is None else f"<td>{html.escape(name)}</td>"
            parts.append(f'<tr>{cell}<td class="number">{group["count"]}</td><td>{html.escape(common)}</td></tr>')
        parts.append("</table></section>")
    parts.append(
        '<section id="typical"><h2>The works most and least typical of each emotion</h2><p class="how">Most typical: the works the '
        "model gives the highest probability of the emotion. Least typical: among the works whose predicted emotion it is, "
        "those with the lowest probability of it, the borderline ones.</p>"
    )
    for name in emotions:
        lists = numbers["typical"][name]
        least = works_html(index, lists["least"], label=name) if lists["least"] else f"<p class='how'>No work's predicted emotion is {html.escape(name)}.</p>"
        parts.append(
            f'<div class="emotion" data-emotion="{html.escape(name)}"><h3>{html.escape(name)}</h3><p class="label">most typical</p>'
            f'<div data-list="most">{works_html(index, lists["most"], label=name)}</div><p class="label">least typical</p><div data-list="least">{least}</div></div>'
        )
    parts.append("</section>")
    parts += [
        '<section id="ambiguous"><h2>The most ambiguous works</h2><p class="how">The works whose scores are the flattest: the model '
        "hesitates most between emotions. The number is the entropy of the scores divided by its largest possible value "
        f"(0: one emotion only, 1: every emotion equally likely); the collection's mean is {numbers['ambiguity']['mean']:.2f}.</p>",
        f'<img class="plot" src="{AMBIGUITY_PLOT}" alt="How flat the scores of the works are">',
        works_html(index, numbers["ambiguity"]["most_ambiguous"], value_key="entropy", label="flatness"),
        "</section>",
    ]
    if "route" in numbers:
        route = numbers["route"]
        parts += [
            f'<section id="route"><h2>The emotional arc of the route</h2><p class="how">The probability of every emotion at each of the '
            f"{len(route['steps'])} works of the route, in its order; the sharpest changes between one work and the next (by the "
            "Hellinger distance between their emotion distributions) are marked in red.</p>",
            f'<img class="plot" src="{ROUTE_PLOT}" alt="The emotional arc of the route">',
            "<h3>The sharpest changes</h3><ol class='changes'>",
        ]
        for start in route["sharpest"]:
            change = route["changes"][start - 1]
            before, after = route["steps"][start - 1], route["steps"][start]
            parts.append(
                f'<li class="change" data-from="{start}">Step {start} \u2192 {start + 1} ({html.escape(short(before["name"], NAME_WIDTH))} \u2192 '
                f'{html.escape(short(after["name"], NAME_WIDTH))}): from {html.escape(change["from_emotion"])} to {html.escape(change["to_emotion"])}; '
                f'{html.escape(change["rises"])} rises most ({100 * change["rise"]:+.0f} points), {html.escape(change["falls"])} '
                f'falls most ({100 * change["fall"]:+.0f} points).</li>'
            )
        parts.append("</ol><h3>The route</h3>")
        if route["repeated"]:
            again = "; ".join(
                f"{html.escape(short(work['name'], NAME_WIDTH))} (steps {cut_list(work['steps'], REPEATED_STEPS)})" for work in route["repeated"][:REPEATED_WORKS]
            )
            more = f" \u2026 and {len(route['repeated']) - REPEATED_WORKS} more works" if len(route["repeated"]) > REPEATED_WORKS else ""
            parts.append(
                f'<p class="how repeated">Works that come back along the route: {again}{more} (every step of each in '
                f'<a href="{PORTRAIT_FILE}">{PORTRAIT_FILE}</a>, route.repeated).</p>'
            )
        steps = [{**step, "name": f"{step['step']}. {short(step['name'], NAME_WIDTH)}", "score": step["scores"][step["emotion"]]} for step in route["steps"][:ROUTE_CARDS]]
        parts.append(works_html(index, steps))
        if len(route["steps"]) > ROUTE_CARDS:
            parts.append(
                f'<p class="how more-steps">The first {ROUTE_CARDS} of the route\'s {len(route["steps"])} works; every step is in '
                f'<a href="{PORTRAIT_FILE}">{PORTRAIT_FILE}</a> (route.steps) and in the plot above.</p>'
            )
        parts.append("</section>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="sevlm-report">
<title>{html.escape(title)}</title><style>{REPORT_CSS}</style></head>
<body>{"".join(parts)}
</body></html>
"""


def page_title(text):
    """The page's title as one line: every run of white space (new lines too) one space, control characters
    dropped (it is HTML-escaped where it is written)."""
    text = "".join(character for character in str(text) if character.isprintable() or character.isspace())
    return " ".join(text.split())


def report_files(group_by=None, route=None):
    """The files a report writes."""
    return [REPORT_PAGE, PORTRAIT_FILE, DISTRIBUTION_PLOT, AMBIGUITY_PLOT] + ([GROUPS_PLOT] if group_by else []) + ([ROUTE_PLOT] if route else [])


def check_report_folder(output_dir, group_by=None, route=None, overwrite=False, index=None):
    """Refuse, before any work, a report folder where writing would destroy something (see `sevlm.io`): inside
    another tool's output, an index (the `index` it is made from or any other), a model folder, a folder of anyone
    else's files of the same names."""
    check_outside_input_folders(output_dir, "--output_dir", [("--index", index)])
    check_outside_tool_outputs(output_dir, "--output_dir", REPORT_OWNER)
    check_output_folder(output_dir, REPORT_OWNER, report_files(group_by, route), overwrite, "--overwrite", "--output_dir")


def write_report(index, output_dir, group_by=None, route=None, top=TOP, title=None, overwrite=False, warn=None):
    """Write the portrait of `index` into `output_dir` (`index.html`, the PNG plots, `portrait.json`) and return the
    page's path. `group_by`: a metadata column; `route`: a text file of works in a route's order (see `read_route`);
    `top`: works per list; `warn(text)` hears of works that come back along the route."""
    import matplotlib

    matplotlib.use("Agg")
    if int(top) < 1:
        raise ValueError(f"--top must be at least 1, got {top}.")
    check_report_folder(output_dir, group_by, route, overwrite, index.folder)
    route_rows = read_route(route, index) if route else None
    numbers = portrait(index, group_by, route_rows, int(top))
    if route_rows is not None and numbers["route"]["repeated"] and warn is not None:
        repeated = numbers["route"]["repeated"]
        named = "; ".join(f"{short(work['name'], NAME_WIDTH)} (steps {cut_list(work['steps'], REPEATED_STEPS)})" for work in repeated[:5])
        warn(f"--route {display_path(route)}: {len(repeated)} work(s) come back along the route: {named}{' ...' if len(repeated) > 5 else ''}.")
    title = page_title(title or f"The emotional portrait of {Path(display_path(index.folder)).name}")
    with staged_output(output_dir, REPORT_OWNER, report_files(group_by, route), overwrite, "--overwrite", "--output_dir") as staging:
        plot_distribution(numbers, staging / DISTRIBUTION_PLOT)
        plot_ambiguity(entropy(index.scores), numbers, staging / AMBIGUITY_PLOT)
        if group_by:
            plot_groups(numbers, staging / GROUPS_PLOT)
        if route_rows is not None:
            plot_route(numbers, staging / ROUTE_PLOT)
        (staging / REPORT_PAGE).write_text(page_html(index, numbers, title), encoding="utf-8")
        write_json_atomic(staging / PORTRAIT_FILE, json_safe(numbers))
    return Path(output_dir) / REPORT_PAGE


__all__ = ["entropy", "portrait", "read_route", "route_arc", "write_report"]
