"""Train SEVLM with the Hugging Face Trainer (single process, `accelerate launch` or `torchrun`).

    python train_sevlm.py                       # the demo: tiny model, built-in corpus, CPU, a few minutes
    accelerate launch train_sevlm.py --fp16 \\
        --vision_model_name_or_path openai/clip-vit-base-patch16 --text_model_name_or_path distilgpt2 \\
        --dataset_path data/artemis-v1 --vad_lexicon NRC-VAD-Lexicon.txt --output_dir outputs/sevlm-artemis

With no arguments the flags in `configs/demo.args` are used; `--args_file FILE` reads flags from a file and the
flags after it override them. Every `TrainingArguments` flag works (`--help` lists them all).
"""

import json
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import (
    CLIPVisionConfig,
    EarlyStoppingCallback,
    GPT2Config,
    HfArgumentParser,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from configuration_sevlm import ARTEMIS_EMOTIONS
from dataset_scripts.views import AnnotationDataset, PairedPaintingDataset, SevlmCollator, SevlmPairCollator, evaluation_view
from modeling_sevlm import SevlmForConditionalGeneration
from processing_sevlm import SevlmProcessor, train_tokenizer

logger = logging.get_logger("train_sevlm")

REPO_ROOT = Path(__file__).resolve().parent
DEMO_ARGS = REPO_ROOT / "configs" / "demo.args"
NRC_VAD_HELP = (
    "Download the NRC-VAD lexicon (https://saifmohammad.com/WebPages/nrc-vad.html, free for research) and pass "
    "--vad_lexicon path/to/NRC-VAD-Lexicon.txt, or train the baseline without VAD with --no_vad."
)
LOSS_TERMS = ("lm_loss", "vad_loss", "contrastive_loss")


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
        metadata={"help": "Tokenizer (default: the decoder's). When the decoder is a config file, a byte-level BPE is trained on the training explanations."},
    )
    tokenizer_vocab_size: int = field(default=2000, metadata={"help": "Vocabulary size of a tokenizer trained here."})
    vad_lexicon: str | None = field(default=None, metadata={"help": "NRC-VAD style lexicon file (word, V, A, D; 0..1 or -1..1)."})
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
        default=None, metadata={"help": "A corpus prepared by dataset_scripts/prepare_artemis.py or make_demo_corpus.py (save_to_disk folder)."}
    )
    make_demo_corpus: bool = field(default=False, metadata={"help": "Generate the demo corpus at --dataset_path when it is missing."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str = field(default="validation", metadata={"help": "Split for periodic evaluation (loss, emotion accuracy, BLEU-4)."})
    test_split: str | None = field(default="test", metadata={"help": "Split evaluated once after training (empty: skip)."})
    max_eval_paintings: int | None = field(default=500, metadata={"help": "Paintings used by the periodic generation metrics (all when empty)."})
    max_length: int = field(default=30, metadata={"help": "Longest training sequence in tokens."})
    generation_max_new_tokens: int = field(default=25, metadata={"help": "Tokens generated per painting during evaluation."})
    generation_num_beams: int = field(default=1, metadata={"help": "Beams during evaluation (1: greedy, the paper's setting)."})
    early_stopping_patience: int = field(default=10, metadata={"help": "Evaluations without improvement before stopping (0: never)."})


@dataclass
class SevlmTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the paper's recipe as defaults (AdamW, wd 0, linear decay, no warm-up)."""

    output_dir: str | None = field(default="outputs/sevlm", metadata={"help": "Where checkpoints and the final model folder go."})
    learning_rate: float = field(default=2e-5, metadata={"help": "Learning rate of the decoder and the SEVLM heads."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    lr_scheduler_type: str = field(default="linear", metadata={"help": "Scheduler (linear decay in the paper)."})
    num_train_epochs: float = field(default=35.0, metadata={"help": "Epochs (the paper: up to 35)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Paintings per device and step: 32 pairs = 64 sequences with the contrastive loss."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Paintings per device for evaluation."})
    eval_strategy: str = field(default="steps", metadata={"help": "When to evaluate: no, steps, epoch."})
    eval_steps: float | None = field(default=2000, metadata={"help": "Evaluate every N steps."})
    save_strategy: str = field(default="steps", metadata={"help": "When to save checkpoints (follows eval for best-model tracking)."})
    save_steps: float = field(default=2000, metadata={"help": "Save every N steps."})
    save_total_limit: int | None = field(default=3, metadata={"help": "Checkpoints kept (the best one is always kept)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint at the end."})
    metric_for_best_model: str | None = field(default="emotion_accuracy", metadata={"help": "emotion_accuracy, bleu_4 or loss."})
    logging_steps: float = field(default=50, metadata={"help": "Log the loss terms every N steps."})
    logging_nan_inf_filter: bool = field(default=False, metadata={"help": "Never hide non-finite losses (training stops on them)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: the collators read raw columns."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Data loading worker processes."})
    torch_num_threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads for torch (default: torch's choice). Tiny models run as fast on 1 and are then immune to a busy machine."},
    )


def parse_arguments(argv=None):
    parser = HfArgumentParser((ModelArguments, DataArguments, SevlmTrainingArguments))
    argv = sys.argv[1:] if argv is None else list(argv)
    return parser.parse_args_into_dataclasses(
        args=argv,
        args_filename=None if argv else DEMO_ARGS,
        args_file_flag="--args_file",
        look_for_args_file=False,
    )


# ------------------------------------------------------------------------------------------ data and model
def load_corpus(data_args):
    if not data_args.dataset_path:
        raise ValueError("Pass --dataset_path (a corpus from dataset_scripts/prepare_artemis.py), or run without arguments for the demo.")
    path = Path(data_args.dataset_path)
    if not path.exists() and data_args.make_demo_corpus:
        from dataset_scripts.make_demo_corpus import make_demo_corpus

        logger.warning(f"Generating the demo corpus in {path} ...")
        make_demo_corpus(output_dir=str(path))
    if not path.exists():
        raise FileNotFoundError(f"--dataset_path {path} does not exist; prepare it with dataset_scripts/prepare_artemis.py.")
    corpus = load_from_disk(str(path))
    for split in (data_args.train_split, data_args.eval_split):
        if split and split not in corpus:
            raise ValueError(f"--dataset_path {path} has splits {list(corpus)}, not {split!r}.")
    return corpus


def _is_config_file(name):
    return name is not None and str(name).endswith(".json") and Path(name).is_file()


def build_processor(model_args, data_args, corpus, vision_config):
    if model_args.model_name_or_path:
        processor = SevlmProcessor.from_pretrained(model_args.model_name_or_path)
        processor.max_length = data_args.max_length
        return processor
    tokenizer = model_args.tokenizer_name_or_path
    if tokenizer is None and _is_config_file(model_args.text_model_name_or_path):
        explanations = corpus[data_args.train_split].select_columns(["explanations"]).with_format(None)[:]["explanations"]
        texts = [" ".join(ARTEMIS_EMOTIONS) + " the emotion is because"] + [text for row in explanations for text in row]
        tokenizer = train_tokenizer(texts, vocab_size=model_args.tokenizer_vocab_size)
    elif tokenizer is None:
        tokenizer = model_args.text_model_name_or_path
    vision = model_args.vision_model_name_or_path
    return SevlmProcessor.from_vision_text(
        vision_config if _is_config_file(vision) else vision, tokenizer, max_length=data_args.max_length
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
    if model_args.vad_lexicon and not Path(model_args.vad_lexicon).is_file():
        raise FileNotFoundError(f"--vad_lexicon {model_args.vad_lexicon} not found. {NRC_VAD_HELP}")
    text = model_args.text_model_name_or_path
    text = GPT2Config.from_json_file(text) if _is_config_file(text) else text
    vision = model_args.vision_model_name_or_path
    return SevlmForConditionalGeneration.from_vision_text(
        vision_config if _is_config_file(vision) else vision,
        text,
        processor,
        vad_lexicon=model_args.vad_lexicon if uses_vad else None,
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


# ------------------------------------------------------------------------------------------------ trainer
class SevlmTrainer(Trainer):
    """Trainer that logs each loss term, uses per-module learning rates, stops on non-finite losses and adds
    generation metrics (emotion accuracy, BLEU-4) to every evaluation."""

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
        if self.optimizer is None:
            lr = self.args.learning_rate
            groups = {"default": [], "vad_encoder": [], "vision_model": []}
            for name, parameter in (model or self.model).named_parameters():
                if parameter.requires_grad:
                    key = next((key for key in ("vad_encoder", "vision_model") if f"{key}." in name), "default")
                    groups[key].append(parameter)
            param_groups = [
                {"params": params, "lr": self.learning_rates.get(key, lr), "weight_decay": self.args.weight_decay}
                for key, params in groups.items()
                if params
            ]
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model or self.model)
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
        paintings = self.evaluation_paintings.get(metric_key_prefix)
        if paintings is not None:
            output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in self.generation_metrics(paintings).items()})
        return output

    @torch.no_grad()
    def generation_metrics(self, paintings):
        """Emotion accuracy (majority > 0.5) and BLEU-4 of greedy generations on an evaluation view."""
        from pycocoevalcap.bleu.bleu import Bleu

        model = unwrap_sevlm(self.accelerator.unwrap_model(self.model))
        processor = self.processing_class
        was_training = model.training
        model.eval()
        indices = list(range(len(paintings)))
        records = []
        with self.accelerator.split_between_processes(indices) as shard:
            batch_size = self.args.per_device_eval_batch_size
            for start in range(0, len(shard), batch_size):
                rows = paintings.select(shard[start : start + batch_size])[:]
                pixel_values = processor.preprocess_images(rows["image"]).to(self.args.device)
                generated = model.generate(pixel_values=pixel_values, **self.generation_kwargs)
                for result, majority, references in zip(
                    processor.post_process_generation(generated), rows["majority_emotion"], rows["references"]
                ):
                    records.append((result["emotion"], result["explanation"], majority, references))
        if self.args.world_size > 1:
            from accelerate.utils import gather_object

            records = gather_object(records)
        model.train(was_training)
        from eval_sevlm import load_metric_module

        accuracy, _, _ = load_metric_module().emotion_accuracy([r[0] for r in records], [r[2] for r in records], processor.emotions)
        # BLEU-4 for monitoring, with a light tokenisation (no Java): eval_sevlm.py computes the COCO protocol.
        tokenize = lambda text: " ".join(_simple_tokens(text)) or "<empty>"  # noqa: E731
        candidates = {i: [tokenize(explanation)] for i, (_, explanation, _, _) in enumerate(records)}
        references = {i: [tokenize(ref) for ref in refs] for i, (_, _, _, refs) in enumerate(records)}
        bleu, _ = Bleu(4).compute_score(references, candidates, verbose=0) if records else ([0.0] * 4, None)
        return {"emotion_accuracy": accuracy if math.isfinite(accuracy) else 0.0, "bleu_4": float(bleu[3]), "paintings": len(records)}


class PairEpochCallback(TrainerCallback):
    """Tell the pair view which epoch starts, so that pairs are re-drawn each epoch (also when resuming).

    accelerate's DataLoaderShard.set_epoch reaches the sampler but not the dataset when the sampler is seedable.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.set_epoch(math.floor((state.epoch or 0) + 1e-6))


def _simple_tokens(text):
    word = []
    tokens = []
    for char in text.lower():
        if char.isalnum() or char == "'":
            word.append(char)
        else:
            if word:
                tokens.append("".join(word))
                word = []
    if word:
        tokens.append("".join(word))
    return tokens


def resolve_checkpoint(training_args):
    """`--resume_from_checkpoint true` -> the newest COMPLETE checkpoint.

    The Trainer writes `trainer_state.json` after the weights, optimizer and RNG states: a checkpoint without a
    readable one was cut off mid-write (e.g. a killed job) and is set aside as `*.incomplete`.
    """
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("false", "0", "no", ""):
        return None
    if str(value).lower() not in ("true", "1", "yes"):
        if not is_complete_checkpoint(value):
            raise ValueError(f"--resume_from_checkpoint {value} is not a complete checkpoint (no readable trainer_state.json).")
        return value
    output_dir = Path(training_args.output_dir)
    candidates = sorted(
        (path for path in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if path.name.split("-")[-1].isdigit()),
        key=lambda path: int(path.name.split("-")[-1]),
    )
    for path in reversed(candidates):
        if is_complete_checkpoint(path):
            return str(path)
        if training_args.process_index == 0:
            logger.warning(f"{path} is incomplete (interrupted while saving): moved to {path.name}.incomplete.")
            shutil.rmtree(path.with_name(path.name + ".incomplete"), ignore_errors=True)
            path.rename(path.with_name(path.name + ".incomplete"))
    logger.warning(f"No complete checkpoint in {output_dir}: starting from scratch.")
    return None


def is_complete_checkpoint(path):
    try:
        json.loads((Path(path) / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def save_final_model(trainer, processor, output_dir, metrics):
    """Plain SEVLM folder (LoRA merged, safetensors, code files, processor, `art-emotion` pipeline, model card),
    written via a staging folder."""
    from pipeline_sevlm import add_pipeline_to_folder
    from publish_sevlm import training_card_fields, write_model_card

    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = unwrap_sevlm(model)
    staging = Path(output_dir) / ".final-staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    processor.save_pretrained(staging)
    add_pipeline_to_folder(staging)
    write_model_card(staging, metrics=metrics, **training_card_fields(model, getattr(trainer.train_dataset, "dataset", None)))
    for path in staging.iterdir():
        os.replace(path, Path(output_dir) / path.name)
    staging.rmdir()
    return model


def build_trainer(model_args, data_args, training_args):
    """Everything up to `trainer.train()`: corpus, processor, model (LoRA), views, collators, SevlmTrainer."""
    corpus = load_corpus(data_args)
    vision_config = None
    if _is_config_file(model_args.vision_model_name_or_path):
        vision_config = CLIPVisionConfig.from_json_file(model_args.vision_model_name_or_path)
    processor = build_processor(model_args, data_args, corpus, vision_config)
    model = build_model(model_args, processor, vision_config)
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
        paintings["eval"] = evaluation_view(corpus[data_args.eval_split], config.emotions)
        if data_args.max_eval_paintings:
            paintings["eval"] = paintings["eval"].select(range(min(data_args.max_eval_paintings, len(paintings["eval"]))))
    test_dataset = None
    if data_args.test_split and data_args.test_split in corpus:
        test_dataset = training_view(data_args.test_split)[0]
        paintings["test"] = evaluation_view(corpus[data_args.test_split], config.emotions)
    callbacks = [PairEpochCallback(train_dataset)] if hasattr(train_dataset, "set_epoch") else []
    if eval_dataset is not None and training_args.load_best_model_at_end and data_args.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
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
    return trainer, processor


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(argv)
    logging.set_verbosity_info() if training_args.should_log else logging.set_verbosity_warning()
    logging.enable_default_handler()
    if training_args.torch_num_threads:
        torch.set_num_threads(training_args.torch_num_threads)
    set_seed(training_args.seed)
    push = training_args.push_to_hub
    training_args.push_to_hub = False  # the final, merged folder is pushed once at the end (publish_sevlm)
    trainer, processor = build_trainer(model_args, data_args, training_args)
    trainer.train(resume_from_checkpoint=resolve_checkpoint(training_args))
    metrics = trainer.evaluate() if trainer.eval_dataset is not None else {}
    if trainer.test_dataset is not None:
        metrics.update(trainer.evaluate(eval_dataset=trainer.test_dataset, metric_key_prefix="test"))
    if training_args.should_save:
        save_final_model(trainer, processor, training_args.output_dir, metrics)
        (Path(training_args.output_dir) / "train_results.json").write_text(json.dumps(_finite(metrics), indent=2))
        if push:
            from publish_sevlm import push_folder

            push_folder(training_args.output_dir, training_args.hub_model_id, private=training_args.hub_private_repo, token=training_args.hub_token)
    trainer.accelerator.wait_for_everyone()
    return metrics


def _finite(metrics):
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in metrics.items()}


if __name__ == "__main__":
    main()
