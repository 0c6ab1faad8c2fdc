"""Search hits for people and for files: HTML cards (a gallery page, the web app), a contact sheet, CSV / JSON Lines.

Pages speak plain words: "92% alike", "ranked by how close the mix of emotions a work evokes is to the search";
the exact numbers and the distances behind them are in tooltips (and in docs/). Every writer goes through
`sevlm.io`: a gallery is a folder of outputs recorded as such (a user's `contact_sheet.png` is never replaced; an
earlier gallery only with `--overwrite`), a hits file is a single new file (`check_new_file`), and nothing is written
inside another tool's output (an index's own files). CSV cells that a spreadsheet would run as formulas are written
as text (`sevlm.io.spreadsheet_safe`).
"""

import csv
import html
import io
import json
import math
import os
from pathlib import Path

from sevlm.index.query import describe_unused
from sevlm.index.similarity import ranking_details, ranking_sentence
from sevlm.io import (
    check_new_file,
    check_output_folder,
    check_outside_input_folders,
    check_outside_tool_outputs,
    display_path,
    spreadsheet_safe,
    staged_output,
)

GALLERY_OWNER = "search gallery"
GALLERY_PAGE = "index.html"
CONTACT_SHEET = "contact_sheet.png"
GALLERY_FILES = (GALLERY_PAGE, CONTACT_SHEET)
THUMBNAIL_SIZE = 128
# Class names carry a `sevlm-` prefix so that the cards can sit inside other pages (the web app) unchanged.
GALLERY_CSS = """
.sevlm-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 14px; clear: both; }
.sevlm-hit { margin: 0; background: #fff; color: #222; border: 1px solid #ddd; border-radius: 6px; padding: 10px; }
.sevlm-hit img { display: block; max-width: 100%; max-height: 170px; margin: 0 auto 8px; }
.sevlm-source { border: 2px solid #3a6ea5; max-width: 260px; margin-bottom: 14px; }
.sevlm-missing { height: 120px; background: #eee; color: #888; text-align: center; line-height: 120px; }
.sevlm-head { display: flex; justify-content: space-between; font-size: 12px; color: #666; }
.sevlm-alike { cursor: help; border-bottom: 1px dotted #999; }
.sevlm-id { font-size: 12px; color: #444; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.sevlm-emotion { font-size: 17px; font-weight: 600; margin: 4px 0; } .sevlm-prob { font-weight: 400; color: #666; font-size: 13px; }
.sevlm-bar { display: flex; align-items: center; font-size: 11px; color: #555; } .sevlm-bar .sevlm-name { width: 92px; }
.sevlm-track { flex: 1; height: 7px; background: #eee; margin: 0 6px; } .sevlm-fill { display: block; height: 100%; background: #9aa7b5; }
.sevlm-bar.sevlm-top { color: #222; font-weight: 600; } .sevlm-bar.sevlm-top .sevlm-fill { background: #3a6ea5; }
.sevlm-value { width: 32px; text-align: right; } .sevlm-explanation { font-size: 13px; font-style: italic; margin: 8px 0 0; }
.sevlm-ranking { color: #555; font-size: 13px; } .sevlm-note { color: #8a5a00; font-size: 13px; }
.sevlm-meta { margin: 4px 0; font-size: 12px; color: #333; } .sevlm-meta div { display: flex; gap: 6px; }
.sevlm-meta dt { color: #777; min-width: 56px; } .sevlm-meta dd { margin: 0; overflow-wrap: anywhere; }
.sevlm-because { font-size: 13px; margin: 6px 0 0; color: #1d4f82; }
.sevlm-open { display: block; width: 100%; padding: 0; border: 0; background: none; cursor: zoom-in; }
.sevlm-actions { display: flex; gap: 6px; margin-top: 8px; }
.sevlm-actions button { font: inherit; font-size: 13px; padding: 3px 10px; border: 1px solid #bbb; border-radius: 12px; background: #fff; color: #333; cursor: pointer; }
.sevlm-like[aria-pressed="true"] { background: #fde8ec; border-color: #c2185b; color: #c2185b; }
"""
LIKE_LABELS = {False: "\u2661 Like", True: "\u2665 Liked"}
TITLE_COLUMN = "title"  # a metadata column of this name is what cards call a work


# ------------------------------------------------------------------------------------------------- words
def alike(hit):
    """`92% alike`: a hit's score for people."""
    return f"{100 * hit['score']:.0f}% alike"


def alike_details(hit):
    """The numbers behind `alike`, for a tooltip."""
    parts = ", ".join(f"{name} {value:.3f}" for name, value in hit.get("distances", {}).items())
    return f"score {hit['score']:.3f} = 1 - distance" + (f" (distances: {parts})" if parts else "")


def shown_name(hit):
    """What a card calls a work: its title (a `title` metadata column), else its file name, else its id."""
    title = title_of(hit)
    if title:
        return title
    return os.path.basename(hit["file"]) if hit.get("file") else str(hit["id"])


def title_of(hit):
    """The work's title from its metadata, or None."""
    from sevlm.names import emotion_key

    return next((value for name, value in (hit.get("metadata") or {}).items() if value and emotion_key(name) == TITLE_COLUMN), None)


def metadata_line(hit):
    """The work's metadata values but its title, in one line (`Claude Monet, 1906, Room 3`)."""
    title = title_of(hit)
    return ", ".join(str(value) for value in (hit.get("metadata") or {}).values() if value is not None and value != title)


def metadata_html(hit):
    """The work's metadata as a small definition list (the title, shown as the card's name, left out)."""
    title = title_of(hit)
    items = [
        f"<div><dt>{html.escape(str(name))}</dt><dd>{html.escape(str(value))}</dd></div>"
        for name, value in (hit.get("metadata") or {}).items()
        if value is not None and not (title is not None and value == title and str(name).casefold() == TITLE_COLUMN)
    ]
    return f'<dl class="sevlm-meta">{"".join(items)}</dl>' if items else ""


def unused_words_note(hits):
    """`Not used: 'melancholic' (nearest known: melancholy).` for a words search that left words out, else ''."""
    unused = getattr(getattr(hits, "query", None), "unused_words", None)
    if not unused:
        return ""
    return f"Not used (the model's word list gives them no feeling): {describe_unused(unused)}."


# -------------------------------------------------------------------------------------------------- HTML
def jpeg_data_uri(picture, size=None):
    """A PIL image as an inline `data:image/jpeg;base64,...` URI (pages that fetch nothing)."""
    import base64

    picture = picture.convert("RGB")
    if size:
        picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_html(picture, alt):
    if picture is None:
        return '<div class="sevlm-missing">no image</div>'
    return f'<img alt="{html.escape(alt)}" src="{jpeg_data_uri(picture)}">'


def hit_cards_html(hits, pictures, actions=False, liked=(), ranked=True):
    """The hits as HTML cards (styled by `GALLERY_CSS`): thumbnail, rank, how alike (the numbers in a tooltip), name
    (title, file name or id), the work's metadata, predicted emotion with its probability, a bar per emotion, the
    explanation, and for recommendations why. Each card carries `data-id` and `data-rank`. With `actions` (the web
    app), the picture is a button that opens the work (`data-action="open"`) and a like button
    (`data-action="like"`, pressed for the ids in `liked`) follows. `ranked=False` leaves out the rank and how alike
    (a work shown on its own, a painting explained)."""
    cards = []
    for hit, picture in zip(hits, pictures):
        shown = image_html(picture, hit["id"])
        buttons = ""
        if actions:
            pressed = hit["id"] in liked
            shown = f'<button type="button" class="sevlm-open" data-action="open" title="Show it large, with more like it">{shown}</button>'
            buttons = (
                f'<div class="sevlm-actions"><button type="button" class="sevlm-like" data-action="like" aria-pressed="{str(pressed).lower()}">'
                f"{LIKE_LABELS[pressed]}</button></div>"
            )
        because = f'<p class="sevlm-because">{html.escape(hit["because"])}</p>' if hit.get("because") else ""
        bars = "".join(
            f'<div class="sevlm-bar{" sevlm-top" if name == hit["emotion"] else ""}"><span class="sevlm-name">{html.escape(name)}</span>'
            f'<span class="sevlm-track"><span class="sevlm-fill" style="width:{100 * value:.1f}%"></span></span>'
            f'<span class="sevlm-value">{100 * value:.0f}%</span></div>'
            for name, value in hit["scores"].items()
        )
        cards.append(
            f'<figure class="sevlm-hit" data-id="{html.escape(hit["id"])}" data-rank="{hit["rank"]}">{shown}<figcaption>'
            + (f'<div class="sevlm-head"><span>#{hit["rank"]}</span><span class="sevlm-alike" title="{html.escape(alike_details(hit))}">{alike(hit)}</span></div>' if ranked else "")
            + f'<div class="sevlm-id" title="{html.escape(hit["id"])}">{html.escape(shown_name(hit))}</div>{metadata_html(hit)}'
            f'<div class="sevlm-emotion">{html.escape(hit["emotion"])} <span class="sevlm-prob">{100 * hit["scores"][hit["emotion"]]:.0f}%</span></div>'
            f'<div class="sevlm-bars">{bars}</div><p class="sevlm-explanation">because {html.escape(hit["explanation"] or "(no explanation)")}</p>'
            f"{because}{buttons}</figcaption></figure>"
        )
    return f'<div class="sevlm-grid">{"".join(cards)}</div>'


def ranking_html(hits):
    """How the hits are ranked (plain words; the technical detail in a tooltip) and the words a search left out."""
    weights = getattr(hits, "weights", None)
    kind = getattr(getattr(hits, "query", None), "kind", None)
    parts = []
    if weights:
        sentence = ranking_sentence(weights, kind)
        parts.append(f'<p class="sevlm-ranking" title="{html.escape(ranking_details(weights))}">{html.escape(sentence)}</p>')
    for note in [unused_words_note(hits), *getattr(hits, "notes", ())]:
        if note:
            parts.append(f'<p class="sevlm-note">{html.escape(note)}</p>')
    return "".join(parts)


def source_html(source):
    """The work a "works like this one" search started from: `{"name", "picture", "emotion"}`."""
    emotion = f'<div class="sevlm-emotion">{html.escape(source["emotion"])}</div>' if source.get("emotion") else ""
    return (
        f'<figure class="sevlm-hit sevlm-source" data-source="{html.escape(source["name"])}">{image_html(source["picture"], source["name"])}'
        f'<figcaption><div class="sevlm-head"><span>searched from</span></div><div class="sevlm-id" title="{html.escape(source["name"])}">'
        f'{html.escape(os.path.basename(source["name"]) or source["name"])}</div>{emotion}</figcaption></figure>'
    )


def search_source(index, hits, query_image=None, query_name=None):
    """The work searched from, for `id` and `image` searches (None for mixes and words)."""
    query = getattr(hits, "query", None)
    if query is not None and query.source_id is not None:
        row = index.row_of(query.source_id)
        record = index.records([row], ("id", "file", "emotion"))[0]
        name = title_of({"metadata": index.metadata_of(record["id"])}) or record["file"] or record["id"]
        return {"name": name, "picture": index.thumbnail(record["id"]), "emotion": record["emotion"]}
    if query_image is not None:
        return {"name": display_path(query_name or "the image searched with"), "picture": query_image, "emotion": None}
    return None


# ------------------------------------------------------------------------------------------------ galleries
def check_gallery(folder, overwrite=False, index=None):
    """Refuse, before any work, a gallery folder where writing would destroy something: a file, a folder inside
    another tool's output, an index or model folder (`index`: the folder of the index searched, named in the error),
    a user's `index.html` / `contact_sheet.png`, an earlier gallery (without overwrite), or a place that cannot be
    written."""
    folder = Path(folder)
    check_outside_tool_outputs(folder, "--gallery", GALLERY_OWNER)
    check_outside_input_folders(folder, "--gallery", [("--index", index)])
    check_output_folder(folder, GALLERY_OWNER, GALLERY_FILES, overwrite, "--overwrite", "--gallery")
    return folder


def write_gallery(index, hits, folder, title="SEVLM search", query_image=None, query_name=None, overwrite=False):
    """Write `folder/index.html` (self-contained: thumbnails inlined, no external URL) and `folder/contact_sheet.png`
    for search hits: the work searched from (for `id` and `image` searches), how the hits are ranked, and per hit
    its thumbnail, file name, rank, how alike it is, predicted emotion, a bar per emotion and the explanation.

    Both files are written together (`sevlm.io.staged_output`) and recorded as a gallery in the folder; a folder
    holding files of that name that no gallery wrote is refused, an earlier gallery is replaced only with
    `overwrite`. Returns the page's path."""
    folder = Path(folder)
    check_gallery(folder, overwrite, index.folder)
    pictures = [index.thumbnail(hit["id"]) for hit in hits]
    source = search_source(index, hits, query_image, query_name)
    model = f", described by the model {html.escape(display_path(index.config['model']))}" if index.config["model"] else ""
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="sevlm-search gallery">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; background: #fafafa; }}
h1 {{ font-size: 20px; }} .sub {{ color: #666; font-size: 13px; }}
{GALLERY_CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="sub">{len(hits)} work(s) from {html.escape(display_path(index.folder))} ({len(index)} works{model}).</p>
{ranking_html(hits)}{source_html(source) if source else ""}
{hit_cards_html(hits, pictures)}
</body></html>
"""
    with staged_output(folder, GALLERY_OWNER, GALLERY_FILES, overwrite, "--overwrite", "--gallery") as staging:
        (staging / GALLERY_PAGE).write_text(document, encoding="utf-8")
        contact_sheet(hits, pictures, staging / CONTACT_SHEET, source)
    return folder / GALLERY_PAGE


def contact_sheet(hits, pictures, path, source=None, columns=5, cell=(240, 350)):
    """A PNG grid: the work searched from first (when there is one), then per hit its thumbnail, file name, rank and
    how alike it is, emotion with its probability, mini bars and the explanation."""
    import textwrap

    from PIL import Image, ImageDraw

    cells = ([("source", source)] if source else []) + [("hit", (hit, picture)) for hit, picture in zip(hits, pictures)]
    columns = max(1, min(columns, len(cells)))
    rows = max(1, math.ceil(len(cells) / columns))
    width, height = cell
    details = {hit["id"]: metadata_line(hit) for hit in hits}
    height += 18 if any(details.values()) else 0
    sheet = Image.new("RGB", (columns * width, rows * height), "white")
    draw = ImageDraw.Draw(sheet)
    font, bold = sheet_font(13), sheet_font(16, bold=True)

    def paste(picture, left, top):
        if picture is None:
            draw.rectangle((left + 10, top + 10, left + width - 10, top + 160), fill="#eeeeee")
            return
        scale = min((width - 20) / picture.width, 150 / picture.height)  # small thumbnails are enlarged too
        small = picture.convert("RGB").resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
        sheet.paste(small, (left + (width - small.width) // 2, top + 10))

    def name_line(text, left, y, path=True):
        text = (os.path.basename(text) or text) if path else text
        draw.text((left + 10, y), text if len(text) <= 32 else text[:31] + "…", fill="#444444", font=font)

    for number, (kind, content) in enumerate(cells):
        left, top = (number % columns) * width, (number // columns) * height
        if kind == "source":
            draw.rectangle((left + 2, top + 2, left + width - 3, top + height - 3), outline="#3a6ea5", width=3)
            paste(content["picture"], left, top)
            draw.text((left + 10, top + 166), "searched from", fill="#3a6ea5", font=bold)
            name_line(content["name"], left, top + 188)
            continue
        hit, picture = content
        paste(picture, left, top)
        y = top + 166
        name_line(shown_name(hit), left, y, path=title_of(hit) is None)
        y += 18
        if details[hit["id"]]:
            name_line(details[hit["id"]], left, y, path=False)
            y += 18
        draw.text((left + 10, y), f"#{hit['rank']}  {alike(hit)}", fill="#666666", font=font)
        y += 18
        draw.text((left + 10, y), f"{hit['emotion']} {100 * hit['scores'][hit['emotion']]:.0f}%", fill="#222222", font=bold)
        y += 22
        bar_width = (width - 20) / max(1, len(hit["scores"]))
        for position, (name, value) in enumerate(hit["scores"].items()):
            x = left + 10 + position * bar_width
            draw.rectangle((x + 1, y + 40 - 40 * value, x + bar_width - 2, y + 40), fill="#3a6ea5" if name == hit["emotion"] else "#9aa7b5")
        y += 46
        for line in textwrap.wrap(hit["explanation"] or "(no explanation)", width=34, max_lines=4, placeholder=" ..."):
            draw.text((left + 10, y), line, fill="#333333", font=font)
            y += 16
    sheet.save(path, format="PNG")
    return Path(path)


def sheet_font(size, bold=False):
    """DejaVu Sans (shipped with matplotlib, so always there; it has accented Latin, Greek and Cyrillic glyphs) at
    `size` pixels for the contact sheet; PIL's own font only when that cannot be read."""
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        properties = font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
        return ImageFont.truetype(font_manager.findfont(properties, fallback_to_default=True), size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default(size=size)


# ------------------------------------------------------------------------------------------------ hit files
def check_hits_file(path, overwrite=False, index=None):
    """Refuse, before any work, a hits file (`--output`) that would replace a file (without overwrite), a file of
    another tool's output (an index's `index_config.json`), a file in an index or model folder (a model's
    `config.json`, even with overwrite; `index`: the folder of the index searched), a folder, or a place that cannot
    be written. `--output` names a `.jsonl` or `.csv` file (`hits_format`)."""
    check_outside_tool_outputs(path, "--output")
    check_outside_input_folders(path, "--output", [("--index", index)])
    return check_new_file(path, overwrite, "--overwrite", "--output")


HITS_FORMATS = {".jsonl": "jsonl", ".csv": "csv"}


def hits_format(path):
    """`jsonl` or `csv` by the suffix of a hits file (`--output`), None for any other (`.json` too: a hits file is
    JSON Lines, one hit per line, not one JSON document)."""
    return HITS_FORMATS.get(Path(path).suffix.lower())


def works_inside(index, folder):
    """The files of `index`'s works that lie in `folder` or below it (a gallery or other output written among the
    works it is made from)."""
    roots = tuple({os.path.join(os.path.abspath(folder), ""), os.path.join(os.path.realpath(folder), "")})
    found = []
    for batch in index.table.select(["file"]).to_batches(max_chunksize=4096):
        found += [name for name in batch.column(0).to_pylist() if name and os.path.abspath(name).startswith(roots)]
    return found


REASON_COLUMNS = ("because", "closest_liked", "shared_emotions", "avoided_emotions")


def hit_row(hit, emotions):
    """A hit as one flat CSV row: `rank, id, file, score, emotion, explanation, score_<emotion>..., distance_<part>...`,
    then the work's metadata columns and, for recommendations, why (`because`, `closest_liked`, `shared_emotions`,
    `avoided_emotions`; lists joined by `, `). A metadata column whose name is taken by a column before it (by the
    name rule: `Emotion` is `emotion`) gets a `metadata_` prefix, and a number (`metadata_score_2`) when that name is
    taken too: every metadata column is kept."""
    from sevlm.names import emotion_key
    from sevlm.prediction import score_column

    row = {key: hit[key] for key in ("rank", "id", "file", "score", "emotion", "explanation")}
    row.update({score_column(name): hit["scores"][name] for name in emotions})
    row.update({f"distance_{name}": value for name, value in hit["distances"].items()})
    metadata = hit.get("metadata") or {}
    fixed = {emotion_key(name) for name in (*row, *REASON_COLUMNS)}
    taken = fixed | {emotion_key(name) for name in metadata}  # a user's `metadata_score` keeps its name
    for name, value in metadata.items():
        column, number = str(name), 1
        if emotion_key(column) in fixed:
            column = f"metadata_{name}"
            while emotion_key(column) in taken:
                number += 1
                column = f"metadata_{name}_{number}"
            taken.add(emotion_key(column))
        row[column] = value
    for key in REASON_COLUMNS:
        if key in hit:
            row[key] = ", ".join(hit[key]) if isinstance(hit[key], list) else hit[key]
    return row


def write_hits(hits, stream, fmt, emotions):
    """Hits as JSON Lines or CSV (text cells, column names too, that a spreadsheet would run as formulas are written
    as text)."""
    if fmt == "jsonl":
        for hit in hits:
            stream.write(json.dumps(hit, ensure_ascii=False) + "\n")
        return
    empty = {"rank": 0, "id": "", "file": "", "score": 0, "emotion": "", "explanation": "", "scores": dict.fromkeys(emotions, 0), "distances": {}}
    rows = [hit_row(hit, emotions) for hit in hits]
    columns = list(dict.fromkeys(name for row in rows or [hit_row(empty, emotions)] for name in row))
    writer = csv.writer(stream)
    writer.writerow([spreadsheet_safe(name) for name in columns])  # a metadata column may be called "=SUM(A1)"
    writer.writerows([spreadsheet_safe(row.get(name, "")) for name in columns] for row in rows)
