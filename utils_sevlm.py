"""Helpers shared by SEVLM's tools (training, evaluation, prediction, publishing, index and search, the web app).

- `pick_device`: the one device choice of every tool (an explicit `--device`, else accelerate's).
- `load_model_and_processor` / `check_model_folder`: a SEVLM folder with its own code, or a clear error naming the
  processor files it lacks.
- `find_images`: image files from files, folders and glob patterns.
- `display_path`: any file name as printable text, also names that are not valid UTF-8.
- `replace_file` / `write_text_atomic` / `write_json_atomic`: a file is replaced only by a complete new one.
- `staged_directory`: a folder is built beside its target and swapped in only when complete.
- `json_safe`: NaN -> null, numpy / torch scalars -> Python numbers.
- `load_metric_module`: metrics/sevlm/sevlm.py, the one implementation of the evaluation protocol.

None of this travels with a model folder: the remote-code files (`*_sevlm.py` copied by `save_pretrained`) import
only transformers and torch.
"""

import contextlib
import glob
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
METRIC_FILE = REPO_ROOT / "metrics" / "sevlm" / "sevlm.py"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


# ------------------------------------------------------------------------------------------------- devices
def pick_device(requested=None):
    """`requested` (e.g. "cuda:1", "cpu") as a `torch.device`, else the device accelerate would use for this process
    (CUDA, then MPS / XPU, then CPU; under `accelerate launch` / `torchrun` each process gets its own GPU)."""
    import torch

    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {requested}: no CUDA device is available here; use --device cpu.")
        return device
    from accelerate import PartialState

    return PartialState().device


# --------------------------------------------------------------------------------------------------- models
def check_model_folder(model_name_or_path):
    """A local SEVLM folder must hold its processor and tokenizer files: say which are missing and how to add them
    (transformers' own message would be about sentencepiece or an unrecognised processing class). Hub ids pass."""
    if os.path.isdir(model_name_or_path):
        from processing_sevlm import check_processor_files

        check_processor_files(model_name_or_path)


def load_model_and_processor(model_name_or_path, device=None):
    """A SEVLM folder or Hub id as (model in eval mode on `device`, processor), with the folder's own code
    (`trust_remote_code`), after `check_model_folder`."""
    from transformers import AutoModel, AutoProcessor

    check_model_folder(model_name_or_path)
    model = AutoModel.from_pretrained(model_name_or_path, trust_remote_code=True).eval()
    if device is not None:
        model.to(device)
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=True)
    return model, processor


def generation_problems(max_new_tokens=None, num_beams=None, temperature=None, top_p=None, top_k=None):
    """Generation values no model can use (None: not given), as messages naming the flag: every tool checks them
    before it reads an image, instead of failing once per image."""
    problems = []
    if max_new_tokens is not None and max_new_tokens < 1:
        problems.append(f"--max_new_tokens must be at least 1, got {max_new_tokens}.")
    if num_beams is not None and num_beams < 1:
        problems.append(f"--num_beams must be at least 1, got {num_beams}.")
    if temperature is not None and not temperature > 0:  # also NaN
        problems.append(f"--temperature must be above 0, got {temperature}.")
    if top_p is not None and not 0 < top_p <= 1:
        problems.append(f"--top_p must be in (0, 1], got {top_p}.")
    if top_k is not None and top_k < 0:
        problems.append(f"--top_k must be 0 (off) or more, got {top_k}.")
    return problems


# -------------------------------------------------------------------------------------------------- inputs
def find_images(inputs, extensions=IMAGE_EXTENSIONS):
    """Expand files, folders (searched recursively) and glob patterns into image paths.

    Returns `(paths, problems)`: `Path`s in a stable order without duplicates, and `(input, reason)` for each input
    that matched nothing. Files named directly are always taken, whatever their extension.
    """
    extensions = {ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in extensions}
    paths, problems, seen = [], [], set()

    def add(path):
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            paths.append(Path(path))

    for item in inputs:
        item = os.fspath(item)
        if os.path.isfile(item):
            add(item)
        elif os.path.isdir(item):
            found = sorted(p for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                problems.append((item, f"folder holds no image files ({', '.join(sorted(extensions))})"))
            for path in found:
                add(path)
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p) and Path(p).suffix.lower() in extensions)
            if not found:
                problems.append((item, "pattern matches no image files"))
            for path in found:
                add(path)
        else:
            problems.append((item, "no such file or folder"))
    return paths, problems


def display_path(path):
    """`path` as text that can always be printed and written as UTF-8.

    On Linux a file name is bytes; Python keeps bytes that are not UTF-8 (old zip archives, Windows copies) as lone
    surrogates, which `print`, `json.dump` and CSV writers refuse. They are shown as `\\xNN` escapes instead.
    """
    return os.fsencode(os.fspath(path)).decode("utf-8", errors="backslashreplace")


# ---------------------------------------------------------------------------------------------- safe writes
@contextlib.contextmanager
def replace_file(path, mode="w", encoding="utf-8", newline=None):
    """Write `path` through a temporary file in the same folder, moved into place only when the block succeeds.

    If the block raises, the temporary file is removed and an existing `path` stays as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with open(temporary, mode, **kwargs) as stream:
            yield stream
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomic(path, text):
    with replace_file(path) as stream:
        stream.write(text)
    return Path(path)


def write_json_atomic(path, data, indent=2):
    return write_text_atomic(path, json.dumps(json_safe(data), indent=indent, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def staged_directory(target, overwrite=False, is_replaceable=None, what="output"):
    """Build a folder beside `target` and swap it in only when the `with` block succeeds.

        with staged_directory(output_dir, overwrite=args.overwrite, is_replaceable=looks_like_ours) as staging:
            ...write everything into `staging`...

    - A non-empty `target` is an error unless `overwrite` is true; with `overwrite`, `is_replaceable(target)` must
      also accept it (so that an unrelated folder is never deleted). The check happens before the block runs.
    - The old folder is removed only after the new one is complete; if the block fails, `target` is untouched and
      the staging folder is removed.
    - A `target` that is a symbolic link to a folder keeps the link: the folder it points to is replaced.
    """
    target = Path(target)
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    check_replaceable(target, overwrite, is_replaceable, what)
    real.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{real.name}.staging-", dir=real.parent))
    try:
        yield staging
        swap_in(staging, real)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def check_replaceable(target, overwrite, is_replaceable=None, what="output"):
    """Raise `FileExistsError` when `target` holds something that may not be replaced (see `staged_directory`)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{what} {display_path(target)} is a file, not a folder; choose another path.")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(
            f"{what} {display_path(target)} is not empty. Pass --overwrite to replace it (the old content is removed "
            "only once the new one is complete), or choose another path."
        )
    if is_replaceable is not None and not is_replaceable(target):
        raise FileExistsError(
            f"{what} {display_path(target)} is not empty and does not hold an earlier result of this tool; refusing to "
            "delete it even with --overwrite. Choose an empty or new folder."
        )


def swap_in(staging, target):
    """Replace folder `target` by folder `staging` (same file system): old moved aside, new renamed, old deleted."""
    staging, target = Path(staging), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


# --------------------------------------------------------------------------------------------------- metrics
def load_metric_module():
    """metrics/sevlm/sevlm.py as a module. It is not a package: the same file is a self-contained `evaluate` metric
    script (`evaluate.load("metrics/sevlm")`), so it is loaded by path, once per process."""
    name = "sevlm_metric"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, METRIC_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


# ------------------------------------------------------------------------------------------------------ json
def json_safe(value):
    """NaN / inf -> None, numpy and torch scalars -> Python numbers, tuples -> lists, recursively."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = [
    "IMAGE_EXTENSIONS",
    "check_model_folder",
    "check_replaceable",
    "display_path",
    "find_images",
    "generation_problems",
    "json_safe",
    "load_metric_module",
    "load_model_and_processor",
    "pick_device",
    "replace_file",
    "staged_directory",
    "swap_in",
    "write_json_atomic",
    "write_text_atomic",
]
