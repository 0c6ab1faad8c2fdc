"""Training SEVLM with the Hugging Face Trainer: the arguments (`ModelArguments`, `DataArguments`,
`SevlmTrainingArguments`), the corpus, processor and model, `SevlmTrainer` (loss terms, per-module learning rates,
non-finite guards, generation metrics in every evaluation), its callbacks (pair epochs, early stopping on several
metrics, best models as folders), checkpoints, the run's output folder (`RunOutputs`), and
`train(model_args, data_args, training_args)`. The command is `train_sevlm.py` (`sevlm-train`).

A metric that cannot be computed (emotion accuracy when no evaluated painting has a majority emotion) is undefined:
NaN in the metrics (null in the JSON files), said once with the reason, and ignored by model selection, early
stopping and the best-model folders, which then go by what is defined (the validation loss). A kept model whose
metric never beat its first evaluation's value is said to be that first model, at the end and in the results
(`best_model_report`).
"""

import contextlib
import copy
import json
import logging as std_logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.utils import gather_object
from huggingface_hub.errors import HFValidationError
from transformers import (
    AutoTokenizer,
    CLIPVisionConfig,
    GPT2Config,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import logging

from modeling_sevlm import SevlmForConditionalGeneration
from processing_sevlm import SevlmProcessor
from sevlm.data.schema import corpus_emotions
from sevlm.data.schema import load_corpus as load_saved_corpus
from sevlm.data.settings import MAX_READABLE_CLASSES
from sevlm.data.views import (
    AnnotationDataset,
    PairedPaintingDataset,
    SevlmCollator,
    SevlmPairCollator,
    evaluation_view,
)
from sevlm.evaluation import metric as sevlm_metric
from sevlm.hub import HUB_FILES
from sevlm.io import (
    check_writable,
    display_path,
    listed,
    make_temporary_folder,
    new_folder_mode,
    normal_modes,
    read_record,
    record_entries,
    staged_output,
    write_json_atomic,
    write_record,
)
from sevlm.names import emotion_key
from sevlm.tokenizer import train_tokenizer
from sevlm.training_arguments import (  # noqa: F401
    MAX_LOADER_WORKERS,
    RECIPE_TEXT_MODEL,
    RECIPE_VISION_MODEL,
    DataArguments,
    ModelArguments,
    RecipeArguments,
)
from sevlm.vad import build_vad_table

logger = logging.get_logger("train_sevlm")

NRC_VAD_HELP = (
    "Download the NRC-VAD lexicon (https://saifmohammad.com/WebPages/nrc-vad.html, free for research) and pass "
    "--vad_lexicon path/to/NRC-VAD-Lexicon.txt, or train the baseline without VAD with --no_vad."
)
LOSS_TERMS = ("lm_loss", "vad_loss", "contrastive_loss")
# The generation metrics of every training-time evaluation (greedy, light BLEU tokenisation: see bleu_4_fast).
GENERATION_METRICS = ("emotion_accuracy", "emotion_accuracy_scores", "bleu_4_fast")
ACCURACY_METRICS = ("emotion_accuracy", "emotion_accuracy_scores")  # undefined without a painting with a majority
SELECTABLE_METRICS = GENERATION_METRICS + ("loss",)
BEST_FOLDER_PREFIX = "best_"
# Fewer validation paintings than this hardly move a generation metric (each is a 1/N step of accuracy).
SMALL_VALIDATION = 20
RESULT_FILES = ("train_results.json", "eval_results.json", "test_results.json", "all_results.json")
# The owner of a training run's entries in its output folder's record (`.sevlm-output.json`, see sevlm.io).
TRAINING_RUN = "training run"
# What an --overwrite_output_dir run moves its predecessor's checkpoints and best-model folders into, until its own
# model is saved: `.previous-run-<time>-<pid>`, one per run, so that no run ever deletes another run's.
SET_ASIDE_PREFIX = ".previous-run"
CHECKPOINT_FOLDER = re.compile(rf"{PREFIX_CHECKPOINT_DIR}-\d+(\.incomplete|\.diverged)?")


# ---------------------------------------------------------------------------------------------- arguments
@dataclass
class SevlmTrainingArguments(RecipeArguments, TrainingArguments):
    """`TrainingArguments` with the paper's recipe as defaults (`RecipeArguments`) and the loader's defaults set by
    the machine."""

    def __post_init__(self):
        if self.dataloader_num_workers is None:
            self.dataloader_num_workers = default_loader_workers(self.use_cpu)
        if self.dataloader_persistent_workers is None:
            self.dataloader_persistent_workers = self.dataloader_num_workers > 0
        if self.dataloader_pin_memory is None:
            self.dataloader_pin_memory = not self.use_cpu and torch.cuda.is_available()
        super().__post_init__()


def default_loader_workers(use_cpu, cuda_available=None, cores=None, processes=None):
    """Data loader workers by default: on a GPU, the cores this process may use (its share when several processes
    train on one machine) less one for the training loop, at most `MAX_LOADER_WORKERS` (one worker decodes and
    preprocesses several hundred paintings a second: bench/bench_train.py); on a CPU none, since the model's own
    threads need every core and worker processes would only take them away (and cost a start-up each epoch)."""
    cuda_available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if use_cpu or not cuda_available:
        return 0
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1)) if processes is None else processes
    return max(0, min(MAX_LOADER_WORKERS, cores // max(1, processes) - 1))


def check_arguments(model_args, data_args, training_args):
    """Argument errors that would otherwise surface minutes into a run, or never."""
    if training_args.fp16 and not torch.cuda.is_available():
        raise ValueError("--fp16 needs a CUDA device and none is available here; use --bf16 (it also works on CPU) or drop --fp16.")
    name = training_args.metric_for_best_model
    if name and name.removeprefix("eval_") not in SELECTABLE_METRICS:
        raise ValueError(f"--metric_for_best_model {name}: unknown metric; choose from {list(SELECTABLE_METRICS)}.")
    for flag in ("early_stopping_metrics", "best_model_metrics"):
        unknown = [metric for metric in metric_list(getattr(data_args, flag)) if metric not in SELECTABLE_METRICS]
        if unknown:
            raise ValueError(f"--{flag}: unknown metric(s) {unknown}; choose from {list(SELECTABLE_METRICS)}.")


def metric_list(text):
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def early_stopping_metrics(data_args, training_args):
    """What early stopping watches: --early_stopping_metrics and the metric that chooses the final model
    (--metric_for_best_model), so that training never stops while the model it keeps is still improving."""
    chosen = (training_args.metric_for_best_model or "").removeprefix("eval_")
    return list(dict.fromkeys(metric_list(data_args.early_stopping_metrics) + ([chosen] if chosen else [])))


def is_defined(value):
    """A metric value that says something: a finite number (NaN or None: undefined)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_better(name, value, previous):
    """Whether `value` of metric `name` beats `previous` (None: nothing yet); the loss is better lower."""
    return previous is None or (value < previous if name == "loss" else value > previous)


# --------------------------------------------------------------------------------------------- output dir
class RunOutputs:
    """What a training run writes into its --output_dir, and what it may replace there.

    The folder's output record (`.sevlm-output.json`, see `sevlm.io`) lists the entries training runs wrote (owner
    "training run"): the final model's files, the results files and the best_* folders (the Trainer's checkpoint-*
    folders are recognised by name). Then:
    - `check` (before any work): an earlier run there is an error unless the run resumes it or
      --overwrite_output_dir is given; a file the run would write that no training run recorded (a user's, or one
      of another tool) is an error even then;
    - `set_aside`: with --overwrite_output_dir, the earlier run's checkpoints and best_* folders move into this run's
      own `.previous-run-*` folder, deleted once the new model is saved. A `.previous-run-*` folder found there
      belongs to a run that did not finish (its predecessor's checkpoints): it is kept, and its place is said;
    - `save_best` / `save_final`: folders and files written through a staging folder and moved in only when
      complete, with a new file's permissions, replacing only the run's own entries;
    - `finish`: the earlier run's entries that this run did not write again (say its test_results.json when this
      run has no test split) are removed, so that no number of the old model stays beside the new one.
    Files no training run wrote (a user's notes.txt) are never touched.
    """

    def __init__(self, training_args, best_metrics=(), resuming=False):
        self.folder = Path(training_args.output_dir)
        self.args = training_args
        self.best_metrics = list(best_metrics)
        self.resuming = resuming
        self.written = set()
        self.earlier = set()  # entries an earlier run recorded, removed at the end unless written again
        self.aside = None  # this run's set-aside folder
        self.replacing = False

    # ------------------------------------------------------------------------------------------ checks
    def planned_names(self):
        """Every entry a run may write into the folder itself (the model folder's files, results, best_* folders)."""
        return [*HUB_FILES, *RESULT_FILES, *(f"{BEST_FOLDER_PREFIX}{name}" for name in self.best_metrics)]

    def recorded(self):
        """Entries of the folder recorded as a training run's, that are there."""
        entries = read_record(self.folder).items()
        return sorted(name for name, owner in entries if owner == TRAINING_RUN and (self.folder / name).exists())

    def checkpoints(self):
        """The Trainer's checkpoint-N folders (and those set aside as .incomplete / .diverged)."""
        paths = self.folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
        return sorted(path.name for path in paths if CHECKPOINT_FOLDER.fullmatch(path.name) and path.is_dir())

    def kept_set_asides(self):
        """Set-aside folders of other runs (runs that did not finish)."""
        paths = self.folder.glob(f"{SET_ASIDE_PREFIX}*")
        return sorted(path for path in paths if path.is_dir() and path != self.aside)

    def check(self):
        """Raise before any work when this run would replace something it may not (see the class docstring)."""
        folder, shown = self.folder, display_path(self.folder)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"--output_dir {shown} is a file, not a folder; choose another path.")
        check_writable(folder, "--output_dir", shown)
        if not folder.is_dir():
            return self
        recorded = self.recorded()
        taken = sorted(name for name in self.planned_names() if (folder / name).exists() and name not in recorded)
        if taken:
            raise FileExistsError(
                f"--output_dir {shown} holds {listed(taken)}, which no training run recorded writing (files of "
                "yours, of another tool, or of a SEVLM version older than this one); a training run writes files of "
                "these names, so it refuses to train there, even with --overwrite_output_dir. Choose another "
                f"--output_dir, or move {'it' if len(taken) == 1 else 'them'} away."
            )
        found = self.describe(recorded) + self.checkpoints()
        if found and not self.resuming and not self.args.overwrite_output_dir:
            raise FileExistsError(
                f"--output_dir {shown} holds an earlier run ({listed(found)}). Pass --resume_from_checkpoint true to "
                "continue it, --overwrite_output_dir true to train a new model in its place (the old model stays "
                "until the new one is saved; files the runs did not write stay), or choose another --output_dir. "
                "(For the demo: sevlm-train --args_file configs/demo.args --overwrite_output_dir true.)"
            )
        self.replacing = bool(found) and not self.resuming
        # The entries a resumed run continues are its own; a new run replaces all of its predecessor's.
        self.earlier = {name for name in recorded if not (self.resuming and name.startswith(BEST_FOLDER_PREFIX))}
        self.say_kept_set_asides()
        return self

    @staticmethod
    def describe(recorded):
        """An earlier run's recorded entries, for a message: its model, best-model folders and results."""
        described = ["a trained model (model.safetensors)"] if "model.safetensors" in recorded else []
        described += [f"{name}/" for name in recorded if name.startswith(BEST_FOLDER_PREFIX)]
        return described + [name for name in recorded if name in RESULT_FILES]

    def say_kept_set_asides(self):
        if not self.args.should_log:
            return
        for path in self.kept_set_asides():
            logger.warning(
                f"{display_path(path)} holds checkpoints and best-model folders that an earlier "
                "--overwrite_output_dir run set aside and did not get to delete: that run did not finish. They are "
                "kept (no run deletes another run's); delete the folder yourself once you no longer need them."
            )

    # -------------------------------------------------------------------------------------- set aside
    def set_aside(self):
        """With --overwrite_output_dir: the earlier run's checkpoints and best_* folders move into this run's own
        `.previous-run-*` folder (so that they neither collide with the new ones nor get resumed)."""
        if not self.replacing or not self.args.should_save:
            return None
        movable = self.checkpoints() + [name for name in self.recorded() if name.startswith(BEST_FOLDER_PREFIX)]
        if not movable:
            return None
        self.aside = self.folder / f"{SET_ASIDE_PREFIX}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.aside.mkdir(mode=new_folder_mode())
        for name in movable:
            os.replace(self.folder / name, self.aside / name)
        logger.warning(
            f"--overwrite_output_dir: the earlier run's {listed(movable)} are set aside in {display_path(self.aside)} "
            "until the new model is saved."
        )
        return self.aside

    # ----------------------------------------------------------------------------------------- writing
    def save_best(self, name, write):
        """A best-model folder `<output_dir>/<name>`: `write(staging)` fills a staging folder, which then replaces the
        folder's earlier files (only those a training run wrote)."""
        with staged_output(self.folder / name, TRAINING_RUN, (), True, "--overwrite_output_dir", name) as staging:
            write(staging)
            normal_modes(staging)
        self.record([name])

    def save_final(self, write):
        """The final model and the results into the output folder itself: `write(staging)` fills a staging folder,
        whose entries then replace the run's own files of the same names (nothing else)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = make_temporary_folder(self.folder / "final", "staging")
        try:
            write(staging)
            normal_modes(staging)
            self.move_in(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def move_in(self, staging):
        """Move the files of `staging` into the folder. The files they replace go aside first: if a move fails, the
        new files are taken out again and the old ones put back."""
        names = sorted(entry.name for entry in staging.iterdir())
        ours = set(self.recorded()) | self.written
        taken = [name for name in names if (self.folder / name).exists() and name not in ours]
        if taken:  # appeared during training
            shown = display_path(self.folder)
            raise FileExistsError(f"--output_dir {shown}: {listed(taken)} appeared during training; not replacing it.")
        old = make_temporary_folder(self.folder / "final", "old")
        replaced, moved = [], []
        try:
            for name in names:
                if (self.folder / name).exists():
                    os.replace(self.folder / name, old / name)
                    replaced.append(name)
                os.replace(staging / name, self.folder / name)
                moved.append(name)
        except BaseException:
            for name in moved:
                (self.folder / name).unlink()
            for name in replaced:
                os.replace(old / name, self.folder / name)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
        self.record(names)

    def record(self, names):
        record_entries(self.folder, names, TRAINING_RUN)
        self.written.update(names)

    def finish(self):
        """After the final save: remove the earlier run's entries this run did not write again and this run's
        set-aside folder; say where set-aside folders of unfinished runs are."""
        if not self.args.should_save:
            return []
        stale = sorted(name for name in self.earlier - self.written if (self.folder / name).exists())
        for name in stale:
            path = self.folder / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        if stale:
            shown = display_path(self.folder)
            logger.warning(f"Removed the earlier run's {listed(stale)} from {shown}: this run wrote no new ones.")
        entries = read_record(self.folder)
        gone = [name for name, owner in entries.items() if owner == TRAINING_RUN and not (self.folder / name).exists()]
        if gone:
            write_record(self.folder, {name: owner for name, owner in entries.items() if name not in gone})
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None
        self.say_kept_set_asides()
        return stale


# ------------------------------------------------------------------------------------------ data and model
def load_corpus(data_args):
    if not data_args.dataset_path:
        raise ValueError("Pass --dataset_path (a corpus from dataset_scripts/prepare_corpus.py or prepare_artemis.py), or run without arguments for the demo.")
    path = Path(data_args.dataset_path)
    if not path.exists() and data_args.make_demo_corpus:
        from sevlm.data.demo import make_demo_corpus

        logger.warning(f"Generating the demo corpus ({data_args.demo_taxonomy}) in {path} ...")
        make_demo_corpus(output_dir=str(path), taxonomy=data_args.demo_taxonomy)
    if not path.exists():
        raise FileNotFoundError(f"--dataset_path {path} does not exist; prepare it with dataset_scripts/prepare_corpus.py or prepare_artemis.py.")
    corpus = load_saved_corpus(path, [split for split in (data_args.train_split, data_args.eval_split) if split])
    if not len(corpus[data_args.train_split]):
        raise ValueError(f"--train_split {data_args.train_split} of --dataset_path {path} is empty: nothing to train.")
    return corpus


def _is_config_file(name):
    return name is not None and str(name).endswith(".json") and Path(name).is_file()


def uses_vad_lexicon(model_args):
    return not model_args.no_vad and (model_args.use_vad_embedding or model_args.use_vad_loss)


def check_new_model_inputs(model_args):
    """Before anything is loaded (a pretrained part can take minutes to download): a new model has both parts, a
    config file that is named exists, and a VAD run has its lexicon. Nothing to check for --model_name_or_path."""
    if model_args.model_name_or_path:
        return
    for flag in ("--vision_model_name_or_path", "--text_model_name_or_path"):
        name = getattr(model_args, flag.removeprefix("--"))
        if not name:
            raise ValueError(
                f"{flag} is empty: a new model needs a vision tower and a decoder (the paper's recipe, the default: "
                f"--vision_model_name_or_path {RECIPE_VISION_MODEL} --text_model_name_or_path {RECIPE_TEXT_MODEL}), "
                "or pass --model_name_or_path to continue a saved model."
            )
        if str(name).endswith(".json") and not Path(name).is_file():
            raise FileNotFoundError(f"{flag} {name}: no such config file.")
    if uses_vad_lexicon(model_args) and not model_args.vad_lexicon:
        raise ValueError(f"This run uses VAD (fusion/loss) but no lexicon was given. {NRC_VAD_HELP}")
    if uses_vad_lexicon(model_args) and not Path(model_args.vad_lexicon).is_file():
        raise FileNotFoundError(f"--vad_lexicon {model_args.vad_lexicon} not found. {NRC_VAD_HELP}")


@contextlib.contextmanager
def loading_parts(names):
    """Load pretrained parts ({flag: name}); a part that cannot be loaded (no such folder or model, or a Hub name
    that is neither in the local cache nor reachable) is an error naming the flag and what to pass instead."""
    try:
        yield
    except (OSError, HFValidationError) as error:
        if not names:
            raise
        given = " / ".join(f"{flag} {name}" for flag, name in names.items())
        recipe = {RECIPE_VISION_MODEL, RECIPE_TEXT_MODEL} & set(names.values())
        default = " (the paper's recipe: the default when the flag is not given)" if recipe else ""
        reason = " ".join(str(error).split())
        raise OSError(
            f"{given}{default} cannot be loaded: {reason} A Hub name is downloaded once, then read from the local "
            "cache (also offline); without the Hub, pass a local folder holding the model, or config files for a "
            "small model trained from scratch (--vision_model_name_or_path configs/demo_vision.json "
            "--text_model_name_or_path configs/demo_text.json, as --args_file configs/own-data.args does)."
        ) from error


def build_processor(model_args, data_args, corpus, vision_config, checkpoint=None):
    """The processor: from the checkpoint being resumed (its tokenizer is what the weights were trained with), from
    --model_name_or_path, or new, with the corpus's emotion list."""
    emotions = corpus_emotions(corpus[data_args.train_split])
    if len(emotions) > MAX_READABLE_CLASSES:
        logger.warning(
            f"The corpus has {len(emotions)} emotion classes (more than {MAX_READABLE_CLASSES}): each has few examples, "
            "and emotion lists, reports and confusion matrices become hard to read. Check that the emotion column is "
            "the label, or merge classes."
        )
    source = checkpoint or model_args.model_name_or_path
    if source:
        processor = SevlmProcessor.from_pretrained(source)
        if [emotion_key(name) for name in processor.emotions] != [emotion_key(name) for name in emotions]:
            what = "the checkpoint being resumed" if checkpoint else f"--model_name_or_path {source}"
            raise ValueError(
                f"The corpus's emotions {emotions} differ from those of {what} ({list(processor.emotions)}): a model "
                "predicts the classes it was built with. Train a new model (--vision_model_name_or_path / "
                "--text_model_name_or_path) for this taxonomy, or use a corpus of the model's."
            )
        processor.max_length = data_args.max_length  # the processor refuses a length its longest sequence cannot fit
        return processor
    tokenizer = model_args.tokenizer_name_or_path
    if tokenizer is None and _is_config_file(model_args.text_model_name_or_path):
        explanations = corpus[data_args.train_split].select_columns(["explanations"]).with_format(None)[:]["explanations"]
        # The prompt, every class name and the connector are in the training text, so each is a few tokens at most.
        texts = [f"{model_args.prompt_text} {name}{model_args.connector_text}" for name in emotions] * 10
        texts += [text for row in explanations for text in row]
        tokenizer = train_tokenizer(texts, vocab_size=model_args.tokenizer_vocab_size)
    else:
        flag = "--tokenizer_name_or_path" if tokenizer is not None else "--text_model_name_or_path"
        name = tokenizer if tokenizer is not None else model_args.text_model_name_or_path
        with loading_parts({flag: name}):
            tokenizer = AutoTokenizer.from_pretrained(name)
    vision = model_args.vision_model_name_or_path
    with loading_parts({} if _is_config_file(vision) else {"--vision_model_name_or_path": vision}):
        return SevlmProcessor.from_vision_text(
            vision_config if _is_config_file(vision) else vision,
            tokenizer,
            emotions=emotions,
            prompt_text=model_args.prompt_text,
            connector_text=model_args.connector_text,
            max_length=data_args.max_length,
        )


def build_model(model_args, processor, vision_config):
    if model_args.model_name_or_path:
        model = SevlmForConditionalGeneration.from_pretrained(model_args.model_name_or_path)
        model.config.freeze_vision = model_args.freeze_vision
        model.vision_model.requires_grad_(not model_args.freeze_vision)
        return model
    check_new_model_inputs(model_args)
    uses_vad = uses_vad_lexicon(model_args)
    text = model_args.text_model_name_or_path
    text = text_config_from_file(text, processor.tokenizer) if _is_config_file(text) else text
    vision = model_args.vision_model_name_or_path
    vision = vision_config if _is_config_file(vision) else vision
    vad_table = build_vad_table(processor.tokenizer, model_args.vad_lexicon, None, model_args.vad_lexicon_language) if uses_vad else None
    pretrained = {flag: name for flag, name in (("--vision_model_name_or_path", vision), ("--text_model_name_or_path", text)) if isinstance(name, str)}
    with loading_parts(pretrained):
        return SevlmForConditionalGeneration.from_vision_text(
            vision,
            text,
            processor,
            vad_table=vad_table,
            use_vad_embedding=model_args.use_vad_embedding and not model_args.no_vad,
            use_vad_loss=model_args.use_vad_loss and not model_args.no_vad,
            use_contrastive_loss=model_args.use_contrastive_loss,
            lm_loss_weight=model_args.lm_loss_weight,
            vad_loss_weight=model_args.vad_loss_weight,
            contrastive_loss_weight=model_args.contrastive_loss_weight,
            vad_encoder_causal=model_args.vad_encoder_causal,
            freeze_vision=model_args.freeze_vision,
        )


def text_config_from_file(path, tokenizer):
    """A GPT2Config JSON file, with the vocabulary size and special token ids of the tokenizer the model will use (a
    config file written for GPT-2's own vocabulary says 50,257 tokens and <|endoftext|> = 50256, which transformers
    reports as ids outside the vocabulary)."""
    values = json.loads(Path(path).read_text(encoding="utf-8"))
    values.update(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2Config.from_dict(values)


def freeze_switched_off_modules(model):
    """Modules whose loss or path is off get no gradient (and DDP does not wait for them)."""
    config = model.config
    if not config.use_vad_embedding:
        model.vad_encoder.requires_grad_(False)
        model.vad_fusion.requires_grad_(False)
    if not config.use_vad_loss:
        model.vad_head.requires_grad_(False)
    if not config.use_contrastive_loss:
        model.contrastive_head.requires_grad_(False)


def apply_lora(model, model_args):
    """LoRA on the decoder's self-attention and MLP; the new parts (cross-attention, VAD, contrastive head) train fully."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=r".*language_model\.transformer\.h\.\d+\.(attn\.(c_attn|c_proj)|mlp\.(c_fc|c_proj))",
        fan_in_fan_out=True,  # GPT-2 uses Conv1D layers
        modules_to_save=["crossattention", "ln_cross_attn", "vad_encoder", "vad_fusion", "vad_head", "contrastive_head"],
    )
    return get_peft_model(model, config)


def unwrap_sevlm(model):
    """The SevlmForConditionalGeneration inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def plain_model(model):
    """A plain SEVLM with LoRA merged, leaving the training model untouched (a copy is merged when LoRA is on)."""
    if hasattr(model, "merge_and_unload"):
        return copy.deepcopy(model).merge_and_unload()
    return unwrap_sevlm(model)


def non_finite_parameters(model):
    """Names of parameters holding NaN or infinity (at most 5)."""
    bad = []
    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter.detach()).all():
            bad.append(name)
            if len(bad) == 5:
                break
    return bad


# ------------------------------------------------------------------------------------------------ trainer
class SevlmTrainer(Trainer):
    """Trainer that logs each loss term, uses per-module learning rates, stops on non-finite losses, evaluation losses
    or weights (so that no diverged checkpoint is ever saved), and adds generation metrics to every evaluation."""

    def __init__(
        self, *args, evaluation_paintings=None, test_dataset=None, generation_kwargs=None, learning_rates=None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        # Evaluation views (one row per painting) by metric prefix: "eval" (periodic) and "test" (after training).
        self.evaluation_paintings = evaluation_paintings or {}
        self.test_dataset = test_dataset
        self.generation_kwargs = generation_kwargs or {}
        self.learning_rates = learning_rates or {}
        self._term_sums = {}
        self._term_steps = 0

    def create_optimizer(self, model=None):
        """AdamW groups by module (vision tower, VAD encoder, the rest: their own learning rates), each split into
        parameters with and without weight decay (biases and norms never decay: `get_decay_parameter_names`)."""
        if self.optimizer is None:
            model = model or self.model
            decay = set(self.get_decay_parameter_names(model))
            groups = {}
            for name, parameter in model.named_parameters():
                if parameter.requires_grad:
                    module = next((key for key in ("vad_encoder", "vision_model") if f"{key}." in name), "default")
                    groups.setdefault((module, name in decay), []).append(parameter)
            param_groups = [
                {
                    "params": params,
                    "lr": self.learning_rates.get(module, self.args.learning_rate),
                    "weight_decay": self.args.weight_decay if decays else 0.0,
                }
                for (module, decays), params in groups.items()
            ]
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        if model.training:
            for name in LOSS_TERMS:
                term = getattr(outputs, name)
                if term is not None:
                    self._term_sums[name] = self._term_sums.get(name, 0.0) + term.detach().float()
            self._term_steps += 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        bad = (~torch.isfinite(loss)).float()
        if self.args.world_size > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        if bad.item():
            raise FloatingPointError(
                f"Non-finite training loss ({loss.item()}) at step {self.state.global_step + 1}: training stopped and "
                "nothing more is saved. Lower the learning rate, use bf16 instead of fp16, or check the batch."
            )
        return loss

    def log(self, logs, start_time=None):
        if "loss" in logs and self._term_steps:
            for name, total in self._term_sums.items():
                logs[name] = round(self.accelerator.gather(total / self._term_steps).mean().item(), 4)
            self._term_sums, self._term_steps = {}, 0
        super().log(logs, start_time)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"):
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        # Checked before the metrics reach any callback or checkpoint: a diverged model is never saved nor "best".
        self.check_finite(output.metrics.get(f"{metric_key_prefix}_loss"), metric_key_prefix)
        paintings = self.evaluation_paintings.get(metric_key_prefix)
        if paintings is not None:
            output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in self.generation_metrics(paintings).items()})
        return output

    def check_finite(self, loss, prefix="eval"):
        step = self.state.global_step
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(
                f"Non-finite {prefix} loss ({loss}) at step {step}: training stopped; no checkpoint of this state is "
                "kept. Lower the learning rate, use bf16 instead of fp16, or check the data."
            )
        bad = non_finite_parameters(self.model)
        if bad:
            raise FloatingPointError(
                f"Non-finite weights at step {step} ({', '.join(bad)}): training stopped; no checkpoint of this state is kept."
            )

    def _save_checkpoint(self, model, trial):
        self.check_finite(None)
        return super()._save_checkpoint(model, trial)

    @torch.no_grad()
    def generation_metrics(self, paintings):
        """Emotion accuracy (generated emotion, and the scores' argmax) against the majority, and `bleu_4_fast`, from
        greedy generations on an evaluation view, through the project's one prediction function. An accuracy over
        no painting with a majority emotion is NaN (undefined), never 0; `majority_paintings` says how many had one."""
        from tqdm.auto import tqdm

        from pipeline_sevlm import predict_batch

        metric = sevlm_metric
        model = unwrap_sevlm(self.accelerator.unwrap_model(self.model))
        processor = self.processing_class
        emotions = list(model.config.emotions)
        was_training = model.training
        model.eval()
        records = []
        with self.accelerator.split_between_processes(list(range(len(paintings)))) as shard:
            batch_size = self.args.per_device_eval_batch_size
            starts = range(0, len(shard), batch_size)
            quiet = self.args.disable_tqdm or not self.is_local_process_zero()
            for start in tqdm(starts, desc="Generating", unit="batch", leave=False, disable=quiet):
                rows = paintings.select(shard[start : start + batch_size])[:]
                results = predict_batch(
                    model, processor, rows["image"], emotion_source="generation",
                    generate_kwargs=self.generation_kwargs,
                )
                for result, histogram, references in zip(results, rows["emotion_histogram"], rows["references"]):
                    scored = max(result["scores"], key=result["scores"].get)
                    records.append((result["emotion"], scored, result["explanation"], histogram, references))
        records = gather_object(records)
        model.train(was_training)
        majorities = [metric.majority_emotion(record[3], emotions) for record in records]
        accuracy, _, with_majority = metric.emotion_accuracy([r[0] for r in records], majorities, emotions)
        accuracy_scores = metric.emotion_accuracy([r[1] for r in records], majorities, emotions)[0]
        bleu = metric.bleu_4_fast([r[2] for r in records], [r[4] for r in records]) if records else math.nan
        return {
            "emotion_accuracy": accuracy,
            "emotion_accuracy_scores": accuracy_scores,
            "bleu_4_fast": bleu,
            "paintings": len(records),
            "majority_paintings": with_majority,
        }


class PairEpochCallback(TrainerCallback):
    """Tell the pair view which epoch starts, so that pairs are re-drawn each epoch (also when resuming).

    accelerate's DataLoaderShard.set_epoch reaches the sampler but not the dataset when the sampler is seedable.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.set_epoch(math.floor((state.epoch or 0) + 1e-6))


class SevlmEarlyStoppingCallback(TrainerCallback, ExportableState):
    """Stop after `patience` evaluations in which none of `metrics` improved (the reference: neither emotion accuracy
    nor BLEU-4; `train` adds --metric_for_best_model, see `early_stopping_metrics`). Only the periodic evaluations count (`eval_*`), not the final test evaluation. An undefined value
    (NaN: no painting with a majority emotion) is no evidence either way and is left out; when none of `metrics` is
    defined, the validation loss is watched instead. Its state is saved in checkpoints (the Trainer restores it on
    resume: --restore_callback_states_from_checkpoint), so a resumed run keeps counting."""

    def __init__(self, patience, metrics, best=None, stale=0):
        self.patience = patience
        self.metrics = list(metrics)
        self.best = dict(best or {})
        self.stale = stale
        self.said_undefined = False

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        if not any(f"eval_{name}" in metrics for name in self.metrics):
            return  # not a periodic evaluation (e.g. the test split after training)
        values = {name: metrics.get(f"eval_{name}") for name in self.metrics}
        watched = {name: value for name, value in values.items() if is_defined(value)}
        if not watched and is_defined(metrics.get("eval_loss")):
            watched = {"loss": metrics["eval_loss"]}
            if not self.said_undefined and args.should_log:
                logger.warning(f"Early stopping watches the validation loss: {', '.join(self.metrics)} undefined.")
            self.said_undefined = True
        if not watched:
            return
        improved = False
        for name, value in watched.items():
            if is_better(name, value, self.best.get(name)):
                self.best[name] = value
                improved = True
        self.stale = 0 if improved else self.stale + 1
        if self.patience and self.stale >= self.patience:
            logger.warning(f"Early stopping: {self.stale} evaluations without improvement of {', '.join(watched)}.")
            control.should_training_stop = True

    def state(self):
        return {"args": {"patience": self.patience, "metrics": self.metrics}, "attributes": {"best": self.best, "stale": self.stale}}


class NormalModesCallback(TrainerCallback):
    """Give each checkpoint the file modes of other outputs (`sevlm.io.normal_modes`): safetensors writes its
    weights readable by their owner only."""

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if args.should_save and checkpoint.is_dir():
            normal_modes(checkpoint)


class BestModelsCallback(TrainerCallback):
    """Keep the best model by each of `metrics` as a complete, loadable folder `<output_dir>/best_<metric>` (weights,
    code, processor, pipeline, model card), replaced through a staging folder when a better evaluation comes. An
    undefined value (NaN) never makes a best model.

    The best value so far is read back from the folder's `eval_results.json`, so a resumed run continues from it.
    """

    def __init__(self, metrics, save_folder):
        self.metrics = list(metrics)
        self.save_folder = save_folder  # callable(folder name, metrics)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not args.should_save or not metrics:
            return
        for name in self.metrics:
            value = metrics.get(f"eval_{name}")
            if not is_defined(value):
                continue
            folder = f"{BEST_FOLDER_PREFIX}{name}"
            if is_better(name, value, self.recorded(Path(args.output_dir) / folder, name)):
                self.save_folder(folder, {**metrics, "step": state.global_step})

    @staticmethod
    def recorded(folder, name):
        try:
            value = json.loads((folder / "eval_results.json").read_text())[f"eval_{name}"]
        except (OSError, ValueError, KeyError):
            return None
        return value if is_defined(value) else None


# ----------------------------------------------------------------------------- which evaluation each model is
def best_model_report(log_history, best_metrics, final_metric=None):
    """Which periodic evaluation (of `log_history`) each kept model comes from: every `best_<metric>` folder of
    `best_metrics`, and the final model when --load_best_model_at_end chooses it by `final_metric`.

    Returns `{"best_<metric>" or "final": {"metric", "value", "step", "epoch", "evaluations", "first_evaluation"}}`
    (a metric never defined has no entry). A model that is the first evaluation's although later evaluations came,
    because its metric never beat its first value, also has a `note` saying so and why: it was kept for coming
    first, not for being better, and is barely trained."""
    periodic = [entry for entry in log_history if "step" in entry and any(key.startswith("eval_") for key in entry)]
    targets = [(f"{BEST_FOLDER_PREFIX}{name}", name) for name in best_metrics]
    if final_metric:
        targets.append(("final", final_metric.removeprefix("eval_")))
    report = {}
    for label, name in targets:
        values = [(entry, entry[f"eval_{name}"]) for entry in periodic if is_defined(entry.get(f"eval_{name}"))]
        if not values:
            continue
        best_entry, best = None, None
        for entry, value in values:
            if is_better(name, value, best):
                best_entry, best = entry, value
        first_entry = values[0][0]
        report[label] = {
            "metric": f"eval_{name}",
            "value": best,
            "step": best_entry["step"],
            "epoch": best_entry.get("epoch"),
            "evaluations": len(values),
            "first_evaluation": best_entry is first_entry,
        }
        if best_entry is first_entry and len(values) > 1:
            report[label]["note"] = first_model_note(label, name, values, periodic)
    return report


def first_model_note(label, name, values, periodic):
    """What to say of a kept model that is the first evaluation's (see `best_model_report`)."""
    first_entry, first = values[0]
    what = f"The final model (--load_best_model_at_end, chosen by eval_{name})" if label == "final" else f"{label}/"
    epoch = first_entry.get("epoch")
    when = f"step {first_entry['step']}" + (f", epoch {epoch:g}" if epoch is not None else "")
    direction = "fell below" if name == "loss" else "rose above"
    later = len(values) - 1
    text = (
        f"{what} is the model of the first evaluation ({when}): eval_{name} never {direction} its first value "
        f"({first:.4g}) in the {later} evaluation{'s' if later > 1 else ''} after it"
    )
    last = values[-1][0]
    counted = last.get("eval_majority_paintings" if name in ACCURACY_METRICS else "eval_paintings")
    if name != "loss" and isinstance(counted, int):
        what_counted = "with a majority emotion" if name in ACCURACY_METRICS else ""
        text += f" on {counted} validation painting{'s' if counted != 1 else ''} {what_counted}".rstrip()
    losses = [entry["eval_loss"] for entry in periodic if is_defined(entry.get("eval_loss"))]
    if name != "loss" and len(losses) > 1 and min(losses) < losses[0]:
        text += f", while eval_loss fell from {losses[0]:.4g} to {min(losses):.4g}"
    text += ". It is kept for coming first, not for being better, and has had only the training before that evaluation"
    if name != "loss" and isinstance(counted, int) and counted < SMALL_VALIDATION:
        text += (
            f"; {counted} validation painting{'s are' if counted != 1 else ' is'} too few for eval_{name} to move: "
            "give the validation split more (sevlm-prepare --validation_size) or choose by the loss "
            "(--metric_for_best_model loss)"
        )
    return text + "."


# ------------------------------------------------------------------------------------------ checkpoints
def resolve_checkpoint(training_args):
    """`--resume_from_checkpoint true` -> the newest COMPLETE, finite checkpoint.

    The Trainer writes `trainer_state.json` after the weights, optimizer and RNG states: a checkpoint without a
    readable one was cut off mid-write (e.g. a killed job) and is set aside as `*.incomplete`. A checkpoint whose
    weights hold NaN or infinity, or whose last evaluation loss is not finite, diverged: it is set aside as
    `*.diverged`.
    """
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("false", "0", "no", ""):
        return None
    if str(value).lower() not in ("true", "1", "yes"):
        problem = checkpoint_problem(value)
        if problem:
            raise ValueError(f"--resume_from_checkpoint {value} cannot be resumed: {problem}.")
        return value
    output_dir = training_args.output_dir
    # The main process sets the bad ones aside first; the others then find the same newest good one.
    with training_args.main_process_first(desc="choosing the checkpoint to resume"):
        while os.path.isdir(output_dir) and (path := get_last_checkpoint(output_dir)) is not None:
            problem = checkpoint_problem(path)
            if not problem:
                return path
            if training_args.process_index != 0:
                raise RuntimeError(f"{path} {problem}, and only the main process sets checkpoints aside.")
            path = Path(path)
            aside = path.with_name(path.name + (".incomplete" if "trainer_state.json" in problem else ".diverged"))
            logger.warning(f"{display_path(path)} {problem}: moved to {aside.name}.")
            shutil.rmtree(aside, ignore_errors=True)
            path.rename(aside)
    logger.warning(f"No complete checkpoint in {display_path(output_dir)}: starting from scratch.")
    return None


def is_complete_checkpoint(path):
    return checkpoint_problem(path) is None


def checkpoint_problem(path):
    """Why a checkpoint cannot be resumed (None when it can)."""
    try:
        state = json.loads((Path(path) / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "has no readable trainer_state.json (interrupted while saving)"
    losses = [entry["eval_loss"] for entry in state.get("log_history", []) if "eval_loss" in entry]
    if losses and (losses[-1] is None or not math.isfinite(losses[-1])):
        return f"diverged (evaluation loss {losses[-1]})"
    from safetensors import safe_open

    for weights in sorted(Path(path).glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt") as tensors:
                for key in tensors.keys():
                    tensor = tensors.get_tensor(key)
                    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                        return f"diverged (non-finite weights in {weights.name}: {key})"
        except Exception as error:  # a truncated file
            return f"has unreadable weights ({weights.name}: {error})"
    return None


# ---------------------------------------------------------------------------------------------- saving
def write_model_folder(trainer, processor, folder, metrics, card_fields=None):
    """A plain SEVLM model folder into the (new, empty) `folder`: LoRA merged, safetensors, code files, processor,
    `art-emotion` pipeline and a model card with `metrics`. `card_fields`: the training corpus and VAD lexicon, for
    the card (`training_card_fields`). Returns the plain model."""
    from sevlm.hub import add_pipeline_to_folder, training_card_fields, write_model_card

    model = plain_model(trainer.model)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    write_model_card(folder, metrics=metrics, **training_card_fields(model, **(card_fields or {})))
    return model


def run_results(train_metrics, metrics):
    """The run's results files: `{file name: metrics}` as the Trainer names them (train_, eval_, test_results.json
    and all_results.json with all of them); a split that was not evaluated has no file."""
    results = {"train_results.json": dict(train_metrics)}
    for prefix in ("eval", "test"):
        split = {key: value for key, value in metrics.items() if key.startswith(f"{prefix}_")}
        if split:
            results[f"{prefix}_results.json"] = split
    results["all_results.json"] = {key: value for split in results.values() for key, value in split.items()}
    return results


# --------------------------------------------------------------------------------------------------- build
def build_trainer(model_args, data_args, training_args, checkpoint=None, outputs=None):
    """Everything up to `trainer.train()`: corpus, processor, model (LoRA), views, collators, SevlmTrainer.
    `outputs`: the run's `RunOutputs` (new, unchecked, when not given)."""
    check_new_model_inputs(model_args)
    corpus = load_corpus(data_args)
    vision_config = None
    if _is_config_file(model_args.vision_model_name_or_path):
        vision_config = CLIPVisionConfig.from_json_file(model_args.vision_model_name_or_path)
    processor = build_processor(model_args, data_args, corpus, vision_config, checkpoint)
    model = build_model(model_args, processor, vision_config)
    if model_args.model_name_or_path and [emotion_key(n) for n in model.config.emotions] != [emotion_key(n) for n in processor.emotions]:
        raise ValueError(
            f"--model_name_or_path {model_args.model_name_or_path} predicts {model.config.emotions}, not the corpus's "
            f"{processor.emotions}."
        )
    freeze_switched_off_modules(model)
    if model_args.lora_r > 0:
        model = apply_lora(model, model_args)
    config = unwrap_sevlm(model).config

    def training_view(split):
        if config.use_contrastive_loss:
            return PairedPaintingDataset(corpus[split], seed=training_args.seed), SevlmPairCollator(processor)
        return AnnotationDataset(corpus[split]), SevlmCollator(processor)

    train_dataset, collator = training_view(data_args.train_split)
    if not len(train_dataset):
        raise ValueError(
            f"No painting of --train_split {data_args.train_split} has two annotations with different emotions, which "
            "the contrastive loss pairs; train without it (--use_contrastive_loss false) or on a corpus with such "
            "paintings."
        )
    paintings = {}
    eval_dataset = None
    if training_args.eval_strategy != "no":
        if not len(corpus[data_args.eval_split]):
            raise ValueError(
                f"--eval_split {data_args.eval_split} of --dataset_path {data_args.dataset_path} is empty, so nothing "
                "can be evaluated or chosen as the best model. Prepare the corpus again with a validation split (e.g. "
                "sevlm-prepare --validation_size ...), name another split with --eval_split, or train without "
                "evaluation: --eval_strategy no --load_best_model_at_end false."
            )
        eval_dataset = training_view(data_args.eval_split)[0]
        paintings["eval"] = evaluation_view(corpus[data_args.eval_split])
        if data_args.max_eval_paintings:
            paintings["eval"] = paintings["eval"].select(range(min(data_args.max_eval_paintings, len(paintings["eval"]))))
    test_dataset = None
    if data_args.test_split and data_args.test_split in corpus:
        if len(corpus[data_args.test_split]):
            test_dataset = training_view(data_args.test_split)[0]
            paintings["test"] = evaluation_view(corpus[data_args.test_split])
        elif training_args.should_log:
            logger.warning(f"--test_split {data_args.test_split} is empty: no test metrics (or pass --test_split '').")
    loss_views = {"eval": eval_dataset, "test": test_dataset}
    check_defined_metrics(paintings, loss_views, processor.emotions, data_args, training_args)
    callbacks = [NormalModesCallback()]
    callbacks += [PairEpochCallback(train_dataset)] if hasattr(train_dataset, "set_epoch") else []
    if eval_dataset is not None and data_args.early_stopping_patience > 0:
        callbacks.append(SevlmEarlyStoppingCallback(data_args.early_stopping_patience, early_stopping_metrics(data_args, training_args)))
    trainer = SevlmTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=processor,
        callbacks=callbacks,
        evaluation_paintings=paintings,
        test_dataset=test_dataset,
        generation_kwargs={"max_new_tokens": data_args.generation_max_new_tokens, "num_beams": data_args.generation_num_beams},
        learning_rates={"vad_encoder": model_args.vad_learning_rate, "vision_model": model_args.vision_learning_rate},
    )
    # What the model card says of the training data and the lexicon, for every folder this run saves.
    trainer.card_fields = {"hf_dataset": corpus[data_args.train_split], "vad_lexicon": model_args.vad_lexicon}
    best_metrics = metric_list(data_args.best_model_metrics) if eval_dataset is not None else []
    trainer.outputs = outputs or RunOutputs(training_args, best_metrics, resuming=checkpoint is not None)
    if best_metrics:

        def save_best(name, metrics):
            def write(staging):
                write_model_folder(trainer, processor, staging, metrics, trainer.card_fields)
                write_json_atomic(staging / "eval_results.json", metrics)

            trainer.outputs.save_best(name, write)

        trainer.add_callback(BestModelsCallback(best_metrics, save_best))
    return trainer, processor


def check_defined_metrics(paintings, loss_views, emotions, data_args, training_args):
    """Say, once and before training, which metric of which split will be undefined and why (emotion accuracy
    without a painting with a majority emotion; the loss without a painting with two different emotions when the
    contrastive loss pairs them), and choose the best model by a defined one when --metric_for_best_model is not:
    the validation loss, else emotion accuracy, else BLEU-4."""
    for prefix, view in paintings.items():
        split = data_args.eval_split if prefix == "eval" else data_args.test_split
        undefined = {}
        histograms = view.select_columns(["emotion_histogram"]).with_format(None)[:]["emotion_histogram"]
        if not any(sevlm_metric.majority_emotion(histogram, emotions) for histogram in histograms):
            reason = (
                f"none of its {len(histograms)} evaluated paintings has a majority emotion (more than half of its "
                "annotations naming one emotion), so there is nothing to be right or wrong about"
            )
            undefined.update({name: reason for name in ACCURACY_METRICS})
        if loss_views.get(prefix) is not None and not len(loss_views[prefix]):
            undefined["loss"] = (
                "none of its paintings has two annotations with different emotions, the pairs the contrastive loss "
                "compares (train with --use_contrastive_loss false to have a loss on any annotation)"
            )
        for reason in dict.fromkeys(undefined.values()):  # each reason once, with the metrics it leaves undefined
            names = [name for name, why in undefined.items() if why == reason]
            shown = "NaN (null in the results files)" if "loss" not in names else "missing from the metrics"
            if training_args.should_log:
                logger.warning(
                    f"On the {split} split, {' and '.join(f'{prefix}_{name}' for name in names)} cannot be computed: "
                    f"{reason}. It is {shown}, never 0, and early stopping and the best_* folders go by the metrics "
                    "that are."
                )
        chosen = (training_args.metric_for_best_model or "").removeprefix("eval_")
        if prefix == "eval" and chosen in undefined:
            replacement = next(name for name in ("loss", "emotion_accuracy", "bleu_4_fast") if name not in undefined)
            training_args.metric_for_best_model = replacement
            training_args.greater_is_better = replacement != "loss"
            if training_args.should_log:
                logger.warning(
                    f"The best model is chosen by {prefix}_{replacement} instead of {prefix}_{chosen}, which cannot "
                    "be computed."
                )


# ---------------------------------------------------------------------------------------------------- main
def configure_logging(training_args):
    """transformers' warnings, plus the Trainer's own progress lines on the main process (not the configuration dumps
    and 'saved in' lines of every other transformers module); --log_level sets everything."""
    logging.set_verbosity(training_args.get_process_log_level())
    if training_args.should_log and training_args.log_level == "passive":
        logging.get_logger("transformers.trainer").setLevel(std_logging.INFO)
    checkpoint_notes = logging.get_logger("transformers.trainer_utils")
    if checkpoint_order_note not in checkpoint_notes.filters:
        checkpoint_notes.addFilter(checkpoint_order_note)
    logging.enable_default_handler()


def checkpoint_order_note(record):
    """False for the Trainer's 'mtime may not be reliable on this filesystem' warning. The Trainer orders checkpoints
    by modification time and warns when they were saved within a second of each other (a small corpus of one's own
    makes an epoch that short); it then orders them by step, which is the right order for checkpoint-N folders."""
    return "mtime may not be reliable" not in record.getMessage()


def train(model_args, data_args, training_args):
    """Train, evaluate, save; returns the final metrics (validation and test)."""
    check_arguments(model_args, data_args, training_args)
    configure_logging(training_args)
    if training_args.torch_num_threads:
        torch.set_num_threads(training_args.torch_num_threads)
    set_seed(training_args.seed)
    push = training_args.push_to_hub
    training_args.push_to_hub = False  # the final, merged folder is pushed once at the end
    checkpoint = resolve_checkpoint(training_args)
    best_metrics = metric_list(data_args.best_model_metrics) if training_args.eval_strategy != "no" else []
    outputs = RunOutputs(training_args, best_metrics, resuming=checkpoint is not None).check()
    trainer, processor = build_trainer(model_args, data_args, training_args, checkpoint, outputs)
    outputs.set_aside()
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    final_metric = training_args.metric_for_best_model if training_args.load_best_model_at_end else None
    best_models = best_model_report(trainer.state.log_history, trainer.outputs.best_metrics, final_metric)
    metrics = trainer.evaluate() if trainer.eval_dataset is not None else {}
    if trainer.test_dataset is not None:
        metrics.update(trainer.evaluate(eval_dataset=trainer.test_dataset, metric_key_prefix="test"))
    if training_args.should_save:

        def write(staging):
            write_model_folder(trainer, processor, staging, metrics, trainer.card_fields)
            train_metrics = {**train_output.metrics, **({"best_models": best_models} if best_models else {})}
            for name, values in run_results(train_metrics, metrics).items():
                write_json_atomic(staging / name, values)

        outputs.save_final(write)
        outputs.finish()
        if push:
            from sevlm.hub import push_folder

            push_folder(training_args.output_dir, training_args.hub_model_id, private=training_args.hub_private_repo, token=training_args.hub_token)
    if training_args.should_log:
        # Last, where it is read: a kept model that training never made better than its first evaluation.
        for report in best_models.values():
            if "note" in report:
                logger.warning(report["note"])
    trainer.accelerator.wait_for_everyone()
    return metrics
