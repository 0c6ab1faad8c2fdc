"""The arguments of `sevlm-train`: the model, the data, and the training flags whose defaults are the paper's recipe.

They live apart from `sevlm.training` so that `sevlm-train --help` answers without loading torch; every other
`TrainingArguments` flag works too (`sevlm-train --help-all` lists them).
"""

from dataclasses import dataclass, field

# Data loader workers when training on a GPU: one core per process is left to the training loop itself.
MAX_LOADER_WORKERS = 8
# The paper's two parts (configs/sevlm-artemis-v1.args): the defaults of a new model.
RECIPE_VISION_MODEL = "openai/clip-vit-base-patch16"
RECIPE_TEXT_MODEL = "distilgpt2"


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved SEVLM folder or Hub id to continue training (instead of the two parts below)."}
    )
    vision_model_name_or_path: str | None = field(
        default=RECIPE_VISION_MODEL,
        metadata={"help": f"CLIP vision tower: a name/path with weights (default: the paper's {RECIPE_VISION_MODEL}) or a CLIPVisionConfig JSON file (random init)."},
    )
    text_model_name_or_path: str | None = field(
        default=RECIPE_TEXT_MODEL,
        metadata={"help": f"GPT-2 decoder: a name/path with weights (default: the paper's {RECIPE_TEXT_MODEL}) or a GPT2Config JSON file (random init)."},
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Tokenizer (default: the decoder's). When the decoder is a config file, a byte-level BPE is trained on the training explanations, the emotion names, the prompt and the connector."},
    )
    tokenizer_vocab_size: int = field(default=2000, metadata={"help": "At most this many tokens in a tokenizer trained here (every word of a small corpus becomes one token when they fit)."})
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
        default=11,
        metadata={"help": "Stop at the N-th evaluation in a row in which none of --early_stopping_metrics (nor --metric_for_best_model) improved (0: never). The default is the reference code's: it stops when more than 10 did."},
    )
    early_stopping_metrics: str = field(
        default="emotion_accuracy,bleu_4_fast",
        metadata={"help": "Comma-separated evaluation metrics watched by early stopping (the paper: emotion accuracy and BLEU-4); --metric_for_best_model is always watched too, and training stops only when none of them improves."},
    )
    best_model_metrics: str = field(
        default="emotion_accuracy,bleu_4_fast",
        metadata={"help": "For each of these evaluation metrics keep the best model as a complete folder <output_dir>/best_<metric> (empty: none)."},
    )


@dataclass
class RecipeArguments:
    """The `TrainingArguments` whose defaults are the paper's recipe (AdamW, wd 0, linear decay, no warm-up), and
    SEVLM's own training flags. `sevlm.training.SevlmTrainingArguments` is `TrainingArguments` with these."""

    output_dir: str | None = field(default="outputs/sevlm", metadata={"help": "Where checkpoints and the final model folder go."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"aliases": ["--overwrite"], "help": "Train into an --output_dir that holds an earlier run: its checkpoints and best_* folders are set aside in .previous-run-* (deleted once the new model is saved), then its model files and results are replaced and the ones the new run does not write removed. Files the runs did not write stay."},
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
    metric_for_best_model: str | None = field(default="emotion_accuracy", metadata={"help": "emotion_accuracy, emotion_accuracy_scores, bleu_4_fast or loss (early stopping watches it too)."})
    logging_steps: float = field(default=50, metadata={"help": "Log the loss terms every N steps."})
    logging_nan_inf_filter: bool = field(default=False, metadata={"help": "Never hide non-finite losses (training stops on them)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: the collators read raw columns."})
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={"help": f"Data loading worker processes (default: on a GPU, one per CPU core of this process but one, at most {MAX_LOADER_WORKERS}; on a CPU, 0: the model needs the cores)."},
    )
    dataloader_persistent_workers: bool | None = field(
        default=None,
        metadata={"help": "Keep the loader's workers from epoch to epoch (default: yes when there are workers)."},
    )
    dataloader_pin_memory: bool | None = field(
        default=None,
        metadata={"help": "Load batches into pinned memory, for faster copies to the GPU (default: yes when training on a CUDA GPU)."},
    )
    restore_callback_states_from_checkpoint: bool = field(
        default=True, metadata={"help": "On resume, early stopping goes on counting from the checkpoint's state."}
    )
    torch_num_threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads for torch (default: torch's choice). Tiny models run as fast on 1 and are then immune to a busy machine."},
    )
