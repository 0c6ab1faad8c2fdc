"""Predicting for image files, the work of `sevlm-predict`: the model folder's `art-emotion` pipeline over batches
of images (each file read once, one bad image costing only itself), rows for JSON Lines or CSV, and cards."""

import csv
import json
import os
import sys
import warnings
from pathlib import Path

from sevlm.io import display_path, make_temporary_file, spreadsheet_safe
from sevlm.loading import check_model_folder, loading_progress, pick_device
from sevlm.render import make_card

TASK = "art-emotion"


def output_format(path):
    """`jsonl` or `csv` by a file name's suffix (None for any other)."""
    return {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(Path(path).suffix.lower())


# ------------------------------------------------------------------------------------------------- inputs
class ImageTooLarge(ValueError):
    """An image above the decompression-bomb limit (`--max_image_pixels`)."""


def read_image(path):
    """The image at `path` as an RGB PIL image (`image_loader`); an error naming the file when it cannot be used."""
    from PIL import Image

    from processing_sevlm import load_image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # below the limit: fine, read it
            return load_image(str(path))
    except Exception as error:
        bomb = error if isinstance(error, Image.DecompressionBombError) else error.__cause__
        if isinstance(bomb, Image.DecompressionBombError):
            raise ImageTooLarge(
                f"{display_path(path)} is larger than the decompression-bomb limit ({bomb}); if you trust the file, "
                "pass --max_image_pixels with at least its width x height."
            ) from error
        raise


# -------------------------------------------------------------------------------------------------- model
def load_pipeline(model_name_or_path, device=None, progress=True):
    """The model folder's own `art-emotion` pipeline (its code, `trust_remote_code`), on `device`;
    `progress=False` hides transformers' loading bar."""
    from transformers import pipeline

    check_model_folder(model_name_or_path)
    with loading_progress(progress):
        return pipeline(TASK, model=model_name_or_path, trust_remote_code=True, device=pick_device(device))


# ---------------------------------------------------------------------------------------------- predicting
def predict(
    pipe, paths, batch_size=8, emotion=None, generation=None, cards=None, report=None, progress=True, attention_maps=False
):
    """Yield one row per readable image: `{"file", "emotion", "score", "scores", "explanation"[, "card"]
    [, "attention_map"]}`; `file` and `card` are printable text (`display_path`), `card` is None when that card
    failed.

    Unreadable files (and images the model fails on) go to `report(path, message)` and are skipped. Each file is
    read once; the same image feeds the model and the card. `cards`: a `sevlm.io.OutputFiles` checked beforehand for
    the names of `card_names(paths)`. `attention_maps=True` asks the pipeline for `attention_map` (drawn on the
    cards).
    """
    from tqdm.auto import tqdm

    report = report or (lambda path, message: None)
    generation = dict(generation or {})
    if emotion is not None:
        generation["emotion"] = emotion
    if attention_maps:
        generation["return_attention_map"] = True
    names = card_names(paths) if cards is not None else {}
    bar = tqdm(total=len(paths), unit="image", desc="Predicting", disable=not progress, file=sys.stderr)
    try:
        for start in range(0, len(paths), batch_size):
            batch = []
            for path in paths[start : start + batch_size]:
                try:
                    batch.append((path, read_image(path)))
                except Exception as error:  # corrupt, truncated, too large (a decompression bomb), ...
                    reason = error if isinstance(error, ImageTooLarge) else error.__cause__ or error
                    report(path, f"cannot be read ({reason})")
            for path, image, result in run_batch(lambda images: pipe(images, batch_size=len(images), **generation), batch, report):
                row = {"file": display_path(path), **result}
                if cards is not None:
                    row["card"] = None
                    try:
                        with cards.open(names[path], "wb") as stream:
                            make_card(image, result, stream, title=display_path(Path(path).name), asked=emotion is not None)
                        row["card"] = display_path(cards.path(names[path]))
                    except Exception as error:
                        message = f"card for {display_path(path)} not written ({error}); the prediction is kept"
                        tqdm.write(display_path(message), file=sys.stderr)
                yield row
            bar.update(len(paths[start : start + batch_size]))
    finally:
        bar.close()


def run_batch(run, batch, report):
    """`run(inputs)` (one result per input) for a batch of `(key, input)` pairs, as `(key, input, result)`; if the
    batch fails, item by item, so that one bad input costs only itself (`report(key, message)`). Shared by
    sevlm-predict and the index."""
    if not batch:
        return []
    try:
        results = run([value for _, value in batch])
        return [(key, value, result) for (key, value), result in zip(batch, results)]
    except Exception as error:
        if len(batch) == 1:
            report(batch[0][0], f"prediction failed: {error}")
            return []
    outputs = []
    for item in batch:
        outputs.extend(run_batch(run, [item], report))
    return outputs


def card_names(paths):
    """`{path: card file name}`: `painting.jpg` -> `painting.png`, numbered (`painting-2.png`) when two images share a
    stem. Names are the printable form of the image's (`display_path`), so that the `card` written in a row is the
    card's real file name, also for image names that are not valid UTF-8."""
    names, used = {}, set()
    for path in paths:
        stem = display_path(Path(path).stem) or "image"
        name, number = f"{stem}.png", 2
        while name in used:
            name, number = f"{stem}-{number}.png", number + 1
        used.add(name)
        names[path] = name
    return names


# --------------------------------------------------------------------------------------------------- output
class RowWriter:
    """Streams rows as JSON lines (file or stdout) or CSV, flushing each row.

    A file is written beside its target (`.NAME.*.partial`) and moved into place by `close()` when it holds at least
    one row, also after an interruption (the rows written so far are kept); with no row an existing file stays
    untouched. (Whether an existing file may be replaced at all is `sevlm.io.check_new_file`'s to say, before any
    work.) CSV columns are fixed before the first row: `file, emotion, score, explanation`, `card` when `cards` is set
    (empty when that card failed), one `score_<emotion>` column per class; text cells that a spreadsheet would run
    as a formula are written as text (`spreadsheet_safe`). Rows are written as given (`file` and `card` already
    printable, see `predict`).
    """

    def __init__(self, path, emotions, cards=False):
        self.path = Path(path) if path else None
        self.format = output_format(path) if path else "jsonl"
        self.columns = ["file", "emotion", "score", "explanation"] + (["card"] if cards else [])
        self.columns += [score_column(name) for name in emotions]
        self.rows = 0
        self.temporary = None
        if self.path is None:
            self.handle = sys.stdout
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, self.temporary = make_temporary_file(self.path, suffix=".partial")
            self.handle = os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        self.csv = None
        if self.format == "csv":
            self.csv = csv.DictWriter(self.handle, fieldnames=self.columns)
            self.csv.writeheader()

    def write(self, row):
        if self.csv is None:
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            flat = {key: spreadsheet_safe(value) for key, value in row.items() if key in self.columns}
            flat.update({score_column(name): value for name, value in row["scores"].items()})
            self.csv.writerow(flat)
        self.handle.flush()
        self.rows += 1

    def close(self):
        """Move the file into place if it holds a row, else drop it. Returns "written", "replaced" (an existing file
        was replaced), "unchanged" (no row; an existing file was left as it was), "not written" (no row, no old
        file) or None for stdout."""
        if self.path is None:
            self.handle.flush()
            return None
        self.handle.close()
        existed = self.path.exists()
        if not self.rows:
            self.temporary.unlink(missing_ok=True)
            return "unchanged" if existed else "not written"
        os.replace(self.temporary, self.path)
        return "replaced" if existed else "written"


def score_column(emotion):
    """CSV column of an emotion's score: `score_something_else`."""
    return "score_" + emotion.replace(" ", "_")


