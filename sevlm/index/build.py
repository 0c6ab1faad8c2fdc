"""Building and extending an emotion index: what to index, one writer at a time, unfinished work that belongs to the
command that started it, predicting at bounded memory, and the commit.

- Items: image files (id = the file's absolute path; its size and modification time are kept, so that a file that
  changed since it was indexed is predicted again) or the rows of a corpus split (id = `painting_id`).
- One writer: the build holds `INDEX/.lock` (an `fcntl` lock, released by the system when the process ends: the
  lock of a process that died is taken over, that of a running one is an error naming it).
- Unfinished work: finished batches are kept in `INDEX/.pending/` with the plan of the command that made them (the
  model's fingerprint, generation settings, thumbnail size, rebuild or add). Only a command with the same plan
  continues them; another is told what differs (or drops them with `discard_pending`, or starts afresh with
  `overwrite`).
- Memory: each image is decoded at a bounded size (`processing_sevlm.load_image`), turned into the model's input
  and a thumbnail at once, and dropped: a batch holds model inputs, never a batch of decoded originals.
- Data-parallel: under `torchrun` / `accelerate launch` each process predicts every n-th batch into `.pending/`,
  and the main process merges them when all are done.
- Metadata (`sevlm.index.metadata`): a CSV's rows and a corpus's columns are matched to the works at the commit and
  stored with them; an addition keeps the metadata of the works already there (new works need rows of their own:
  the build report names those without), and `attach_metadata` gives an index new metadata without predicting.
"""

import hashlib
import io
import json
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sevlm import DEMO_MODEL
from sevlm.images import IMAGE_EXTENSIONS, find_images
from sevlm.index import faiss_indexes
from sevlm.index.faiss_indexes import empty_faiss_index, faiss_type, index_factory, tune_faiss_index, write_faiss
from sevlm.index.metadata import (
    ID_COLUMNS,
    METADATA_FILE,
    corpus_metadata,
    merge_metadata,
    read_metadata,
    read_metadata_csv,
    write_metadata,
)
from sevlm.index.similarity import COMPONENTS, TECHNICAL_PARTS, component_vectors, text_vad_profile
from sevlm.index.store import (
    CONFIG_NAME,
    FAISS_DIR,
    INDEX_FORMAT,
    INDEX_VERSION,
    LOCK_NAME,
    OWNER,
    PARTS_DIR,
    PENDING_DIR,
    THUMBNAIL_SIZE,
    VAD_TABLE_FILE,
    EmotionIndex,
    index_entries,
    index_features,
    load_parts,
    matrix,
    quiet_datasets,
    read_config,
    take_rows,
)
from sevlm.io import (
    OUTPUT_RECORD,
    check_writable,
    display_path,
    json_safe,
    listed,
    normal_modes,
    read_record,
    replace_file,
    write_json_atomic,
    write_record,
)

PENDING_NAME = "pending.json"
PLAN_KEYS = ("model_fingerprint", "generate_kwargs", "thumbnail_size", "replace")
VECTOR_COLUMNS = {"emotion": "scores", "visual": "image_embeds", "vad": "vad"}


# ------------------------------------------------------------------------------------------------- sources
@dataclass
class Item:
    """One image to index: its id, its file (None for dataset rows) with its size and modification time, and where
    to read it from."""

    id: str
    file: str = None
    path: Path = None
    dataset: object = None
    row: int = None
    size: int = None
    mtime_ns: int = None

    @property
    def state(self):
        return (self.size, self.mtime_ns)


def file_items(inputs, extensions=IMAGE_EXTENSIONS, outputs=None):
    """`(items, problems, not_images)` for image files, folders and glob patterns (as in sevlm-predict): id = file =
    the absolute path; `not_images`: files in the folders that are not images by their extension. SEVLM's outputs in
    the folders (galleries, reports, Spaces, indexes: `sevlm.images.walk_files`) are not works; when `outputs` is a
    list, what was skipped so is appended to it."""
    not_images = []
    paths, problems = find_images(inputs, extensions, skipped=not_images, outputs=outputs)
    items = []
    for path in paths:
        name = display_path(os.path.abspath(path))
        try:
            stat = os.stat(path)
        except OSError as error:
            problems.append((path, f"cannot be read ({error.strerror})"))
            continue
        items.append(Item(id=name, file=name, path=Path(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns))
    return items, problems, not_images


def load_split(dataset_path=None, split=None, dataset=None):
    """A corpus split: `dataset`, or `datasets.load_from_disk(dataset_path)[split]`; errors say what to pass."""
    import datasets

    if dataset is None:
        if not dataset_path:
            raise ValueError("Pass dataset_path (a folder written by save_to_disk) or dataset.")
        if not os.path.isdir(dataset_path):
            raise FileNotFoundError(f"--dataset_path {dataset_path}: no such folder. Prepare a corpus first (sevlm-prepare or sevlm-train for the demo).")
        from sevlm.data.schema import read_saved

        loaded = read_saved(dataset_path, f"--dataset_path {display_path(dataset_path)}")
        if isinstance(loaded, datasets.DatasetDict):
            if split is None or split not in loaded:
                raise ValueError(f"--split {split!r}: {dataset_path} has the splits {sorted(loaded)}; pick one with --split.")
            dataset = loaded[split]
        else:
            dataset = loaded
    return dataset


def dataset_items(dataset_path=None, split=None, dataset=None, id_column="painting_id"):
    """Items for the rows of a prepared corpus split (`datasets.load_from_disk(dataset_path)[split]`, or a
    `datasets.Dataset`): id = the row's `id_column`, images read from its `image` column."""
    from datasets import Image

    dataset = load_split(dataset_path, split, dataset)
    for column in (id_column, "image"):
        if column not in dataset.column_names:
            raise ValueError(f"The dataset has the columns {dataset.column_names}, not {column!r}; index a prepared corpus (painting_id, image) or pass --id_column.")
    dataset = dataset.select_columns([id_column, "image"]).cast_column("image", Image(decode=False))
    ids = [str(value) for value in dataset.select_columns([id_column]).with_format(None)[:][id_column]]
    if len(set(ids)) != len(ids):
        counts = {}
        for value in ids:
            counts[value] = counts.get(value, 0) + 1
        raise ValueError(f"The dataset's {id_column!r} values must be unique; repeated: {sorted(v for v, n in counts.items() if n > 1)[:5]}.")
    return [Item(id=value, dataset=dataset, row=row) for row, value in enumerate(ids)], []


def read_item_image(item):
    """The item's image as an RGB PIL image, decoded at a bounded size (`processing_sevlm.load_image`, the project's
    one image loader)."""
    from processing_sevlm import load_image

    if item.dataset is None:
        return load_image(item.path)
    value = item.dataset[item.row]["image"]
    if value.get("bytes") is not None:
        return load_image(value["bytes"])
    if value.get("path"):
        return load_image(value["path"])
    raise ValueError(f"row {item.row} ({item.id}) has no image")


def thumbnail_bytes(image, size):
    """A JPEG thumbnail (longest side `size` pixels) of an RGB PIL image."""
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((size, size))
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------- the model
def model_fingerprint(model):
    """sha256 over the model's state dict (names, dtypes, shapes, bytes): two models give the same fingerprint
    only when they compute the same thing. Recorded in the index so that an index is never extended or queried
    by image with another model's numbers unawares."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def effective_generation(model, generate_kwargs):
    """The `generate()` options that differ from the model's own generation config: `--max_new_tokens 25` on a
    model whose default is 25 is no different setting."""
    config = model.generation_config
    return json_safe({key: value for key, value in dict(generate_kwargs or {}).items() if getattr(config, key, None) != value})


def predict_rows(model, processor, pixel_values, generate_kwargs=None, compile=False):
    """`predict_batch` results (with `image_embeds`) for a list of `[1, 3, H, W]` model inputs, by the model's own
    predict function (`sevlm.loading.predict_function`); `compile`: compiled decoding (the same tokens)."""
    import torch

    from sevlm.loading import predict_function

    with torch.inference_mode():
        return predict_function(model)(
            model, processor, pixel_values=torch.cat(pixel_values), return_image_embeds=True,
            generate_kwargs=dict(generate_kwargs or {}), compile=compile,
        )  # fmt: skip


def distributed_state(device=None):
    """accelerate's `PartialState` for this process. Under `torchrun` / `accelerate launch` on CPUs (no CUDA, or
    `device="cpu"`) it must be created with `cpu=True` to join the gloo process group; created first, it is the
    state `sevlm.loading.pick_device` then finds."""
    import torch
    from accelerate import PartialState

    cpu = not torch.cuda.is_available() or (device is not None and torch.device(device).type == "cpu")
    return PartialState(cpu=cpu)


# ----------------------------------------------------------------------------------------- one writer only
class IndexBusyError(RuntimeError):
    """Another build holds the index folder's lock."""


class IndexLock:
    """The one-writer lock of an index folder: an `fcntl` lock on `INDEX/.lock`, which names its holder (pid, host,
    start). The system releases it when the holder ends, however it ends, so the lock of a process that died is
    simply taken over; a running holder makes `acquire` raise `IndexBusyError` naming it."""

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self.descriptor = None

    def acquire(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask applies, as to open()
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(descriptor)
            os.close(descriptor)
            raise IndexBusyError(
                f"{display_path(self.path.parent)} is being written by another build ({holder}). Two builds into one "
                "index would lose each other's images: wait until it has finished, then run this command again (or "
                "build into another --output_dir)."
            ) from None
        os.ftruncate(descriptor, 0)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.pwrite(descriptor, (json.dumps(holder) + "\n").encode(), 0)
        self.descriptor = descriptor
        return self

    def release(self):
        import fcntl

        if self.descriptor is not None:
            os.ftruncate(self.descriptor, 0)
            fcntl.flock(self.descriptor, fcntl.LOCK_UN)
            os.close(self.descriptor)
            self.descriptor = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(descriptor):
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0).decode("utf-8"))
        return f"process {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet said which"


# ------------------------------------------------------------------------------------------ the target folder
def read_existing(folder, overwrite):
    """The existing index's config; a damaged one is an error, unless `overwrite` (which replaces it anyway)."""
    try:
        return read_config(folder)
    except ValueError:
        if overwrite:
            return None
        raise


def check_target(folder, existing, plan, overwrite):
    """Refuse, before any work, an output folder that holds something else, or an index of another model or other
    generation settings (without overwrite)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--output_dir {display_path(folder)} is a file, not a folder; choose another path.")
    if existing is None:
        if folder.is_dir():
            ours = index_entries(folder) | {OUTPUT_RECORD}
            if (folder / CONFIG_NAME).is_file():  # an index of another version, or a damaged one (with overwrite)
                ours |= {PARTS_DIR, FAISS_DIR} | {name for name in os.listdir(folder) if re.fullmatch(r"vad-\d+", name) or METADATA_FILE.fullmatch(name)}
            others = sorted(name for name in os.listdir(folder) if name not in ours)
            if others:
                raise FileExistsError(
                    f"--output_dir {display_path(folder)} is not empty and holds no emotion index ({listed(others)}); "
                    "refusing to write into it. Choose a new or empty folder."
                )
        return
    if overwrite:
        return
    if existing["model_fingerprint"] != plan["model_fingerprint"]:
        other = "emotions" if existing["emotions"] != plan["emotions"] else "weights"
        raise ValueError(
            f"The index in {display_path(folder)} was built with model {existing['model']}, which has other {other} than "
            f"{plan['model']}; adding images computed by another model would mix incomparable results. Pass "
            "--overwrite (overwrite=True) to rebuild it with this model (the old index stays until the new one is "
            "complete), or choose another --output_dir."
        )
    if existing.get("generate_kwargs", {}) != plan["generate_kwargs"]:
        raise ValueError(
            f"The explanations in {display_path(folder)} were generated with {describe_generation(existing.get('generate_kwargs'))}; "
            f"this command asks for {describe_generation(plan['generate_kwargs'])}. Adding them would mix explanations "
            "of two kinds: give the index's generation flags, or pass --overwrite to rebuild it with the new ones."
        )


def describe_generation(settings):
    if not settings:
        return "the model's default generation settings"
    return "generation settings " + " ".join(f"--{key} {value}" for key, value in sorted(settings.items()))


# ------------------------------------------------------------------------------------------ unfinished work
def shard_files(folder):
    return sorted((Path(folder) / PENDING_DIR).glob("*.parquet"))


def open_pending(folder, plan, overwrite=False, discard=False):
    """Create `.pending/` for this build's `plan`, or continue the unfinished work there when it was started with the
    same plan. Work of another plan is an error naming the difference, unless `discard` (drop it) or `overwrite`
    (a rebuild starts afresh). Returns `(pending, notes)`: the plan as recorded, and lines for the user."""
    pending_dir = Path(folder) / PENDING_DIR
    path = pending_dir / PENDING_NAME
    notes = []
    if pending_dir.exists():
        batches = len(shard_files(folder))
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            differences = [] if all(key in old for key in PLAN_KEYS) else ["its plan is incomplete"]
        except (OSError, ValueError):
            old, differences = {}, [f"its {PENDING_NAME} is missing or damaged"]
        differences = differences or plan_differences(old, plan)
        if not differences and not discard:
            notes.append(f"Resuming the unfinished build in {display_path(pending_dir)} ({batches} batch file(s) done).")
            return old, notes
        if not (discard or overwrite or not batches):
            finish = " with --overwrite" if old.get("replace") else ""
            raise ValueError(
                f"{display_path(pending_dir)} holds {batches} finished batch(es) of another build, started "
                f"{old.get('started', 'earlier')}, which differs from this one: {'; '.join(differences)}. Run that command "
                f"again{finish} to finish it, or pass --discard_pending to drop its batches (or --overwrite to rebuild the "
                "index from scratch)."
            )
        shutil.rmtree(pending_dir)
        if batches:
            notes.append(f"Dropped the unfinished build in {display_path(pending_dir)} ({batches} batch file(s)).")
    pending_dir.mkdir(parents=True)
    pending = {**plan, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json_atomic(path, pending)
    return pending, notes


def plan_differences(old, new):
    """What differs between the plans of two builds, in words."""
    differences = []
    if old.get("model_fingerprint") != new["model_fingerprint"]:
        differences.append(f"it used model {old.get('model')} (other weights than {new['model']})")
    if old.get("generate_kwargs") != new["generate_kwargs"]:
        differences.append(f"it used {describe_generation(old.get('generate_kwargs'))}, this one {describe_generation(new['generate_kwargs'])}")
    if old.get("thumbnail_size") != new["thumbnail_size"]:
        differences.append(f"it used --thumbnail_size {old.get('thumbnail_size')}, this one {new['thumbnail_size']}")
    if old.get("replace") != new["replace"]:
        kind = {True: "a rebuild (--overwrite)", False: "an addition to the index"}
        differences.append(f"it was {kind[bool(old.get('replace'))]}, this one is {kind[new['replace']]}")
    return differences


def pending_states(folder):
    """`{id: (file size, modification time)}` of the rows in `.pending/` (the newest batch of an id wins)."""
    import pyarrow.parquet as pq

    states = {}
    for path in shard_files(folder):
        table = pq.read_table(path, columns=["id", "file_size", "file_mtime_ns"])
        for item_id, size, mtime in zip(*(table.column(name).to_pylist() for name in ("id", "file_size", "file_mtime_ns"))):
            states[item_id] = (size, mtime)
    return states


def indexed_states(folder, config):
    """`{id: (file size, modification time)}` of the index's rows."""
    table = load_parts(folder, config["parts"]).data.table.select(["id", "file_size", "file_mtime_ns"])
    return {item_id: (size, mtime) for item_id, size, mtime in zip(*(table.column(name).to_pylist() for name in table.column_names))}


# ------------------------------------------------------------------------------------------------ predicting
def predict_into_pending(folder, batches, model, processor, generate_kwargs, thumbnail_size, report, progress, compile=False):
    """Predict batches and write each finished batch as a Parquet file in `.pending/`. Returns the failed ids.

    Each image is decoded (at a bounded size), turned into the model's input and a thumbnail, and dropped before the
    next one is read: a batch costs its model inputs, not its decoded originals."""
    from tqdm.auto import tqdm

    from sevlm.prediction import run_batch

    failed = []

    def fail(item, message):
        failed.append(item.id)
        report(item.id, message)

    emotions = list(model.config.emotions)
    vad_table = model.vad_table.detach().float().cpu().numpy()
    bar = tqdm(total=sum(map(len, batches)), unit="image", desc="Indexing", disable=not progress, file=sys.stderr)
    try:
        for number, batch in enumerate(batches):
            inputs, thumbnails = [], {}
            for item in batch:
                try:
                    image = read_item_image(item)
                    inputs.append((item, processor.preprocess_images([image])))
                    thumbnails[item.id] = thumbnail_bytes(image, thumbnail_size) if thumbnail_size else None
                    del image
                except Exception as error:  # corrupt, truncated, not an image, missing, too large
                    fail(item, f"cannot be read ({error.__cause__ or error})")
            outcomes = run_batch(lambda values: predict_rows(model, processor, values, generate_kwargs, compile), inputs, fail)
            rows = [_row(item, result, emotions, processor.tokenizer, vad_table, thumbnails[item.id]) for item, _, result in outcomes]
            if rows:
                write_shard(folder, rows, emotions, len(rows[0]["image_embeds"]), number)
            bar.update(len(batch))
    finally:
        bar.close()
    return failed


def _row(item, result, emotions, tokenizer, vad_table, thumbnail):
    profile = text_vad_profile(result["explanation"], tokenizer, vad_table)
    embeds = result["image_embeds"]
    return {
        "id": item.id,
        "file": item.file,
        "file_size": item.size,
        "file_mtime_ns": item.mtime_ns,
        "emotion": result["emotion"],
        "score": float(result["score"]),
        "scores": [float(result["scores"][name]) for name in emotions],
        "explanation": result["explanation"],
        "vad": [float("nan")] * 3 if profile is None else [float(value) for value in profile],
        "image_embeds": (embeds.detach().float().cpu().numpy() if hasattr(embeds, "detach") else np.asarray(embeds, np.float32)).tolist(),
        "thumbnail": None if thumbnail is None else {"bytes": thumbnail, "path": None},
    }


def write_shard(folder, rows, emotions, embedding_dim, number):
    """One finished batch as `.pending/<time>-r<rank>-<n>.parquet`, written whole or not at all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = index_features(emotions, embedding_dim).arrow_schema
    table = pa.Table.from_pylist(rows, schema=schema)
    rank = int(os.environ.get("RANK", 0))
    path = Path(folder) / PENDING_DIR / f"{time.time_ns():020d}-r{rank:03d}-{number:06d}.parquet"
    with replace_file(path, "wb") as stream:
        pq.write_table(table, stream)
    return path


# ---------------------------------------------------------------------------------------------------- commit
def commit(folder, existing, pending, vad_source, order, replaced=(), progress=False, metadata=None):
    """Merge `.pending/` into the index: a new part (rows whose id the index holds replace the old ones: their parts
    are rewritten without them, as are the rows of `replaced` ids), FAISS files, the works' metadata (the earlier
    index's, with the `metadata` sources, a list of `MetadataSource`, over it), then `index_config.json` (the commit
    point); then remove what the new config no longer names. `vad_source`: (tokenizer, vad_table) of the model,
    saved for words queries. Returns the new config."""
    import datasets
    import pyarrow.parquet as pq

    folder = Path(folder)
    replace = pending["replace"] or existing is None
    base = None if replace else existing
    shards = shard_files(folder)
    emotions = list(pending["emotions"])
    generation = (existing or {}).get("generation", 0) + 1
    new_ids = set()
    for path in shards:
        new_ids.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    dropped = (set(replaced) | new_ids) if base is not None else set()

    parts, rewritten = [], 0
    for name in [] if base is None else base["parts"]:
        kept = rewrite_part(folder, name, dropped, f"part-{generation:05d}-{len(parts):03d}") if dropped else name
        rewritten += kept != name
        if kept is not None:
            parts.append(kept)
    if not shards and not rewritten:
        if base is not None:
            shutil.rmtree(folder / PENDING_DIR, ignore_errors=True)
            return commit_metadata(folder, base, metadata) if metadata else base
        raise RuntimeError(f"No image could be indexed into {display_path(folder)}: every input was unreadable or failed (see the messages above).")

    embedding_dim = pq.read_schema(shards[0]).field("image_embeds").type.list_size if shards else base["embedding_dim"]
    if base is not None and base["embedding_dim"] != embedding_dim:
        raise ValueError(f"New embeddings are {embedding_dim} wide, the index holds {base['embedding_dim']}: the model changed; rebuild with --overwrite.")
    features = index_features(emotions, embedding_dim)
    if shards:
        part = f"part-{generation:05d}"
        merged = folder / PENDING_DIR / f"merged-{generation:05d}.arrow"
        merge_shards(shards, order, features.arrow_schema, merged)
        shutil.rmtree(folder / PARTS_DIR / part, ignore_errors=True)  # left by a commit that stopped half-way
        with quiet_datasets():
            datasets.Dataset.from_file(str(merged), info=datasets.DatasetInfo(features=features)).save_to_disk(str(folder / PARTS_DIR / part))
        parts.append(part)
    if not parts:
        raise RuntimeError(f"Nothing is left to index in {display_path(folder)}: every indexed image changed and none could be predicted again.")
    count = len(load_parts(folder, parts))

    faiss_files, faiss_types = {}, {}
    (folder / FAISS_DIR).mkdir(parents=True, exist_ok=True)
    extend = base if not rewritten else None  # rows moved: the FAISS indexes are rebuilt over every row
    for component in COMPONENTS:
        faiss_files[component] = f"{component}-{generation:05d}.faiss"
        index = updated_faiss_index(folder, extend, parts, component, count, embedding_dim, len(emotions))
        faiss_types[component] = faiss_type(index)
        write_faiss(index, folder / FAISS_DIR / faiss_files[component])
        del index

    if base is None:
        vad_dir = f"vad-{generation:05d}"
        write_vad_lookup(folder / vad_dir, *vad_source)
    else:
        vad_dir = base["vad_dir"]
    ids = load_parts(folder, parts).data.table.column("id").to_pylist()
    metadata_entry = stored_metadata(folder, existing, metadata, ids, generation)
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    config = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        **{key: pending[key] for key in ("model", "model_fingerprint", "emotions")},
        "embedding_dim": embedding_dim,
        "num_items": count,
        "generation": generation,
        "parts": parts,
        "faiss": faiss_files,
        "faiss_types": faiss_types,
        "approximate_from": {"low_dim": faiss_indexes.APPROXIMATE_FROM_LOW_DIM, "other": faiss_indexes.APPROXIMATE_FROM},
        "vad_dir": vad_dir,
        "similarity": dict(TECHNICAL_PARTS),
        "generate_kwargs": pending["generate_kwargs"],
        "thumbnail_size": pending["thumbnail_size"],
        "created": now if base is None else base["created"],
        "updated": now,
    }
    if metadata_entry is not None:
        config["metadata"] = metadata_entry
    record_index_entries(folder, vad_dir)
    write_json_atomic(folder / CONFIG_NAME, config)
    remove_unreferenced(folder, config)
    return config


def stored_metadata(folder, existing, sources, ids, generation):
    """The `metadata` entry of the new config: with `sources`, a new `metadata-NNNNN.parquet` merging them over the
    `existing` index's metadata for the works `ids`; without, the existing entry (or None)."""
    entry = (existing or {}).get("metadata")
    if not sources:
        return entry
    previous = read_metadata(Path(folder) / entry["file"], entry["columns"]) if entry else None
    table, columns, _ = merge_metadata(previous, sources, ids)
    if table is None:
        return None
    name = f"metadata-{generation:05d}.parquet"
    write_metadata(Path(folder) / name, table)
    return {"file": name, "columns": columns, "sources": [source.source for source in sources]}


def commit_metadata(folder, config, sources):
    """Give a committed index new metadata (`sources`: `MetadataSource`s) without touching its works: a new metadata
    file and config (the commit point), then the old file goes."""
    folder = Path(folder)
    ids = load_parts(folder, config["parts"]).data.table.column("id").to_pylist()
    generation = config["generation"] + 1
    entry = stored_metadata(folder, config, sources, ids, generation)
    updated = {key: value for key, value in config.items() if key != "metadata"}
    updated.update(generation=generation, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if entry is not None:
        updated["metadata"] = entry
    record_index_entries(folder, config["vad_dir"])
    write_json_atomic(folder / CONFIG_NAME, updated)
    for path in folder.glob("metadata-*.parquet"):
        if METADATA_FILE.fullmatch(path.name) and path.name != (entry or {}).get("file"):
            path.unlink(missing_ok=True)
    record_index_entries(folder, config["vad_dir"])
    return updated


def attach_metadata(folder, metadata, id_column=None):
    """Give the index in `folder` the metadata of a CSV file (`metadata`: its path, matched by `id_column`; or a
    `MetadataSource`), over the metadata it holds, without predicting anything. Holds the index's lock; an
    unfinished build in `.pending/` is left as it is. Returns the index, with `build_report["metadata"]`."""
    folder = Path(folder)
    missing = (
        f"{display_path(folder)} holds no emotion index to attach --metadata to; build one first (sevlm-index IMAGES "
        f"--output_dir {display_path(folder)} --metadata ...)."
    )
    if read_config(folder) is None:  # checked before the lock: a wrong folder is left as it was (no .lock, not made)
        raise FileNotFoundError(missing)
    source = read_metadata_csv(metadata, id_column) if isinstance(metadata, (str, os.PathLike)) else metadata
    with IndexLock(folder):
        config = read_config(folder)
        if config is None:
            raise FileNotFoundError(missing)
        commit_metadata(folder, config, [source])
    index = EmotionIndex.load(folder)
    index.build_report = {"metadata": metadata_report(index, [source])}
    return index


def metadata_report(index, sources):
    """What a build did with metadata: `{"columns", "sources": [each source's report], "without": [ids of works with
    no metadata]}` (None when the index holds none and none was given)."""
    if index.metadata is None and not sources:
        return None
    without = [] if index.metadata is None else [record["id"] for record in index.records(index.metadata.without(), ("id",))]
    if index.metadata is None:
        without = [record["id"] for record in index.records(np.arange(len(index)), ("id",))]
    return {"columns": index.metadata_columns, "sources": [source.report for source in sources if source.report], "without": without}


def record_index_entries(folder, vad_dir=None):
    """Record the index's entries in the folder's output record (`sevlm.io`): no other command may write over them.
    Entries of other owners stay; names of this index's that are gone are dropped."""
    record = read_record(folder)
    entries = {name: owner for name, owner in record.items() if owner != OWNER}
    names = [CONFIG_NAME, PARTS_DIR, FAISS_DIR, PENDING_DIR, LOCK_NAME]
    if Path(folder).is_dir():
        names += sorted(name for name in os.listdir(folder) if METADATA_FILE.fullmatch(name))
    names += [name for name, owner in record.items() if owner == OWNER and name.startswith("vad-") and (Path(folder) / name).exists()]
    entries.update(dict.fromkeys(names + ([vad_dir] if vad_dir else []), OWNER))
    write_record(folder, entries)


def rewrite_part(folder, name, dropped, new_name):
    """`name`, or a copy of the part without the rows whose id is in `dropped` (saved as `new_name`, streamed a batch
    at a time), or None when no row is left."""
    import datasets
    import pyarrow as pa
    import pyarrow.compute as pc

    table = load_parts(folder, [name]).data.table
    keep = pc.invert(pc.is_in(table.column("id"), value_set=pa.array(sorted(dropped), type=pa.string())))
    kept = pc.sum(keep).as_py() or 0
    if kept == table.num_rows:
        return name
    if kept == 0:
        return None
    target = Path(folder) / PENDING_DIR / f"{new_name}.arrow"
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        start = 0
        for batch in table.to_batches(max_chunksize=65536):
            writer.write_batch(batch.filter(keep.slice(start, batch.num_rows)))
            start += batch.num_rows
    features = datasets.Features.from_arrow_schema(table.schema)
    shutil.rmtree(Path(folder) / PARTS_DIR / new_name, ignore_errors=True)
    with quiet_datasets():
        datasets.Dataset.from_file(str(target), info=datasets.DatasetInfo(features=features)).save_to_disk(str(Path(folder) / PARTS_DIR / new_name))
    return new_name


def merge_shards(shards, order, schema, target):
    """Write the rows of the batch files into one Arrow file, once per id (the newest batch of an id wins), in the
    order of `order` (this run's inputs; rows of earlier runs' other inputs after them), a batch at a time: a million
    rows of embeddings are gigabytes. Each batch file holds consecutive inputs, so ordering the files by their first
    row orders the rows. Returns the number of rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    position = {item_id: number for number, item_id in enumerate(order)}
    ids = [pq.read_table(path, columns=["id"]).column("id").to_pylist() for path in shards]
    newest = {}
    for number in range(len(shards)):  # shards are named by time: a later file holds the newer row
        newest.update(dict.fromkeys(ids[number], number))
    ordered = sorted(range(len(shards)), key=lambda n: (position.get(ids[n][0], len(position)) if ids[n] else len(position), n))
    written = 0
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for number in ordered:
            keep = [row for row, item_id in enumerate(ids[number]) if newest[item_id] == number]
            if not keep:
                continue
            table = pq.read_table(shards[number]).cast(schema)
            if len(keep) < table.num_rows:
                table = table.take(pa.array(keep, type=pa.int64()))
            writer.write_table(table)
            written += table.num_rows
    return written


def updated_faiss_index(folder, base, parts, component, count, embedding_dim, classes):
    """The previous FAISS index with the last part's vectors added while its type still fits the size (an IVF
    index keeps its trained lists); else a new index over every stored vector. Vectors stream from the memory-mapped
    parts a chunk at a time: a million 768-wide embeddings are 3 GB, held once, in the index."""
    import faiss

    dim = {"emotion": classes, "visual": embedding_dim, "vad": 3}[component]
    factory = index_factory(count, dim)
    if base is not None and base.get("faiss_types", {}).get(component) == factory:
        index = faiss.read_index(str(Path(folder) / FAISS_DIR / base["faiss"][component]))
        sources = parts[-1:]
    else:
        index = empty_faiss_index(dim, factory, lambda rows: _vector_sample(folder, parts, component, dim, rows))
        sources = parts
    for vectors in _vector_chunks(folder, sources, component, dim):
        index.add(vectors)
    return tune_faiss_index(index)


def _vector_chunks(folder, parts, component, dim, rows=65536):
    """FAISS vectors of one similarity part for every row of `parts`, in row order, `rows` at a time."""
    table = load_parts(folder, parts).data.table
    for start in range(0, table.num_rows, rows):
        yield component_vectors(component, matrix(table.column(VECTOR_COLUMNS[component]).slice(start, rows), dim))


def _vector_sample(folder, parts, component, dim, size):
    """FAISS vectors of `size` random rows (a fixed seed): the training set of an IVF index."""
    table = load_parts(folder, parts).data.table
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(table.num_rows, min(size, table.num_rows), replace=False))
    return component_vectors(component, matrix(take_rows(table.column(VECTOR_COLUMNS[component]), rows), dim))


def write_vad_lookup(target, tokenizer, vad_table):
    from safetensors.numpy import save_file

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    tokenizer.save_pretrained(str(target))
    save_file({"vad_table": np.asarray(vad_table, dtype=np.float32)}, str(target / VAD_TABLE_FILE))
    normal_modes(target)


def remove_unreferenced(folder, config):
    """Delete parts, FAISS files and VAD folders the config does not name, and `.pending/` (all of them the index's
    own: nothing else may be written inside its folders)."""
    folder = Path(folder)
    for path in (folder / PARTS_DIR).iterdir():
        if path.name not in config["parts"]:
            shutil.rmtree(path, ignore_errors=True)
    for path in (folder / FAISS_DIR).iterdir():
        if path.name not in config["faiss"].values():
            path.unlink(missing_ok=True)
    for path in folder.glob("vad-*"):
        if path.is_dir() and re.fullmatch(r"vad-\d+", path.name) and path.name != config["vad_dir"]:
            shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob("metadata-*.parquet"):
        if METADATA_FILE.fullmatch(path.name) and path.name != (config.get("metadata") or {}).get("file"):
            path.unlink(missing_ok=True)
    shutil.rmtree(folder / PENDING_DIR, ignore_errors=True)
    record_index_entries(folder, config["vad_dir"])


# ------------------------------------------------------------------------------------------------- the build
def build_index(
    inputs=None,
    output_dir=None,
    *,
    model=DEMO_MODEL,
    processor=None,
    dataset_path=None,
    split=None,
    dataset=None,
    id_column="painting_id",
    batch_size=8,
    device=None,
    generate_kwargs=None,
    compile=False,
    thumbnail_size=THUMBNAIL_SIZE,
    extensions=IMAGE_EXTENSIONS,
    overwrite=False,
    discard_pending=False,
    progress=True,
    report=None,
    notify=None,
    metadata=None,
    metadata_id_column=None,
    corpus_columns=True,
):
    """Index image files / folders / globs (`inputs`) or a corpus split into `output_dir`, and return the index.

    - `model`: a SEVLM folder or Hub id (loaded with its own code: `sevlm.loading.load_model_and_processor`), or a
      loaded model (then pass its `processor`).
    - An existing index in `output_dir` built with the same model and generation settings is extended: images whose
      id it holds are not computed again, unless their file changed since (size or modification time): those are
      predicted again and replace their old rows. Another model or other settings are an error unless
      `overwrite=True`, which builds a new index and replaces the old one only when the new one is complete.
    - One build at a time writes a folder (`IndexLock`); an interrupted build leaves its finished batches in
      `output_dir/.pending/`, continued only by a build with the same plan (see `open_pending`;
      `discard_pending=True` drops them).
    - `compile=True`: compiled decoding (`predict_batch(compile=...)`: a static cache and a compiled step, the same
      tokens), for large builds on a GPU; it is not part of the plan, so a build may be resumed with or without it.
    - Unreadable images go to `report(id, message)` (default: stderr) and are skipped; `notify(line)` gets the
      other messages (resuming, dropped work).
    - Under `torchrun` / `accelerate launch` every process takes every n-th batch; the main process merges.
    - `metadata`: a CSV file of the works' metadata (artist, title, date, ...; or a `MetadataSource`), its rows
      matched by `metadata_id_column` (see `sevlm.index.metadata`); a corpus split's columns of single values
      (`art_style`, `painting`, ...) are stored too unless `corpus_columns=False`. The works already indexed keep
      their metadata; the CSV's values replace theirs.

    The returned index has `build_report`: `{"items", "computed", "resumed" (rows taken from `.pending/`),
    "already_indexed", "changed" (indexed files that changed and were predicted again), "removed" (changed files
    that could not be predicted again: their rows are gone), "failed": [ids], "unmatched": [inputs that matched no
    file], "not_images": [files in the folders that are not images], "metadata": {"columns", "sources": [how each
    source's rows matched], "without": [works without metadata]} or None}`.
    """
    from accelerate.utils import gather_object

    from sevlm.loading import load_model_and_processor, model_name, pick_device, predict_function

    if output_dir is None:
        raise ValueError("build needs output_dir, the index folder.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if (inputs is None) == (dataset_path is None and dataset is None):
        raise ValueError("Index either image inputs (files, folders, globs) or a dataset split (dataset_path + split), not both.")
    report = report or _report_to_stderr
    notify = notify or (lambda line: print(line, file=sys.stderr))
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--output_dir {display_path(folder)} is a file, not a folder; choose another path.")
    check_writable(folder, "--output_dir", display_path(folder))
    state = distributed_state(device)

    sources = []
    if metadata is not None:  # read first: a wrong column costs no prediction
        if isinstance(metadata, (str, os.PathLike)):
            first = (id_column,) if inputs is None else ()  # a corpus's CSV names its works as the corpus does
            metadata = read_metadata_csv(metadata, metadata_id_column, first + ID_COLUMNS)
        sources.append(metadata)
    not_images, outputs = [], []
    if inputs is not None:
        items, problems, not_images = file_items(inputs, extensions, outputs)
    else:
        split_rows = load_split(dataset_path, split, dataset)
        items, problems = dataset_items(dataset=split_rows, id_column=id_column)
        corpus = corpus_metadata(split_rows, id_column, "the corpus's columns") if corpus_columns else None
        sources[:0] = [corpus] if corpus is not None else []
    if state.is_main_process:
        for item, reason in problems:
            report(item, reason)
        if outputs:
            notify(
                f"{len(outputs)} SEVLM output(s) in the folders skipped, not works (galleries, reports, Spaces, indexes, "
                f"models): {listed(outputs)}."
            )
    if not items and read_existing(folder, True) is None and not shard_files(folder):
        raise ValueError("No images to index: pass image files, folders or glob patterns, or a dataset split with rows.")

    if isinstance(model, (str, os.PathLike)):
        given_name = os.fspath(model)
        model, processor = load_model_and_processor(given_name, pick_device(device), progress=progress)
    else:
        given_name = None
        if processor is None:
            raise ValueError("A loaded model needs its processor: build(..., model=model, processor=processor).")
    emotions = list(model.config.emotions)
    if list(processor.emotions) != emotions:
        raise ValueError(f"The processor's emotions {list(processor.emotions)} differ from the model's {emotions}: load both from the same folder.")
    predict_function(model)  # a folder whose code cannot predict: one clear error now, not one per image
    generate_kwargs = effective_generation(model, generate_kwargs)

    lock = None
    try:
        with state.main_process_first():  # the main process checks, locks and opens .pending/ first
            existing = read_existing(folder, overwrite)
            if state.is_main_process:
                plan = {
                    "model": model_name(model, given_name),
                    "model_fingerprint": model_fingerprint(model),
                    "emotions": emotions,
                    "generate_kwargs": generate_kwargs,
                    "thumbnail_size": int(thumbnail_size or 0),
                    "replace": bool(overwrite or existing is None),
                }
                check_target(folder, existing, plan, overwrite)
                lock = IndexLock(folder).acquire()
                record_index_entries(folder)
                pending, notes = open_pending(folder, plan, overwrite, discard_pending)
                for line in notes:
                    notify(line)
            else:
                pending = json.loads((folder / PENDING_DIR / PENDING_NAME).read_text(encoding="utf-8"))

        indexed = {} if pending["replace"] or existing is None else indexed_states(folder, existing)
        done = pending_states(folder)
        changed = [item.id for item in items if item.id in indexed and item.file is not None and indexed[item.id] != item.state]
        changed_ids = set(changed)
        todo = [item for item in items if (item.id not in indexed or item.id in changed_ids) and done.get(item.id, (-1, -1)) != item.state]
        state.wait_for_everyone()  # every process has read the same finished batches before any writes new ones
        batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        mine = batches[state.process_index :: state.num_processes]
        failed = predict_into_pending(
            folder, mine, model, processor, generate_kwargs, thumbnail_size, report, progress and state.is_local_main_process,
            compile=compile,
        )
        failed = list(gather_object(failed))
        state.wait_for_everyone()

        if state.is_main_process:
            vad_source = (processor.tokenizer, model.vad_table.detach().float().cpu().numpy())
            commit(folder, existing, pending, vad_source, [item.id for item in items], changed, progress, metadata=sources)
        state.wait_for_everyone()
    finally:
        if lock is not None:
            lock.release()
    index = EmotionIndex.load(folder)
    index.build_report = {
        "items": len(items),
        "computed": len(todo) - len(failed),
        "resumed": sum(item.id in done and done[item.id] == item.state for item in items),
        "already_indexed": sum(item.id in indexed and item.id not in changed_ids for item in items),
        "changed": len(changed),
        "removed": sorted(changed_ids & set(failed)),
        "failed": failed,
        "unmatched": [display_path(item) for item, _ in problems],
        "not_images": [display_path(path) for path in not_images],
        "metadata": metadata_report(index, sources),
    }
    return index


def _report_to_stderr(item_id, message):
    from tqdm.auto import tqdm

    tqdm.write(f"skipped {display_path(item_id)}: {display_path(message)}", file=sys.stderr)


__all__ = ["IndexBusyError", "IndexLock", "Item", "build_index", "commit", "model_fingerprint", "open_pending", "write_shard"]
