"""Training SEVLM with the Hugging Face Trainer: the arguments (`ModelArguments`, `DataArguments`,
`SevlmTrainingArguments`), the corpus, processor and model, `SevlmTrainer` (loss terms, per-module learning rates,
non-finite guards, generation metrics in every evaluation), its callbacks (pair epochs, early stopping on several
metrics, best models as folders), checkpoints, and `train(model_args, data_args, training_args)`. The command is
`train_sevlm.py` (`sevlm-train`).
"""

import copy
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import (
    CLIPVisionConfig,
    GPT2Config,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from modeling_sevlm import SevlmForConditionalGeneration
from processing_sevlm import SevlmProcessor
from sevlm.data.schema import corpus_emotions
from sevlm.data.views import (
    AnnotationDataset,
    PairedPaintingDataset,
    SevlmCollator,
    SevlmPairCollator,
    evaluation_view,
)
from sevlm.evaluation import metric as sevlm_metric
from sevlm.io import display_path, json_safe, swap_in
from sevlm.tokenizer import train_tokenizer
from sevlm.vad import build_vad_table

logger = logging.get_logger("train_sevlm")

NRC_VAD_HELP = (
    "Download the NRC-VAD lexicon (https://saifmohammad.com/WebPages/nrc-vad.html, free for research) and pass "
    "--vad_lexicon path/to/NRC-VAD-Lexicon.txt, or train the baseline without VAD with --no_vad."
)
LOSS_TERMS = ("lm_loss", "vad_loss", "contrastive_loss")
# The generation metrics of every training-time evaluation (greedy, light BLEU tokenisation: see bleu_4_fast).
GENERATION_METRICS = ("emotion_accuracy", "emotion_accuracy_scores", "bleu_4_fast")
RENAMED_METRICS = {"bleu_4": "bleu_4_fast"}  # training-time names before the paper's protocol got its own names
BEST_FOLDER_PREFIX = "best_"
RUN_FILES = ("train_results.json", "eval_results.json", "test_results.json", "all_results.json")


# ---------------------------------------------------------------------------------------------- arguments
@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved SEVLM folder or Hub id to continue training (instead of the two parts below)."}
    )
    vision_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "CLIP vision tower: a name/path with weights (openai/clip-vit-base-patch16) or a CLIPVisionConfig JSON file (random init)."},
    )
    text_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "GPT-2 decoder: a name/path with weights (distilgpt2) or a GPT2Config JSON file (random init)."},
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Tokenizer (default: the decoder's). When the decoder is a config file, a byte-level BPE is trained on the training explanations, the emotion names, the prompt and the connector."},
    )
    tokenizer_vocab_size: int = field(default=2000, metadata={"help": "Vocabulary size of a tokenizer trained here."})
    prompt_text: str = field(default=" the emotion is", metadata={"help": "Text after <bos> that the model continues with the emotion name (a new model only)."})
    connector_text: str = field(default=" because", metadata={"help": "Text between the emotion and the explanation, e.g. ' since' (a new model only)."})
    vad_lexicon: str | None = field(default=None, metadata={"help": "NRC-VAD style lexicon file (word, V, A, D; 0..1 or -1..1)."})
    vad_lexicon_language: str = field(
        default="en",
        metadata={"help": "Language of the lexicon's words. English words are also looked up by lemma; other languages by surface form only."},
    )
    no_vad: bool = field(default=False, metadata={"help": "Baseline without VAD: no VAD fusion and no VAD loss (no lexicon needed)."})
    use_vad_embedding: bool = field(default=True, metadata={"help": "Fuse VAD features into the explanation embeddings."})
    use_vad_loss: bool = field(default=True, metadata={"help": "Train the VAD head (next-token VAD regression)."})
    use_contrastive_loss: bool = field(default=True, metadata={"help": "Contrastive loss on pairs (same painting, different emotions)."})
    lm_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the cross-entropy term."})
    vad_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the VAD MSE term."})
    contrastive_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the contrastive term."})
    vad_encoder_causal: bool = field(default=True, metadata={"help": "Causal VAD encoder (false: the reference's bidirectional one)."})
    freeze_vision: bool = field(default=True, metadata={"help": "Keep the CLIP vision tower frozen (the paper's recipe)."})
    vad_learning_rate: float = field(default=4e-5, metadata={"help": "Learning rate of the VAD encoder."})
    vision_learning_rate: float = field(default=2e-5, metadata={"help": "Learning rate of the vision tower when it is not frozen."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank on the decoder's self-attention and MLP (0: full fine-tuning). Merged into plain weights on save."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})


@dataclass
class DataArguments:
    dataset_path: str | None = field(
        default=None,
        metadata={"help": "A prepared corpus (save_to_disk folder from dataset_scripts/prepare_corpus.py, prepare_artemis.py or make_demo_corpus.py). Its emotion list is the model's."},
    )
    make_demo_corpus: bool = field(default=False, metadata={"help": "Generate the ArtEmis-style demo corpus at --dataset_path when it is missing."})
    demo_taxonomy: str = field(default="artemis", metadata={"help": "Which demo corpus --make_demo_corpus generates: artemis or product-reviews."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str = field(default="validation", metadata={"help": "Split for periodic evaluation (loss, emotion accuracy, BLEU-4)."})
    test_split: str | None = field(default="test", metadata={"help": "Split evaluated once after training (empty: skip)."})
    max_eval_paintings: int | None = field(
        default=500, metadata={"help": "Paintings used by the periodic generation metrics (0 or empty: the whole split, as the paper)."}
    )
    max_length: int = field(default=30, metadata={"help": "Longest training sequence in tokens (at least prompt + longest emotion + connector + 2)."})
    generation_max_new_tokens: int = field(default=25, metadata={"help": "Tokens generated per painting during evaluation."})
    generation_num_beams: int = field(default=1, metadata={"help": "Beams during evaluation (1: greedy, the paper's setting)."})
    early_stopping_patience: int = field(
        default=10,
        metadata={"help": "Stop at the N-th evaluation in a row in which none of --early_stopping_metrics improved (0: never). The reference code stops when more than 10 did: its recipe files use 11."},
    )
    early_stopping_metrics: str = field(
        default="emotion_accuracy,bleu_4_fast",
        metadata={"help": "Comma-separated evaluation metrics watched by early stopping (the paper: emotion accuracy and BLEU-4)."},
    )
    best_model_metrics: str = field(
        default="emotion_accuracy,bleu_4_fast",
        metadata={"help": "For each of these evaluation metrics keep the best model as a complete folder <output_dir>/best_<metric> (empty: none)."},
    )


@dataclass
class SevlmTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the paper's recipe as defaults (AdamW, wd 0, linear decay, no warm-up)."""

    output_dir: str | None = field(default="outputs/sevlm", metadata={"help": "Where checkpoints and the final model folder go."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train into an --output_dir that holds an earlier run: its checkpoints are set aside (deleted at the end) and its model is replaced once the new one is saved."},
    )
    learning_rate: float = field(default=2e-5, metadata={"help": "Learning rate of the decoder and the SEVLM heads."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (biases and norms are always exempt)."})
    adam_epsilon: float = field(default=1e-6, metadata={"help": "AdamW epsilon (the reference code: 1e-6)."})
    max_grad_norm: float = field(default=0.0, metadata={"help": "Gradient clipping norm (0: none, as the reference code)."})
    lr_scheduler_type: str = field(default="linear", metadata={"help": "Scheduler (linear decay in the paper)."})
    num_train_epochs: float = field(default=35.0, metadata={"help": "Epochs (the paper: up to 35)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Paintings per device and step: 32 pairs = 64 sequences with the contrastive loss."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Paintings per device for evaluation."})
    eval_strategy: str = field(default="steps", metadata={"help": "When to evaluate: no, steps, epoch."})
    eval_steps: float | None = field(default=2000, metadata={"help": "Evaluate every N steps."})
    save_strategy: str = field(default="steps", metadata={"help": "When to save checkpoints (follows eval for best-model tracking)."})
    save_steps: float = field(default=2000, metadata={"help": "Save every N steps."})
    save_total_limit: int | None = field(default=3, metadata={"help": "Checkpoints kept (the best one is always kept)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint (by --metric_for_best_model) at the end: the final folder."})
    metric_for_best_model: str | None = field(default="emotion_accuracy", metadata={"help": "emotion_accuracy, emotion_accuracy_scores, bleu_4_fast or loss."})
    logging_steps: float = field(default=50, metadata={"help": "Log the loss terms every N steps."})
    logging_nan_inf_filter: bool = field(default=False, metadata={"help": "Never hide non-finite losses (training stops on them)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: the collators read raw columns."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Data loading worker processes."})
    torch_num_threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads for torch (default: torch's choice). Tiny models run as fast on 1 and are then immune to a busy machine."},
    )


def check_arguments(model_args, data_args, training_args):
    """Argument errors that would otherwise surface minutes into a run, or never."""
    if training_args.fp16 and not torch.cuda.is_available():
        raise ValueError("--fp16 needs a CUDA device and none is available here; use --bf16 (it also works on CPU) or drop --fp16.")
    name = training_args.metric_for_best_model
    if name:
        bare = name[len("eval_"):] if name.startswith("eval_") else name
        if bare in RENAMED_METRICS:
            logger.warning(f"--metric_for_best_model {name}: the training-time BLEU-4 is now called {RENAMED_METRICS[bare]}; using it.")
            training_args.metric_for_best_model = RENAMED_METRICS[bare]
    for flag in ("early_stopping_metrics", "best_model_metrics"):
        names = metric_list(getattr(data_args, flag))
        unknown = [metric for metric in names if metric not in GENERATION_METRICS + ("loss",)]
        if unknown:
            raise ValueError(f"--{flag}: unknown metric(s) {unknown}; choose from {list(GENERATION_METRICS) + ['loss']}.")


def metric_list(text):
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return [RENAMED_METRICS.get(name, name) for name in names]


# --------------------------------------------------------------------------------------------- output dir
def previous_run_contents(output_dir):
    """What an earlier run left in `output_dir`: a finished model, checkpoints, best-model folders, results."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    if (output_dir / "model.safetensors").is_file() or (output_dir / "model.safetensors.index.json").is_file():
        found.append("a trained model (model.safetensors)")
    found += [f"{path.name}" for path in sorted(output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")) if path.is_dir()]
    found += [f"{path.name}/" for path in sorted(output_dir.glob(f"{BEST_FOLDER_PREFIX}*")) if path.is_dir()]
    found += [name for name in RUN_FILES if (output_dir / name).is_file()]
    return found


def check_output_dir(training_args, resuming):
    """Never train over an earlier run by accident (its model would be replaced and its checkpoints rotated away):
    an --output_dir holding one is an error unless the run resumes it or --overwrite_output_dir is given."""
    output_dir = Path(training_args.output_dir)
    found = previous_run_contents(output_dir)
    if not found or resuming or training_args.overwrite_output_dir:
        return bool(found) and not resuming
    listed = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
    raise FileExistsError(
        f"--output_dir {display_path(output_dir)} holds an earlier run ({listed}). Pass --resume_from_checkpoint true to "
        "continue it, --overwrite_output_dir true to train a new model in its place (the old model stays until the "
        "new one is saved), or choose another --output_dir. (For the demo: python train_sevlm.py --args_file "
        "configs/demo.args --overwrite_output_dir true.)"
    )


def set_aside_previous_run(training_args):
    """With --overwrite_output_dir: the earlier run's checkpoints and best-model folders move into
    `<output_dir>/.previous-run/` (so that they neither collide with the new ones nor get resumed), deleted once the
    new model is saved; its model files stay in place until the new ones replace them."""
    output_dir = Path(training_args.output_dir)
    aside = output_dir / ".previous-run"
    if training_args.process_index == 0:
        shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir()
        for path in list(output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")) + list(output_dir.glob(f"{BEST_FOLDER_PREFIX}*")):
            os.replace(path, aside / path.name)
        logger.warning(f"--overwrite_output_dir: the earlier run's checkpoints are set aside in {aside} until the new model is saved.")
    return aside


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
    corpus = load_from_disk(str(path))
    for split in (data_args.train_split, data_args.eval_split):
        if split and split not in corpus:
            raise ValueError(f"--dataset_path {path} has splits {list(corpus)}, not {split!r}.")
    return corpus


def _is_config_file(name):
    return name is not None and str(name).endswith(".json") and Path(name).is_file()


def build_processor(model_args, data_args, corpus, vision_config, checkpoint=None):
    """The processor: from the checkpoint being resumed (its tokenizer is what the weights were trained with), from
    --model_name_or_path, or new, with the corpus's emotion list."""
    emotions = corpus_emotions(corpus[data_args.train_split])
    source = checkpoint or model_args.model_name_or_path
    if source:
        processor = SevlmProcessor.from_pretrained(source)
        if [name.lower() for name in processor.emotions] != [name.lower() for name in emotions]:
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
    elif tokenizer is None:
        tokenizer = model_args.text_model_name_or_path
    vision = model_args.vision_model_name_or_path
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
    if not model_args.vision_model_name_or_path or not model_args.text_model_name_or_path:
        raise ValueError("Pass --vision_model_name_or_path and --text_model_name_or_path (or --model_name_or_path).")
    uses_vad = not model_args.no_vad and (model_args.use_vad_embedding or model_args.use_vad_loss)
    if uses_vad and not model_args.vad_lexicon:
        raise ValueError(f"This run uses VAD (fusion/loss) but no lexicon was given. {NRC_VAD_HELP}")
    if uses_vad and not Path(model_args.vad_lexicon).is_file():
        raise FileNotFoundError(f"--vad_lexicon {model_args.vad_lexicon} not found. {NRC_VAD_HELP}")
    text = model_args.text_model_name_or_path
    text = GPT2Config.from_json_file(text) if _is_config_file(text) else text
    vision = model_args.vision_model_name_or_path
    return SevlmForConditionalGeneration.from_vision_text(
        vision_config if _is_config_file(vision) else vision,
        text,
        processor,
        vad_table=build_vad_table(processor.tokenizer, model_args.vad_lexicon, None, model_args.vad_lexicon_language)
        if uses_vad
        else None,
        use_vad_embedding=model_args.use_vad_embedding and not model_args.no_vad,
        use_vad_loss=model_args.use_vad_loss and not model_args.no_vad,
        use_contrastive_loss=model_args.use_contrastive_loss,
        lm_loss_weight=model_args.lm_loss_weight,
        vad_loss_weight=model_args.vad_loss_weight,
        contrastive_loss_weight=model_args.contrastive_loss_weight,
        vad_encoder_causal=model_args.vad_encoder_causal,
        freeze_vision=model_args.freeze_vision,
    )


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
        greedy generations on an evaluation view, through the project's one prediction function."""
        from pipeline_sevlm import predict_batch

        metric = sevlm_metric
        model = unwrap_sevlm(self.accelerator.unwrap_model(self.model))
        processor = self.processing_class
        emotions = list(model.config.emotions)
        was_training = model.training
        model.eval()
        indices = list(range(len(paintings)))
        records = []
        with self.accelerator.split_between_processes(indices) as shard:
            batch_size = self.args.per_device_eval_batch_size
            for start in range(0, len(shard), batch_size):
                rows = paintings.select(shard[start : start + batch_size])[:]
                results = predict_batch(
                    model, processor, rows["image"], emotion_source="generation", generate_kwargs=self.generation_kwargs
                )
                for result, histogram, references in zip(results, rows["emotion_histogram"], rows["references"]):
                    scored = max(result["scores"], key=result["scores"].get)
                    records.append((result["emotion"], scored, result["explanation"], histogram, references))
        if self.args.world_size > 1:
            from accelerate.utils import gather_object

            records = gather_object(records)
        model.train(was_training)
        majorities = [metric.majority_emotion(record[3], emotions) for record in records]
        accuracy = metric.emotion_accuracy([r[0] for r in records], majorities, emotions)[0]
        accuracy_scores = metric.emotion_accuracy([r[1] for r in records], majorities, emotions)[0]
        bleu = metric.bleu_4_fast([r[2] for r in records], [r[4] for r in records]) if records else math.nan
        finite = lambda value: value if math.isfinite(value) else 0.0  # noqa: E731 - no painting with a majority
        return {
            "emotion_accuracy": finite(accuracy),
            "emotion_accuracy_scores": finite(accuracy_scores),
            "bleu_4_fast": finite(bleu),
            "paintings": len(records),
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
    nor BLEU-4). Only the periodic evaluations count (`eval_*`), not the final test evaluation. Its state is saved in
    checkpoints, so a resumed run keeps counting."""

    def __init__(self, patience, metrics, best=None, stale=0):
        self.patience = patience
        self.metrics = list(metrics)
        self.best = dict(best or {})
        self.stale = stale

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        values = {name: (metrics or {}).get(f"eval_{name}") for name in self.metrics}
        if any(value is None for value in values.values()):
            return  # not a periodic evaluation (e.g. the test split after training)
        improved = False
        for name, value in values.items():
            lower_is_better = name == "loss"
            previous = self.best.get(name)
            if previous is None or (value < previous if lower_is_better else value > previous):
                self.best[name] = value
                improved = True
        self.stale = 0 if improved else self.stale + 1
        if self.patience and self.stale >= self.patience:
            logger.warning(f"Early stopping: {self.stale} evaluations without improvement of {', '.join(self.metrics)}.")
            control.should_training_stop = True

    def state(self):
        return {"args": {"patience": self.patience, "metrics": self.metrics}, "attributes": {"best": self.best, "stale": self.stale}}


class BestModelsCallback(TrainerCallback):
    """Keep the best model by each of `metrics` as a complete, loadable folder `<output_dir>/best_<metric>` (weights,
    code, processor, pipeline, model card), replaced through a staging folder when a better evaluation comes.

    The best value so far is read back from the folder's `eval_results.json`, so a resumed run continues from it.
    """

    def __init__(self, metrics, save_folder):
        self.metrics = list(metrics)
        self.save_folder = save_folder  # callable(folder, metrics)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not args.should_save or not metrics:
            return
        for name in self.metrics:
            value = metrics.get(f"eval_{name}")
            if value is None:
                continue
            folder = Path(args.output_dir) / f"{BEST_FOLDER_PREFIX}{name}"
            previous = self.recorded(folder, name)
            lower_is_better = name == "loss"
            if previous is None or (value < previous if lower_is_better else value > previous):
                self.save_folder(folder, {**metrics, "step": state.global_step})

    @staticmethod
    def recorded(folder, name):
        try:
            return json.loads((folder / "eval_results.json").read_text())[f"eval_{name}"]
        except (OSError, ValueError, KeyError):
            return None


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
    output_dir = Path(training_args.output_dir)
    candidates = sorted(
        (path for path in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if path.name.split("-")[-1].isdigit()),
        key=lambda path: int(path.name.split("-")[-1]),
    )
    for path in reversed(candidates):
        problem = checkpoint_problem(path)
        if not problem:
            return str(path)
        if training_args.process_index == 0:
            suffix = ".incomplete" if "trainer_state.json" in problem else ".diverged"
            logger.warning(f"{path} {problem}: moved to {path.name}{suffix}.")
            shutil.rmtree(path.with_name(path.name + suffix), ignore_errors=True)
            path.rename(path.with_name(path.name + suffix))
    logger.warning(f"No complete checkpoint in {output_dir}: starting from scratch.")
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


def restore_callback_states(trainer, checkpoint):
    """Early stopping keeps counting across a resume: its state is read back from the checkpoint's trainer_state.json
    (the Trainer only does this with --restore_callback_states_from_checkpoint)."""
    try:
        saved = json.loads((Path(checkpoint) / "trainer_state.json").read_text()).get("stateful_callbacks", {})
    except (OSError, ValueError):
        return
    for callback in trainer.callback_handler.callbacks:
        state = saved.get(type(callback).__name__)
        if isinstance(callback, SevlmEarlyStoppingCallback) and isinstance(state, dict):
            for key, value in state.get("attributes", {}).items():
                setattr(callback, key, value)


# ---------------------------------------------------------------------------------------------- saving
def save_model_folder(trainer, processor, folder, metrics, card_fields=None, results_file="eval_results.json"):
    """A plain SEVLM folder (LoRA merged, safetensors, code files, processor, `art-emotion` pipeline, model card and,
    when `results_file` is given, `metrics` in it), written beside `folder` and swapped in when complete.
    `card_fields`: the training corpus and VAD lexicon, for the model card (`training_card_fields`)."""
    from sevlm.hub import add_pipeline_to_folder, training_card_fields, write_model_card

    model = plain_model(trainer.model)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    processor.save_pretrained(staging)
    add_pipeline_to_folder(staging)
    write_model_card(staging, metrics=metrics, **training_card_fields(model, **(card_fields or {})))
    if results_file:
        (staging / results_file).write_text(json.dumps(json_safe(metrics), indent=2) + "\n")
    swap_in(staging, folder)
    return model


def save_final_model(trainer, processor, output_dir, metrics, card_fields=None):
    """The final model into `output_dir` itself (which also holds checkpoints and run logs): files written into a
    staging folder first, then moved over the old ones."""
    staging = Path(output_dir) / ".final-staging"
    save_model_folder(trainer, processor, staging, metrics, card_fields, results_file=None)
    for path in staging.iterdir():
        os.replace(path, Path(output_dir) / path.name)
    staging.rmdir()


# --------------------------------------------------------------------------------------------------- build
def build_trainer(model_args, data_args, training_args, checkpoint=None):
    """Everything up to `trainer.train()`: corpus, processor, model (LoRA), views, collators, SevlmTrainer."""
    corpus = load_corpus(data_args)
    vision_config = None
    if _is_config_file(model_args.vision_model_name_or_path):
        vision_config = CLIPVisionConfig.from_json_file(model_args.vision_model_name_or_path)
    processor = build_processor(model_args, data_args, corpus, vision_config, checkpoint)
    model = build_model(model_args, processor, vision_config)
    if model_args.model_name_or_path and [n.lower() for n in model.config.emotions] != [n.lower() for n in processor.emotions]:
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
    eval_dataset = training_view(data_args.eval_split)[0] if training_args.eval_strategy != "no" else None
    paintings = {}
    if eval_dataset is not None:
        paintings["eval"] = evaluation_view(corpus[data_args.eval_split])
        if data_args.max_eval_paintings:
            paintings["eval"] = paintings["eval"].select(range(min(data_args.max_eval_paintings, len(paintings["eval"]))))
    test_dataset = None
    if data_args.test_split and data_args.test_split in corpus:
        test_dataset = training_view(data_args.test_split)[0]
        paintings["test"] = evaluation_view(corpus[data_args.test_split])
    callbacks = [PairEpochCallback(train_dataset)] if hasattr(train_dataset, "set_epoch") else []
    if eval_dataset is not None and data_args.early_stopping_patience > 0:
        callbacks.append(SevlmEarlyStoppingCallback(data_args.early_stopping_patience, metric_list(data_args.early_stopping_metrics)))
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
    best_metrics = metric_list(data_args.best_model_metrics)
    if eval_dataset is not None and best_metrics:
        trainer.add_callback(
            BestModelsCallback(
                best_metrics, lambda folder, metrics: save_model_folder(trainer, processor, folder, metrics, trainer.card_fields)
            )
        )
    return trainer, processor


# ---------------------------------------------------------------------------------------------------- main
def train(model_args, data_args, training_args):
    """Train, evaluate, save; returns the final metrics (validation and test)."""
    check_arguments(model_args, data_args, training_args)
    logging.set_verbosity_info() if training_args.should_log else logging.set_verbosity_warning()
    logging.enable_default_handler()
    if training_args.torch_num_threads:
        torch.set_num_threads(training_args.torch_num_threads)
    set_seed(training_args.seed)
    push = training_args.push_to_hub
    training_args.push_to_hub = False  # the final, merged folder is pushed once at the end
    checkpoint = resolve_checkpoint(training_args)
    replaces_previous_run = check_output_dir(training_args, resuming=checkpoint is not None)
    trainer, processor = build_trainer(model_args, data_args, training_args, checkpoint)
    aside = set_aside_previous_run(training_args) if replaces_previous_run else None
    if checkpoint is not None:
        restore_callback_states(trainer, checkpoint)
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = trainer.evaluate() if trainer.eval_dataset is not None else {}
    if trainer.test_dataset is not None:
        metrics.update(trainer.evaluate(eval_dataset=trainer.test_dataset, metric_key_prefix="test"))
    if training_args.should_save:
        save_final_model(trainer, processor, training_args.output_dir, metrics, trainer.card_fields)
        trainer.save_metrics("train", train_output.metrics)
        for prefix in ("eval", "test"):
            split_metrics = {key: value for key, value in metrics.items() if key.startswith(f"{prefix}_")}
            if split_metrics:
                trainer.save_metrics(prefix, json_safe(split_metrics))
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        if push:
            from sevlm.hub import push_folder

            push_folder(training_args.output_dir, training_args.hub_model_id, private=training_args.hub_private_repo, token=training_args.hub_token)
    trainer.accelerator.wait_for_everyone()
    return metrics
