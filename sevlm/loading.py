"""Loading a SEVLM model folder, one way for every tool (evaluation, prediction, the index, the app, publishing).

- `pick_device`: an explicit `--device`, else accelerate's choice for this process.
- `check_model_folder`: a local folder must hold its config, weights, code and processor files; the error names what
  is missing and how to add it.
- `load_model_and_processor`: the folder's model and processor with the folder's own code (`trust_remote_code`).
- `predict_function`: the `predict_batch` of the same code as the model: the folder's `pipeline_sevlm.py` for a model
  loaded from a folder, this installation's for a model built in this process (training). So a folder is labelled
  the same way by every command.
"""

import contextlib
import functools
import os

from sevlm import DEMO_MODEL
from sevlm.io import display_path, listed

PROCESSOR_CONFIG_FILE = "processor_config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
CODE_FILES = ("configuration_sevlm.py", "modeling_sevlm.py", "processing_sevlm.py", "pipeline_sevlm.py")
# What the Trainer adds to a model in each checkpoint-N folder, for resuming (a checkpoint of a LoRA run holds an
# adapter instead of the model's weights).
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth")
PROCESSOR_CODE_FILE = "processing_sevlm.py"  # written by processor.save_pretrained; the others by the model's


# ------------------------------------------------------------------------------------------------- devices
def pick_device(requested=None):
    """`requested` (e.g. "cuda:1", "cpu") as a `torch.device`, else the device accelerate would use for this process
    (CUDA, then MPS / XPU, then CPU; under `accelerate launch` / `torchrun` each process gets its own GPU)."""
    import torch

    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as error:
            raise ValueError(f"--device {requested}: {error}") from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {requested}: no CUDA device is available here; use --device cpu.")
        return device
    from accelerate import PartialState

    return PartialState().device


# --------------------------------------------------------------------------------------------- folders
def missing_processor_files(folder):
    """The files a saved SEVLM processor needs that `folder` lacks (empty when complete, or not a local folder)."""
    if not os.path.isdir(folder):
        return []
    present = set(os.listdir(folder))
    missing = [name for name in (PROCESSOR_CONFIG_FILE, TOKENIZER_CONFIG_FILE) if name not in present]
    if not any(all(name in present for name in group) for group in TOKENIZER_FILES):
        missing.append(" or ".join(" + ".join(group) for group in TOKENIZER_FILES))
    if PROCESSOR_CODE_FILE not in present:
        missing.append(PROCESSOR_CODE_FILE)
    return missing


def check_model_folder(model_name_or_path):
    """A local SEVLM folder must hold its config, weights, code and processor files: say which are missing and how
    to add them (transformers' own messages would speak of sentencepiece or an unrecognised processing class).
    Hub ids pass."""
    folder = os.fspath(model_name_or_path)
    if not os.path.isdir(folder):
        if str(folder) == DEMO_MODEL:
            raise FileNotFoundError(
                f"No model at {DEMO_MODEL}. Train the demo model first (sevlm-train, or python train_sevlm.py), or pass "
                "--model_name_or_path."
            )
        # A Hub id is `name` or `owner/name`; anything else names a local folder that is not there.
        if os.path.exists(folder) or folder.startswith((".", "/", "~")) or folder.count("/") > 1:
            raise FileNotFoundError(f"No model folder at {display_path(folder)}.")
        return
    shown = display_path(folder)
    present = set(os.listdir(folder))
    if any(name in present for name in CHECKPOINT_FILES):
        problem = _model_folder_problem(folder, present)
        if problem:
            parent = os.path.dirname(os.path.abspath(folder))
            best = [os.path.join(parent, name) for name in sorted(os.listdir(parent)) if name.startswith("best_")]
            best = [path for path in best if os.path.isdir(path)]
            also = f", or one of its best-model folders ({listed(best)})" if best else ""
            raise FileNotFoundError(
                f"{shown} is a Trainer checkpoint (the training state kept for --resume_from_checkpoint), not a model "
                f"folder: {problem}. Use the training run's output folder, {display_path(parent)}, which holds the "
                f"final model{also}."
            )
        return
    if "config.json" not in present:
        raise FileNotFoundError(f"{shown} is not a saved SEVLM folder (no config.json); train one with sevlm-train.")
    if not any(name in present for name in WEIGHT_FILES):
        raise FileNotFoundError(f"{shown} has no model weights ({' or '.join(WEIGHT_FILES)}).")
    missing = missing_processor_files(folder)
    if missing:
        raise FileNotFoundError(
            f"{shown} has no complete SEVLM processor: missing {', '.join(missing)}. Save the processor the model was "
            f"trained with into it: `processor.save_pretrained({shown!r})` (e.g. the processor of the training output "
            "folder, or SevlmProcessor.from_vision_text(...) with the same tokenizer, emotions, prompt and connector)."
        )
    code = [name for name in CODE_FILES if name not in present]
    if code:
        raise FileNotFoundError(
            f"{shown} lacks the code files {listed(code)}: it was not saved by this version of SEVLM. Use a folder "
            "that training or sevlm-publish of this version wrote (model.save_pretrained(folder) writes the code "
            "files)."
        )


def _model_folder_problem(folder, present):
    """What a model folder lacks, in a few words (None when it is complete)."""
    if "config.json" not in present:
        return "it has no config.json"
    if not any(name in present for name in WEIGHT_FILES):
        return f"it has no model weights ({' or '.join(WEIGHT_FILES)}; a LoRA run's checkpoints hold only the adapter)"
    missing = missing_processor_files(folder)
    missing += [name for name in CODE_FILES if name not in present and name not in missing]
    return f"it lacks {listed(missing)}" if missing else None


@contextlib.contextmanager
def loading_progress(show=True):
    """transformers' own progress bars ("Loading weights") shown or hidden inside the block, as a command's
    --no_progress asks."""
    from transformers.utils import logging as transformers_logging

    hide = not show and transformers_logging.is_progress_bar_enabled()
    if hide:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if hide:
            transformers_logging.enable_progress_bar()


def load_model_and_processor(model_name_or_path, device=None, progress=True):
    """A SEVLM folder or Hub id as (model in eval mode on `device`, processor), with the folder's own code
    (`trust_remote_code`), after `check_model_folder`; `progress=False` hides transformers' loading bar."""
    from transformers import AutoModel, AutoProcessor

    check_model_folder(model_name_or_path)
    with loading_progress(progress):
        model = AutoModel.from_pretrained(model_name_or_path, trust_remote_code=True).eval()
    if device is not None:
        model.to(device)
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=True)
    return model, processor


def model_name(model, given=None):
    """How outputs record a model: a local folder as its absolute path (it then works from any working directory),
    a Hub id as given."""
    name = str(given if given is not None else getattr(model, "name_or_path", "") or "")
    return os.path.abspath(name) if name and os.path.isdir(name) else name


# ---------------------------------------------------------------------------------------------- predicting
def predict_function(model):
    """`predict_batch` from the same code as the model: this installation's `pipeline_sevlm` for a model built from
    its classes; the folder's own `pipeline_sevlm.py` for a model loaded with trust_remote_code (its processor comes
    from that folder too, and the two must be of one version)."""
    module = type(model).__module__
    if module.split(".")[0] != "transformers_modules":
        from pipeline_sevlm import predict_batch

        return predict_batch
    return _folder_predict_function(module, str(model.name_or_path))


@functools.lru_cache(maxsize=8)
def _folder_predict_function(module, name_or_path):
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    try:
        return get_class_from_dynamic_module("pipeline_sevlm.predict_batch", name_or_path)
    except (OSError, AttributeError, ImportError) as error:
        raise ValueError(
            f"The model {display_path(name_or_path)} has no pipeline_sevlm.predict_batch in its code: it was saved by an "
            "earlier version of SEVLM. Save it again with this version (training writes the current code files into "
            "its output folder)."
        ) from error
