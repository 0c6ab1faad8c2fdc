"""Pictures for people: PNG cards (the image, its emotion with every score as bars, the explanation, optionally the
attention heat map), drawn with matplotlib without a display."""

import os
import textwrap
import warnings

from sevlm.io import replace_file

CARD_SIZE = (1200, 600)  # pixels
CARD_DPI = 100
# Bar colours: ArtEmis's classes by group (positive / negative / other); any other class name gets a colour of
# PALETTE by its index in the model's emotion list, so that a class keeps its colour on every card of a model.
POSITIVE = {"amusement", "awe", "contentment", "excitement"}
NEGATIVE = {"anger", "disgust", "fear", "sadness"}
OTHER = {"something else"}
COLORS = {"positive": "#e0a526", "negative": "#3a6ea5", "other": "#8c8c8c"}
PALETTE = (  # matplotlib's tab20 without its greys, dark shades first
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)  # fmt: skip
HEAT_MAP = "inferno"  # colour map of the attention heat map; its opacity follows the attention
HEAT_MAP_OPACITY = 0.7  # opacity where attention is highest


# --------------------------------------------------------------------------------------------------- cards
def make_card(image, result, target, title=None, asked=False):
    """Write a PNG card (`CARD_SIZE` pixels, see `draw_card`) to `target`, a binary stream or a new file's path (a
    file is written through `sevlm.io.replace_file`)."""
    from matplotlib import rc_context

    if isinstance(target, (str, os.PathLike)):
        with replace_file(target, "wb") as stream:
            make_card(image, result, stream, title, asked)
        return target
    with rc_context(PLAIN_TEXT), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs missing from the font (e.g. CJK file names) are drawn as boxes
        figure = draw_card(image, result, title=title, asked=asked)
        figure.savefig(target, dpi=CARD_DPI, facecolor="white", format="png")
    return target


# Every text on a card is plain text: `$...$` in a file name, class name or explanation is not matplotlib math.
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def draw_card(image, result, title=None, asked=False):
    """A card as a matplotlib `Figure`: the image on the left (with the attention heat map when `result` holds an
    `attention_map`); on the right the emotion and its score, a bar chart of every emotion score (the shown emotion
    highlighted; 2 to about 20 classes fit) and the explanation, wrapped.

    `result` is a pipeline result; `asked=True` labels the emotion as requested rather than predicted.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image = _as_rgb(image)
    emotions = list(result["scores"])
    shown = result["emotion"]
    figure = Figure(figsize=(CARD_SIZE[0] / CARD_DPI, CARD_SIZE[1] / CARD_DPI), dpi=CARD_DPI, facecolor="white")
    FigureCanvasAgg(figure)

    # Layout in figure fractions: image on the left, header / scores / explanation on the right.
    painting = figure.add_axes((0.02, 0.07, 0.44, 0.79))
    painting.imshow(image, interpolation="lanczos" if max(image.size) > 256 else "bicubic")
    painting.set_axis_off()
    if result.get("attention_map") is not None:
        draw_heat_map(painting, result["attention_map"], image.size)
        _text(figure, 0.24, 0.035, "heat map: where the explanation looked", fontsize=9, color="#777777", ha="center")
    if title:
        _text(figure, 0.02, 0.93, _shorten(title, 70), fontsize=10, color="#777777", va="center")

    label = "asked emotion" if asked else "predicted emotion"
    name = _shorten(shown, 32)
    _text(figure, 0.50, 0.93, name, fontsize=min(30, 420 / max(len(name), 1)), fontweight="bold", color=_color(shown, emotions), va="center")
    _text(figure, 0.98, 0.93, f"{label}\nscore {result['score']:.0%}", fontsize=12, color="#555555", ha="right", va="center")
    _draw_scores(figure, emotions, [result["scores"][name] for name in emotions], shown)

    explanation = result["explanation"] or "(no explanation generated)"
    wrapped = "\n".join(textwrap.wrap(f"\u201c{explanation}\u201d", width=54, max_lines=4, placeholder=" \u2026"))
    _text(figure, 0.50, 0.27, f"because\u2026\n{wrapped}", fontsize=14, va="top", ha="left", linespacing=1.4)
    return figure


# Rows of score bars a card draws: at the smallest font (6 points) this many fit in the bars' height.
MAX_CARD_ROWS = int(0.54 * CARD_SIZE[1] / CARD_DPI * 72 / 10)


def _card_rows(emotions, values, shown, limit=MAX_CARD_ROWS):
    """The (names, values, colours) of the card's bars: every class when they fit; else, in class order, the
    highest-scoring classes (the one shown always among them) and a last grey row summing the other classes."""
    colors = [_color(name, emotions) for name in emotions]
    if len(emotions) <= limit:
        return list(emotions), list(values), colors
    ranked = sorted(range(len(emotions)), key=lambda index: -values[index])
    chosen = ranked[: limit - 1]
    if shown in emotions and emotions.index(shown) not in chosen:
        chosen[-1] = emotions.index(shown)
    chosen.sort()
    rest = len(emotions) - len(chosen)
    names = [emotions[index] for index in chosen] + [f"{rest} other classes"]
    kept = [values[index] for index in chosen]
    return names, kept + [max(0.0, float(sum(values)) - float(sum(kept)))], [colors[index] for index in chosen] + ["#999999"]


def _draw_scores(figure, emotions, values, shown):
    """Horizontal bars of the classes' scores; font and bar size shrink with the number of classes so that labels
    never overlap, down to 6 points; beyond MAX_CARD_ROWS classes the highest scores are drawn and the others summed
    in one row (`_card_rows`)."""
    from matplotlib.transforms import blended_transform_factory

    bars = figure.add_axes((0.66, 0.32, 0.28, 0.54))
    emotions, values, colors = _card_rows(list(emotions), list(values), shown)
    count = len(emotions)
    row_points = 0.54 * CARD_SIZE[1] / CARD_DPI * 72 / max(count, 1)  # height of one row, in points
    fontsize = max(6.0, min(11.0, 0.6 * row_points))
    label_chars = int(0.15 * CARD_SIZE[0] / CARD_DPI * 72 / (0.6 * fontsize))  # labels sit in the 0.16 left of the bars
    positions = list(range(count))
    drawn = bars.barh(positions, values, color=colors, height=0.7)
    names_at = blended_transform_factory(bars.transAxes, bars.transData)
    for patch, position, name, value in zip(drawn, positions, emotions, values):
        weight = "bold" if name == shown else "normal"
        patch.set_alpha(1.0 if name == shown else 0.45)
        _text(bars, min(value, 1.0) + 0.015, position, f"{value:.0%}", va="center", fontsize=fontsize, fontweight=weight)
        _text(bars, -0.03, position, _shorten(name, label_chars), va="center", ha="right", fontsize=fontsize, fontweight=weight, transform=names_at)
    bars.set_ylim(count - 0.5, -0.5)  # first class on top
    bars.set_xlim(0, 1.15)
    bars.set_xticks([])
    bars.set_yticks([])
    for side in ("top", "right", "bottom"):
        bars.spines[side].set_visible(False)
    return bars


def draw_heat_map(axes, attention_map, image_size):
    """Lay `attention_map` (rows x columns over the image patch grid, values in [0, 1]) over the image shown in
    `axes` (`image_size` = (width, height) in pixels): coloured and more opaque where attention is high, so that
    the image stays visible where the explanation did not look. The processor resizes the whole image to a
    square (no crop), so the grid spans the whole image."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    values = np.asarray(attention_map, dtype=np.float32)
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"attention_map must be a 2-D grid of finite numbers, got shape {values.shape}.")
    values = values.clip(0, 1)
    peak = float(values.max())
    if peak > 0:
        values = values / peak  # the strongest patch at full strength, whatever the spread
    width, height = image_size
    scale = min(1.0, 512 / max(width, height))  # enough for the card; smooth between patch centres
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    smooth = np.asarray(Image.fromarray(values, mode="F").resize(size, Image.BILINEAR)).clip(0, 1)
    rgba = colormaps[HEAT_MAP](smooth)
    rgba[..., 3] = HEAT_MAP_OPACITY * smooth
    axes.imshow(rgba, extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="bilinear")
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)


def _as_rgb(image):
    """An RGB PIL image from an already-read image (as is) or anything the image loader takes."""
    from PIL import Image

    from processing_sevlm import load_image

    if isinstance(image, Image.Image) and image.mode == "RGB":
        return image
    return load_image(image)


def _text(where, x, y, text, **kwargs):
    """`where.text` as plain text (never parsed as `$math$`)."""
    return where.text(x, y, text, parse_math=False, **kwargs)


def _color(name, emotions=()):
    """ArtEmis's group colour for its class names, else a palette colour by the class's index."""
    if name in POSITIVE:
        return COLORS["positive"]
    if name in NEGATIVE:
        return COLORS["negative"]
    if name in OTHER:
        return COLORS["other"]
    emotions = list(emotions)
    index = emotions.index(name) if name in emotions else 0
    return PALETTE[index % len(PALETTE)]


def _shorten(text, width):
    return text if len(text) <= width else text[: max(width - 1, 1)] + "\u2026"


