"""train_sevlm.py: the demo run, loss switches, LoRA, resume after SIGKILL, two processes, the NaN guards, the
paper's recipe (early stopping on two metrics, both best models kept), output folders that are never lost and never
keep an old model's numbers, undefined metrics that are never 0, data loader defaults, any taxonomy."""

import json
import logging
import math
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from helpers import REPO_ROOT
from PIL import Image
from safetensors.torch import load_file
from transformers import TrainerCallback

from sevlm import config_file
from sevlm.data.demo import make_demo_corpus
from sevlm.io import new_file_mode, read_record
from sevlm.loading import check_model_folder
from sevlm.training import (
    SevlmEarlyStoppingCallback,
    SevlmTrainer,
    best_model_report,
    build_trainer,
    default_loader_workers,
    is_complete_checkpoint,
    resolve_checkpoint,
)
from train_sevlm import parse_arguments, train

FOLDER_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "configuration_sevlm.py",
    "modeling_sevlm.py",
    "processing_sevlm.py",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
    "pipeline_sevlm.py",
)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """A small demo corpus (same generator and schema as the default one) with its illustrative lexicon."""
    folder = tmp_path_factory.mktemp("corpus") / "demo"
    make_demo_corpus(output_dir=str(folder), num_paintings=72, seed=1)
    return folder


def demo_args(corpus, output_dir, *extra):
    """The embedded default (configs/demo.args) on the small corpus, cut short."""
    return [
        "--args_file", str(REPO_ROOT / "configs" / "demo.args"),
        "--dataset_path", str(corpus),
        "--vad_lexicon", str(corpus / "demo_vad_lexicon.txt"),
        "--output_dir", str(output_dir),
        "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "8",
        "--max_steps", "6",
        "--eval_strategy", "steps",
        "--eval_steps", "3",
        "--save_strategy", "steps",
        "--save_steps", "3",
        "--logging_steps", "1",
        "--max_eval_paintings", "8",
        *extra,
    ]  # fmt: skip


def run_script(args, timeout=600, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs
    )


def load_in_fresh_process(folder, workdir):
    """Load a saved folder with AutoModel + AutoProcessor (trust_remote_code) outside the repo; generate once."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from PIL import Image
        from transformers import AutoModel, AutoProcessor
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        inputs = processor(images=Image.new("RGB", (64, 48), (200, 40, 40)))
        result = processor.post_process_generation(model.generate(pixel_values=inputs["pixel_values"]))[0]
        print(json.dumps({{"model": type(model).__name__, "result": result, "repo_on_path": {str(REPO_ROOT)!r} in sys.path}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(workdir / "hf_home"))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_demo_defaults_come_from_the_args_file():
    model_args, data_args, training_args = parse_arguments([])  # what `python train_sevlm.py` runs
    assert data_args.dataset_path == "data/demo" and data_args.make_demo_corpus
    # Input files named in an args file are read beside it: the demo works from any folder, installed or not.
    assert model_args.vision_model_name_or_path == str(config_file("demo_vision.json"))
    assert model_args.vad_lexicon == "data/demo/demo_vad_lexicon.txt"  # made by the demo corpus, in the working folder
    assert training_args.output_dir == "outputs/sevlm-demo"
    # Flags after --args_file win; without any file the paper's recipe is the default.
    _, _, overridden = parse_arguments(["--args_file", "configs/demo.args", "--num_train_epochs", "1"])
    assert overridden.num_train_epochs == 1
    _, paper_data, paper = parse_arguments(["--dataset_path", "x"])
    assert (paper.learning_rate, paper.num_train_epochs, paper.per_device_train_batch_size) == (2e-5, 35, 32)
    assert paper.weight_decay == 0 and paper.lr_scheduler_type == "linear" and paper.metric_for_best_model == "emotion_accuracy"
    assert (paper.adam_epsilon, paper.max_grad_norm) == (1e-6, 0.0)  # the reference code: eps 1e-6, no clipping
    assert paper_data.early_stopping_metrics == paper_data.best_model_metrics == "emotion_accuracy,bleu_4_fast"


def test_a_run_with_only_paths_follows_the_recipe(small_corpus, tmp_path, capsys):
    """`sevlm-train --dataset_path DATA --output_dir OUT --no_vad`: the recipe's two parts, by default. Offline (the
    tests never reach the Hub) they cannot be loaded: one line naming the flag and what to pass, no traceback."""
    from huggingface_hub import try_to_load_from_cache

    from train_sevlm import main

    only_paths = ["--dataset_path", str(small_corpus), "--output_dir", str(tmp_path / "out"), "--no_vad"]
    model_args, data_args, args = parse_arguments(only_paths)
    recipe_model, recipe_data, recipe = parse_arguments(["--args_file", "configs/sevlm-artemis-v1.args", "--fp16", "false"])
    for name in ("vision_model_name_or_path", "text_model_name_or_path", "freeze_vision", "vad_learning_rate"):
        assert getattr(model_args, name) == getattr(recipe_model, name), name
    for name in ("early_stopping_patience", "early_stopping_metrics", "best_model_metrics", "max_length"):
        assert getattr(data_args, name) == getattr(recipe_data, name), name
    assert args.metric_for_best_model == recipe.metric_for_best_model and args.load_best_model_at_end
    if all(isinstance(try_to_load_from_cache(repo, "config.json"), str) for repo in ("distilgpt2", "openai/clip-vit-base-patch16")):
        pytest.skip("the recipe's models are in the local cache: nothing fails to load here")
    capsys.readouterr()
    assert main(only_paths) == 1
    error = capsys.readouterr().err
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1, error
    assert re.search(r"error: --(text|vision)_model_name_or_path (distilgpt2|openai/clip-vit-base-patch16) \(the paper's recipe", error)
    assert "cannot be loaded" in error and "configs/demo_text.json" in error
    # A part given empty, or a config file that is not there, is said before the corpus is even read.
    for flag, value, match in (("--vision_model_name_or_path", "", "--vision_model_name_or_path is empty"),
                               ("--text_model_name_or_path", "missing.json", "--text_model_name_or_path missing.json: no such config file")):
        assert main([*only_paths, "--dataset_path", str(tmp_path / "no-corpus"), flag, value]) == 1
        assert match in capsys.readouterr().err


def test_recipe_files_hold_the_reference_choices():
    model_args, data_args, args = parse_arguments(["--args_file", "configs/sevlm-artemis-v1.args", "--fp16", "false"])
    assert (model_args.vision_model_name_or_path, model_args.text_model_name_or_path) == ("openai/clip-vit-base-patch16", "distilgpt2")
    assert (args.learning_rate, model_args.vad_learning_rate, args.weight_decay, args.adam_epsilon, args.max_grad_norm) == (2e-5, 4e-5, 0, 1e-6, 0)
    assert (args.per_device_train_batch_size, args.num_train_epochs, args.eval_steps, args.save_steps) == (32, 35, 2000, 2000)
    assert data_args.max_eval_paintings == 0  # the whole validation split
    # The reference stops when more than 10 evaluations in a row improved neither metric: at the 11th.
    assert data_args.early_stopping_patience == 11 and data_args.early_stopping_metrics == "emotion_accuracy,bleu_4_fast"
    assert data_args.best_model_metrics == "emotion_accuracy,bleu_4_fast"
    # Paths are overridable by later flags.
    _, v2_data, v2 = parse_arguments(["--args_file", "configs/sevlm-artemis-v2.args", "--fp16", "false", "--output_dir", "elsewhere"])
    assert v2_data.dataset_path == "data/artemis-v2-combined" and v2.output_dir == "elsewhere"


def test_args_files_keep_quoted_values_and_must_exist(tmp_path):
    args_file = tmp_path / "run.args"
    args_file.write_text('# a comment\n--prompt_text " the feeling is"\n--connector_text " since"  # inline\n--dataset_path x\n')
    model_args, _, _ = parse_arguments(["--args_file", str(args_file)])
    assert (model_args.prompt_text, model_args.connector_text) == (" the feeling is", " since")
    with pytest.raises(FileNotFoundError, match="missing.args"):
        parse_arguments(["--args_file", str(tmp_path / "missing.args")])


def test_impossible_flags_are_errors_before_training(small_corpus, tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--fp16 needs a CUDA device"):
            parse_arguments(["--dataset_path", "x", "--fp16", "true"])
    with pytest.raises(ValueError, match="unknown metric"):
        parse_arguments(["--dataset_path", "x", "--early_stopping_metrics", "accuracy"])
    # The training-time BLEU is bleu_4_fast; bleu_4 is eval_sevlm.py's (the paper's protocol), never computed here.
    with pytest.raises(ValueError, match=r"--metric_for_best_model bleu_4: unknown metric; choose from .*bleu_4_fast"):
        parse_arguments(["--dataset_path", "x", "--metric_for_best_model", "bleu_4"])
    assert parse_arguments(["--dataset_path", "x", "--metric_for_best_model", "eval_loss"])[2].metric_for_best_model == "eval_loss"
    with pytest.raises(ValueError, match=r"max_length=8 is too short: .*'something else'.* need at least \d+"):
        build_trainer(*parse_arguments(demo_args(small_corpus, tmp_path / "short", "--max_length", "8")))


@pytest.mark.slow
def test_demo_run_leaves_a_complete_folder(small_corpus, tmp_path):
    output = tmp_path / "sevlm-demo"
    metrics = train(demo_args(small_corpus, output, "--report_to", "tensorboard"))
    for name in FOLDER_FILES:
        assert (output / name).is_file(), name
    assert not list(output.glob("*.bin")) and not (output / ".final-staging").exists()
    config = json.loads((output / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_sevlm.SevlmForConditionalGeneration"
    expected = {"eval_emotion_accuracy", "eval_emotion_accuracy_scores", "eval_bleu_4_fast", "test_emotion_accuracy", "eval_loss"}
    assert expected <= set(metrics) and "eval_bleu_4" not in metrics  # the training-time BLEU has its own name
    # Metrics files as the Trainer names them.
    assert json.loads((output / "test_results.json").read_text())["test_emotion_accuracy"] == metrics["test_emotion_accuracy"]
    assert json.loads((output / "all_results.json").read_text())["eval_bleu_4_fast"] == metrics["eval_bleu_4_fast"]
    assert "train_loss" in json.loads((output / "train_results.json").read_text())
    assert "Emotion accuracy" in (output / "README.md").read_text()
    # Everything the run wrote is recorded as its own, with a new file's permissions (safetensors makes 0600).
    recorded = read_record(output)
    assert {"model.safetensors", "config.json", "test_results.json", "best_emotion_accuracy"} <= set(recorded)
    assert set(recorded.values()) == {"training run"} and not any(name.startswith("checkpoint-") for name in recorded)
    for path in (output / "model.safetensors", output / "best_bleu_4_fast" / "model.safetensors", output / "checkpoint-6" / "model.safetensors"):
        assert stat.S_IMODE(path.stat().st_mode) == new_file_mode(), path
    # Each loss term is logged separately, to the log history and to TensorBoard.
    history = json.loads((output / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    logged = {key for entry in history for key in entry}
    assert {"loss", "lm_loss", "vad_loss", "contrastive_loss"} <= logged
    assert list((output / "runs").rglob("events.out.tfevents.*"))
    loaded = load_in_fresh_process(output, tmp_path)
    assert loaded["model"] == "SevlmForConditionalGeneration" and not loaded["repo_on_path"]
    assert set(loaded["result"]) == {"emotion", "explanation"}


@pytest.mark.parametrize(
    "flags,terms",
    [
        (["--no_vad"], {"lm_loss", "contrastive_loss"}),
        (["--use_contrastive_loss", "false"], {"lm_loss", "vad_loss"}),
        (["--use_vad_loss", "false", "--use_contrastive_loss", "false"], {"lm_loss"}),
        (["--vad_encoder_causal", "false", "--freeze_vision", "true"], {"lm_loss", "vad_loss", "contrastive_loss"}),
    ],
)
def test_loss_switches_train(small_corpus, tmp_path, flags, terms):
    args = demo_args(small_corpus, tmp_path / "out", "--max_steps", "3", "--eval_strategy", "no", "--save_strategy", "no", *flags)
    args += ["--load_best_model_at_end", "false"]
    model_args, data_args, training_args = parse_arguments(args)
    trainer, _ = build_trainer(model_args, data_args, training_args)
    before = {k: v.clone() for k, v in trainer.model.named_parameters() if v.requires_grad}
    trainer.train()
    logged = {key for entry in trainer.state.log_history for key in entry if key in ("lm_loss", "vad_loss", "contrastive_loss")}
    assert logged == terms
    changed = [k for k, v in trainer.model.named_parameters() if k in before and not torch.equal(v, before[k])]
    assert any(k.startswith("language_model.") for k in changed)
    if "--no_vad" in flags:
        assert trainer.model.vad_table.abs().sum() == 0 and not trainer.model.config.use_vad_embedding
    if "--freeze_vision" in flags:
        assert not any(k.startswith("vision_model.") for k in before)


@pytest.mark.slow
def test_lora_run_saves_merged_plain_folder(small_corpus, tmp_path, capsys):
    output = tmp_path / "lora"
    train(demo_args(small_corpus, output, "--lora_r", "4", "--max_steps", "4", "--save_steps", "2", "--eval_steps", "2"))
    assert (output / "model.safetensors").is_file() and not (output / "adapter_model.safetensors").exists()
    weights = load_file(output / "model.safetensors")
    assert not any("lora_" in key or "modules_to_save" in key or "base_layer" in key for key in weights)
    assert "language_model.transformer.h.0.attn.c_attn.weight" in weights
    # Checkpoints hold the adapter (and the fully trained new modules) for resuming: given where a model folder is
    # expected, one is described as a checkpoint, with the folders to use instead.
    assert (output / "checkpoint-4" / "adapter_model.safetensors").is_file()
    with pytest.raises(FileNotFoundError, match=r"is a Trainer checkpoint .*not a model folder.*output folder, .*lora.*best_bleu_4_fast"):
        check_model_folder(output / "checkpoint-4")
    check_model_folder(output)
    # Every command that loads a model says the same (here sevlm-predict), with exit status 1.
    from sevlm.cli import predict

    picture = tmp_path / "picture.png"
    Image.new("RGB", (40, 30), (200, 100, 50)).save(picture)
    capsys.readouterr()
    assert predict.main([str(picture), "--model_name_or_path", str(output / "checkpoint-4"), "--device", "cpu"]) == 1
    assert "is a Trainer checkpoint" in capsys.readouterr().err
    loaded = load_in_fresh_process(output, tmp_path)
    assert loaded["model"] == "SevlmForConditionalGeneration"


def test_nan_loss_stops_training_with_the_step(small_corpus, tmp_path):
    args = demo_args(small_corpus, tmp_path / "nan", "--eval_strategy", "no", "--load_best_model_at_end", "false")
    trainer, _ = build_trainer(*parse_arguments(args))
    with torch.no_grad():
        trainer.model.get_input_embeddings().weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="at step 1"):
        trainer.train()
    assert not list((tmp_path / "nan").glob("checkpoint-*"))


def test_vad_runs_need_a_lexicon(small_corpus, tmp_path):
    args = demo_args(small_corpus, tmp_path / "x")
    args[args.index("--vad_lexicon") + 1] = ""
    with pytest.raises(ValueError, match="NRC-VAD"):
        build_trainer(*parse_arguments(args))
    args[args.index("--vad_lexicon") + 1] = str(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="NRC-VAD"):
        build_trainer(*parse_arguments(args))


def test_incomplete_checkpoints_are_set_aside(tmp_path):
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text('{"global_st')  # cut off mid-write
    _, _, training_args = parse_arguments(["--output_dir", str(tmp_path), "--resume_from_checkpoint", "true", "--use_cpu", "true"])
    assert resolve_checkpoint(training_args) == str(tmp_path / "checkpoint-2")
    assert (tmp_path / "checkpoint-4.incomplete").is_dir() and is_complete_checkpoint(tmp_path / "checkpoint-2")


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_weights(small_corpus, tmp_path):
    common = demo_args(small_corpus, "OUT", "--max_steps", "40", "--save_steps", "8", "--eval_strategy", "no")
    common += ["--load_best_model_at_end", "false", "--save_total_limit", "2", "--test_split", ""]

    def args_for(output):
        return ["train_sevlm.py", *[str(output) if a == "OUT" else a for a in common]]

    straight = run_script(args_for(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    killed_dir = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, *args_for(killed_dir)], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not is_complete_checkpoint(killed_dir / "checkpoint-16") and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed_dir / "model.safetensors").exists()
    resumed = run_script(args_for(killed_dir) + ["--resume_from_checkpoint", "true"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Continuing training from checkpoint" in resumed.stderr or "checkpoint-" in resumed.stderr

    expected = load_file(tmp_path / "straight" / "model.safetensors")
    actual = load_file(killed_dir / "model.safetensors")
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.slow
def test_two_processes_with_torchrun(small_corpus, tmp_path):
    output = tmp_path / "ddp"
    args = demo_args(small_corpus, output, "--max_steps", "3", "--eval_steps", "3", "--save_steps", "3", "--test_split", "")
    result = run_script(["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533", "train_sevlm.py", *args])
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Total train batch size (w. parallel, distributed & accumulation) = 16" in result.stderr
    assert (output / "model.safetensors").is_file()
    state = json.loads((output / "checkpoint-3" / "trainer_state.json").read_text())
    assert any("eval_emotion_accuracy" in entry for entry in state["log_history"])


def test_pairs_are_redrawn_each_epoch(small_corpus, tmp_path):
    args = demo_args(small_corpus, tmp_path / "epochs", "--max_steps", "9", "--eval_strategy", "no", "--save_strategy", "no")
    trainer, _ = build_trainer(*parse_arguments(args + ["--load_best_model_at_end", "false"]))
    steps_per_epoch = -(-len(trainer.train_dataset) // 8)
    assert steps_per_epoch < 9
    first_epoch_pairs = [trainer.train_dataset.pair_positions(i) for i in range(len(trainer.train_dataset))]
    trainer.train()
    assert trainer.train_dataset.epoch == 1
    assert [trainer.train_dataset.pair_positions(i) for i in range(len(trainer.train_dataset))] != first_epoch_pairs


def test_bf16_mixed_precision_and_gradient_accumulation(small_corpus, tmp_path):
    """The Trainer's own switches pass through (bf16 autocast also runs on CPU; fp16 needs a GPU)."""
    args = demo_args(small_corpus, tmp_path / "bf16", "--bf16", "true", "--gradient_accumulation_steps", "2", "--max_steps", "2")
    trainer, _ = build_trainer(*parse_arguments(args + ["--eval_strategy", "no", "--load_best_model_at_end", "false"]))
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


# ------------------------------------------------------------------------------------------ the recipe's rules
def test_early_stopping_waits_for_both_metrics():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    callback = SevlmEarlyStoppingCallback(patience=3, metrics=["emotion_accuracy", "bleu_4_fast"])
    control, args, state = TrainerControl(), TrainingArguments(output_dir="unused"), TrainerState()
    evaluations = [(0.5, 0.1), (0.4, 0.2), (0.6, 0.1), (0.5, 0.15), (0.55, 0.19), (0.3, 0.0)]  # only BLEU, then ACC, improve
    stopped_after = None
    for number, (accuracy, bleu) in enumerate(evaluations, start=1):
        callback.on_evaluate(args, state, control, metrics={"eval_emotion_accuracy": accuracy, "eval_bleu_4_fast": bleu})
        callback.on_evaluate(args, state, control, metrics={"test_emotion_accuracy": 0.0})  # the test split does not count
        if control.should_training_stop and stopped_after is None:
            stopped_after = number
    # Evaluation 2 improved BLEU, 3 accuracy; 4, 5, 6 improved neither: the third of those stops.
    assert stopped_after == 6 and callback.best == {"emotion_accuracy": 0.6, "bleu_4_fast": 0.2}


@pytest.mark.slow
def test_recipe_keeps_both_best_models_as_loadable_folders(small_corpus, tmp_path):
    output = tmp_path / "recipe"
    args = demo_args(small_corpus, output, "--max_steps", "6", "--eval_steps", "2", "--save_steps", "2", "--test_split", "")
    args += ["--early_stopping_patience", "10", "--max_eval_paintings", "0"]
    metrics = train(args)
    from datasets import load_from_disk

    assert metrics["eval_paintings"] == len(load_from_disk(str(small_corpus))["validation"])  # 0: the whole split
    for name in ("emotion_accuracy", "bleu_4_fast"):
        folder = output / f"best_{name}"
        for file_name in FOLDER_FILES:
            assert (folder / file_name).is_file(), (folder, file_name)
        recorded = json.loads((folder / "eval_results.json").read_text())
        history = json.loads((output / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
        assert recorded[f"eval_{name}"] == max(entry[f"eval_{name}"] for entry in history if f"eval_{name}" in entry)
        assert load_in_fresh_process(folder, tmp_path)["model"] == "SevlmForConditionalGeneration"


# ------------------------------------------------------------------------------------------ nothing is lost
@pytest.mark.slow
def test_training_over_a_finished_model_is_an_error(small_corpus, tmp_path):
    output = tmp_path / "finished"
    base = demo_args(small_corpus, output, "--max_steps", "2", "--eval_strategy", "no", "--save_steps", "2")
    base += ["--load_best_model_at_end", "false", "--test_split", ""]
    train(base)
    weights = (output / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match=r"holds an earlier run \(a trained model.*checkpoint-2.*--overwrite_output_dir"):
        train(base)
    assert (output / "model.safetensors").read_bytes() == weights and (output / "checkpoint-2").is_dir()
    # The command line says the same, with exit status 1.
    completed = run_script(["train_sevlm.py", *base])
    assert completed.returncode == 1 and "--resume_from_checkpoint true" in completed.stderr
    # Asked for: a new model replaces the old one, and the old checkpoints are gone only at the end.
    train(base + ["--overwrite_output_dir", "true", "--seed", "7"])
    assert (output / "model.safetensors").read_bytes() != weights
    assert not list(output.glob(".previous-run*")) and (output / "checkpoint-2").is_dir()


def test_resume_takes_the_checkpoint_tokenizer(tmp_path):
    """A tokenizer trained here is the checkpoint's on resume, even when the corpus changed (ids stay put)."""
    first, second = tmp_path / "c1", tmp_path / "c2"
    make_demo_corpus(output_dir=str(first), num_paintings=72, seed=1)
    make_demo_corpus(output_dir=str(second), num_paintings=72, seed=2)
    output = tmp_path / "run"
    base = demo_args(first, output, "--max_steps", "4", "--save_steps", "2", "--eval_strategy", "no", "--tokenizer_vocab_size", "300")
    base += ["--load_best_model_at_end", "false", "--test_split", ""]
    trainer, processor = build_trainer(*parse_arguments(base))
    trainer.train()
    vocab = processor.tokenizer.get_vocab()
    resumed_args = [str(second) if item == str(first) else item for item in base] + ["--resume_from_checkpoint", "true"]
    model_args, data_args, training_args = parse_arguments(resumed_args)
    checkpoint = resolve_checkpoint(training_args)
    assert checkpoint == str(output / "checkpoint-4")
    _, resumed = build_trainer(model_args, data_args, training_args, checkpoint)
    assert resumed.tokenizer.get_vocab() == vocab
    # Without the checkpoint the second corpus would give another vocabulary: the test means something.
    fresh_args = [str(second) if item == str(first) else item for item in base]
    assert build_trainer(*parse_arguments(fresh_args))[1].tokenizer.get_vocab() != vocab


def test_a_diverged_run_keeps_no_checkpoint(small_corpus, tmp_path):
    output = tmp_path / "diverged"
    args = demo_args(small_corpus, output, "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--test_split", "")
    trainer, _ = build_trainer(*parse_arguments(args))
    original = trainer.evaluation_loop

    def blown_up(*a, **k):  # what a learning rate that blows up leaves: huge weights, then NaN
        with torch.no_grad():
            trainer.model.vad_head.weight.fill_(float("nan"))
        return original(*a, **k)

    trainer.evaluation_loop = blown_up
    with pytest.raises(FloatingPointError, match="at step 2"):
        trainer.train()
    assert not list(output.glob("checkpoint-*")) and not list(output.glob("best_*"))


def test_diverged_checkpoints_are_never_resumed(small_corpus, tmp_path):
    output = tmp_path / "resume"
    base = demo_args(small_corpus, output, "--max_steps", "4", "--save_steps", "2", "--eval_strategy", "no")
    base += ["--load_best_model_at_end", "false", "--test_split", ""]
    trainer, _ = build_trainer(*parse_arguments(base))
    trainer.train()
    from safetensors.torch import save_file

    weights = load_file(output / "checkpoint-4" / "model.safetensors")
    weights["vad_head.weight"] = torch.full_like(weights["vad_head.weight"], float("inf"))
    save_file(weights, output / "checkpoint-4" / "model.safetensors")
    _, _, training_args = parse_arguments(base + ["--resume_from_checkpoint", "true"])
    assert resolve_checkpoint(training_args) == str(output / "checkpoint-2")
    assert (output / "checkpoint-4.diverged").is_dir() and not is_complete_checkpoint(output / "checkpoint-4.diverged")


def test_biases_and_norms_never_decay(small_corpus, tmp_path):
    args = demo_args(small_corpus, tmp_path / "wd", "--weight_decay", "0.1", "--eval_strategy", "no", "--load_best_model_at_end", "false")
    trainer, _ = build_trainer(*parse_arguments(args))
    optimizer = trainer.create_optimizer()
    names = {id(parameter): name for name, parameter in trainer.model.named_parameters()}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            name = names[id(parameter)]
            exempt = "bias" in name.rsplit(".", 1)[-1] or ".ln_" in name or "norm" in name
            assert group["weight_decay"] == (0.0 if exempt else 0.1), name
    assert {group["lr"] for group in optimizer.param_groups} == {2e-3}  # demo: every module at 2e-3


# --------------------------------------------------------------------------------------------- any taxonomy
def taxonomy_corpus(path, emotions, seed=0, paintings_per_class=6, validation=1, test=1, validation_labels=None):
    """A small corpus in another taxonomy (the prepared schema), images whose colour encodes the class; `validation`
    and `test` paintings per class; `validation_labels(k)`: the annotations' classes of validation painting k."""
    import numpy as np
    from datasets import Dataset, DatasetDict
    from PIL import Image

    from sevlm.data.schema import corpus_features

    rng = np.random.default_rng(seed)
    words = ["bright", "warm", "broken", "slow", "shiny", "late", "soft", "cold"]

    def split(name, count):
        rows = {key: [] for key in corpus_features(emotions)}
        for index in range(count * len(emotions)):
            intended = index % len(emotions)
            labels = [intended, intended, (intended + 1) % len(emotions)]
            if name == "validation" and validation_labels is not None:
                labels = validation_labels(index)
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            rows["painting_id"].append(f"{name}/{index}")
            rows["art_style"].append(name)
            rows["painting"].append(str(index))
            rows["image"].append(Image.new("RGB", (24, 24), color))
            rows["emotions"].append(labels)
            rows["explanations"].append([f"it is {words[label % len(words)]} and {emotions[label]}" for label in labels])
            rows["emotion_histogram"].append([labels.count(k) / len(labels) for k in range(len(emotions))])
            rows["source"].append(["toy"] * len(labels))
        return Dataset.from_dict(rows, features=corpus_features(emotions))

    splits = {"train": paintings_per_class, "validation": validation, "test": test}
    # One shard per split, as sevlm-prepare writes them: save_to_disk writes no data file for an empty split otherwise.
    DatasetDict({name: split(name, count) for name, count in splits.items()}).save_to_disk(str(path), num_shards={name: 1 for name in splits})
    return path


def test_the_taxonomy_comes_from_the_corpus(tmp_path):
    emotions = ["pleased", "très déçu", "fed up with it", "neutral"]  # non-ASCII, multi-word, multi-token names
    corpus = taxonomy_corpus(tmp_path / "reviews", emotions)
    output = tmp_path / "reviews-model"
    args = demo_args(corpus, output, "--max_steps", "2", "--eval_steps", "2", "--save_steps", "2", "--no_vad")
    args += ["--prompt_text", " the customer feels", "--connector_text", " since", "--tokenizer_vocab_size", "400"]
    args.remove("--vad_lexicon")
    args.remove(str(corpus / "demo_vad_lexicon.txt"))
    metrics = train(args)
    config = json.loads((output / "config.json").read_text())
    assert config["emotions"] == emotions and config["prompt_text"] == " the customer feels" and config["connector_text"] == " since"
    assert 0 <= metrics["test_emotion_accuracy"] <= 1
    # A model of one taxonomy cannot be trained further on a corpus of another.
    other = taxonomy_corpus(tmp_path / "other", ["good", "bad"])
    with pytest.raises(ValueError, match=r"corpus's emotions \['good', 'bad'\] differ"):
        build_trainer(*parse_arguments(demo_args(other, tmp_path / "x", "--model_name_or_path", str(output), "--no_vad")))


# ------------------------------------------------------------------------------- output folders, round 2
def short_run(corpus, output, *extra):
    args = demo_args(corpus, output, "--max_steps", "2", "--eval_steps", "2", "--save_steps", "2", *extra)
    return args + ["--best_model_metrics", "bleu_4_fast"]


def test_a_crashed_overwrite_runs_set_aside_checkpoints_are_never_deleted(small_corpus, tmp_path, monkeypatch, caplog):
    output = tmp_path / "run"
    train(short_run(small_corpus, output))  # the first model: checkpoint-2, best_bleu_4_fast
    first = (output / "checkpoint-2" / "model.safetensors").read_bytes()

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt  # the second run is stopped after setting the first one's checkpoints aside

    with monkeypatch.context() as patch:
        patch.setattr(SevlmTrainer, "train", crash)
        with pytest.raises(KeyboardInterrupt):
            train(short_run(small_corpus, output, "--overwrite_output_dir", "true"))
    [aside] = output.glob(".previous-run*")
    assert (aside / "checkpoint-2" / "model.safetensors").read_bytes() == first and (aside / "best_bleu_4_fast").is_dir()
    # A third run replaces the model again: what the unfinished run had set aside stays, and the run says where.
    with caplog.at_level(logging.WARNING):
        train(short_run(small_corpus, output, "--overwrite_output_dir", "true", "--seed", "3"))
    assert (aside / "checkpoint-2" / "model.safetensors").read_bytes() == first
    assert list(output.glob(".previous-run*")) == [aside]  # the third run's own set-aside folder is gone
    assert any(aside.name in record.getMessage() and "did not finish" in record.getMessage() for record in caplog.records)


def test_retraining_leaves_no_number_of_the_old_model_and_no_users_file_touched(small_corpus, tmp_path):
    output = tmp_path / "run"
    train(short_run(small_corpus, output))
    assert json.loads((output / "test_results.json").read_text())["test_paintings"] > 0
    (output / "notes.txt").write_text("my notes")
    (output / "drafts").mkdir()
    metrics = train(short_run(small_corpus, output, "--overwrite_output_dir", "true", "--test_split", ""))
    # The new model has no test split: the old model's test numbers are gone, not shown as the new one's.
    assert not (output / "test_results.json").exists()
    results = json.loads((output / "all_results.json").read_text())
    assert not any(key.startswith("test_") for key in results) and results["eval_loss"] == metrics["eval_loss"]
    assert "test_results.json" not in read_record(output)
    assert (output / "notes.txt").read_text() == "my notes" and (output / "drafts").is_dir()


def test_files_a_run_did_not_write_are_never_replaced(small_corpus, tmp_path):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "README.md").write_text("# my project")
    (output / "config.json").write_text("{}")
    for extra in ([], ["--overwrite_output_dir", "true"]):
        with pytest.raises(FileExistsError, match=r"holds README.md, config.json.*no training run recorded.*even with --overwrite_output_dir"):
            train(short_run(small_corpus, output, *extra))
    assert (output / "README.md").read_text() == "# my project" and sorted(os.listdir(output)) == ["README.md", "config.json"]


def test_empty_splits_are_errors_or_skipped_not_zero(tmp_path):
    emotions = ["calm", "tense", "joyful", "gloomy"]
    corpus = taxonomy_corpus(tmp_path / "own", emotions, validation=0, test=0)
    args = own_data_args(corpus, tmp_path / "out", "--max_steps", "2", "--eval_steps", "2", "--save_steps", "2")
    with pytest.raises(ValueError, match=r"--eval_split validation of --dataset_path .* is empty.*--eval_strategy no"):
        train(args)
    assert not (tmp_path / "out").exists()  # refused before any work
    # Without evaluation it trains; the empty test split is skipped (no test_* number at all), not scored 0.
    metrics = train(args + ["--eval_strategy", "no", "--load_best_model_at_end", "false"])
    assert not any(key.startswith("test_") for key in metrics) and not (tmp_path / "out" / "test_results.json").exists()


# ------------------------------------------------------------------------------------- undefined metrics
def own_data_args(corpus, output, *extra):
    """demo_args for a corpus of one's own (taxonomy_corpus): no VAD lexicon."""
    args = demo_args(corpus, output, "--no_vad", "--tokenizer_vocab_size", "400", *extra)
    position = args.index("--vad_lexicon")
    return args[:position] + args[position + 2 :]


def test_an_undefined_accuracy_is_never_zero_nor_chooses_the_model(tmp_path, caplog):
    """No validation painting has a majority emotion (each has a 50/50 split): accuracy cannot be computed."""
    emotions = ["calm", "tense", "joyful", "gloomy"]
    corpus = taxonomy_corpus(tmp_path / "own", emotions, validation_labels=lambda k: [k, (k + 1) % 4])
    output = tmp_path / "out"
    args = own_data_args(corpus, output, "--max_steps", "6", "--eval_steps", "2", "--save_steps", "2", "--save_total_limit", "5")
    with caplog.at_level(logging.WARNING):
        metrics = train(args)
    assert math.isnan(metrics["eval_emotion_accuracy"]) and math.isnan(metrics["eval_emotion_accuracy_scores"])
    assert metrics["eval_majority_paintings"] == 0 and metrics["eval_paintings"] > 0
    assert json.loads((output / "all_results.json").read_text())["eval_emotion_accuracy"] is None
    # The reason is said once, and the model is chosen by the validation loss (not the first evaluation's "0.0").
    messages = [record.getMessage() for record in caplog.records]
    said = [text for text in messages if "eval_emotion_accuracy and eval_emotion_accuracy_scores cannot be computed" in text]
    assert len(said) == 1 and "majority emotion" in said[0] and "NaN (null in the results files), never 0" in said[0]
    assert "The best model is chosen by eval_loss instead of eval_emotion_accuracy, which cannot be computed." in messages
    state = json.loads((output / "checkpoint-6" / "trainer_state.json").read_text())
    losses = {entry["step"]: entry["eval_loss"] for entry in state["log_history"] if "eval_loss" in entry}
    best_step = min(losses, key=losses.get)
    assert state["best_metric"] == losses[best_step] and state["best_model_checkpoint"].endswith(f"checkpoint-{best_step}")
    # No best-model folder for an undefined metric; the defined one is kept.
    assert not (output / "best_emotion_accuracy").exists() and (output / "best_bleu_4_fast" / "model.safetensors").is_file()


def test_an_undefined_loss_never_chooses_the_model(tmp_path, caplog):
    """No validation painting has two different emotions: the contrastive pairs, hence the loss, do not exist."""
    emotions = ["calm", "tense", "joyful", "gloomy"]
    corpus = taxonomy_corpus(tmp_path / "own", emotions, validation_labels=lambda k: [k, k])
    output = tmp_path / "out"
    args = own_data_args(corpus, output, "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--metric_for_best_model", "loss")
    with caplog.at_level(logging.WARNING):
        metrics = train(args)
    assert "eval_loss" not in metrics and 0 <= metrics["eval_emotion_accuracy"] <= 1
    messages = [record.getMessage() for record in caplog.records]
    assert any("eval_loss cannot be computed" in text and "two annotations with different emotions" in text for text in messages)
    assert "The best model is chosen by eval_emotion_accuracy instead of eval_loss, which cannot be computed." in messages
    state = json.loads((output / "checkpoint-4" / "trainer_state.json").read_text())
    accuracies = [entry["eval_emotion_accuracy"] for entry in state["log_history"] if "eval_emotion_accuracy" in entry]
    assert state["best_metric"] == max(accuracies)


def test_early_stopping_ignores_undefined_values():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    callback = SevlmEarlyStoppingCallback(patience=2, metrics=["emotion_accuracy", "bleu_4_fast"])
    control, args, state = TrainerControl(), TrainingArguments(output_dir="unused"), TrainerState()
    nan = float("nan")
    for bleu in (0.1, 0.2, 0.3):  # accuracy undefined throughout, BLEU improving: never stops
        callback.on_evaluate(args, state, control, metrics={"eval_emotion_accuracy": nan, "eval_bleu_4_fast": bleu, "eval_loss": 3.0})
    assert not control.should_training_stop and callback.best == {"bleu_4_fast": 0.3}
    # Nothing watched is defined: the validation loss is.
    lonely = SevlmEarlyStoppingCallback(patience=2, metrics=["emotion_accuracy"])
    for loss in (3.0, 2.0, 2.5, 2.4):
        lonely.on_evaluate(args, state, control, metrics={"eval_emotion_accuracy": nan, "eval_loss": loss})
    assert lonely.best == {"loss": 2.0} and control.should_training_stop


def test_newcomer_runs_print_no_alarming_transformers_warnings(small_corpus, tmp_path):
    """The demo's config files and the log level: no 'ids outside the vocabulary', no GenerationConfig dumps."""
    # Checkpoints saved within a second of each other also made the Trainer doubt the file system's clock.
    args = demo_args(small_corpus, tmp_path / "quiet", "--max_steps", "2", "--eval_steps", "1", "--save_steps", "1")
    completed = run_script(["train_sevlm.py", *args])
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "within the vocabulary" not in completed.stderr and "GenerationConfig {" not in completed.stderr
    assert "Configuration saved in" not in completed.stderr and "mtime may not be reliable" not in completed.stderr
    assert "Running training" in completed.stderr and "Loading best model" in completed.stderr  # the Trainer's own lines stay
    config = json.loads((tmp_path / "quiet" / "config.json").read_text())
    text = config["text_config"]
    assert text["vocab_size"] > max(text["bos_token_id"], text["eos_token_id"], text["pad_token_id"])


# ---------------------------------------------------------------------------------------- loader defaults
def test_loader_workers_follow_the_machine():
    assert default_loader_workers(use_cpu=False, cuda_available=True, cores=16, processes=1) == 8
    assert default_loader_workers(use_cpu=False, cuda_available=True, cores=16, processes=4) == 3  # torchrun, 4 GPUs
    assert default_loader_workers(use_cpu=False, cuda_available=True, cores=2, processes=1) == 1
    assert default_loader_workers(use_cpu=True, cuda_available=True, cores=16) == 0
    assert default_loader_workers(use_cpu=False, cuda_available=False, cores=16) == 0
    _, _, cpu = parse_arguments(["--dataset_path", "x", "--use_cpu", "true"])
    assert (cpu.dataloader_num_workers, cpu.dataloader_persistent_workers, cpu.dataloader_pin_memory) == (0, False, False)
    _, _, chosen = parse_arguments(["--dataset_path", "x", "--dataloader_num_workers", "2"])
    assert chosen.dataloader_num_workers == 2 and chosen.dataloader_persistent_workers
    assert chosen.dataloader_pin_memory == torch.cuda.is_available()  # pinned memory only serves copies to a GPU
    assert parse_arguments(["--dataset_path", "x"])[2].restore_callback_states_from_checkpoint


def test_resume_restores_early_stopping_state(small_corpus, tmp_path):
    output = tmp_path / "resume"
    base = demo_args(small_corpus, output, "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--test_split", "")
    base += ["--early_stopping_patience", "50"]
    trainer, _ = build_trainer(*parse_arguments(base))
    trainer.train()
    saved = json.loads((output / "checkpoint-4" / "trainer_state.json").read_text())["stateful_callbacks"]["SevlmEarlyStoppingCallback"]
    assert saved["attributes"]["best"]
    model_args, data_args, training_args = parse_arguments(base + ["--resume_from_checkpoint", "true"])
    checkpoint = resolve_checkpoint(training_args)
    resumed, _ = build_trainer(model_args, data_args, training_args, checkpoint)
    seen = {}

    class Peek(TrainerCallback):  # what early stopping knows when the resumed training starts
        def on_train_begin(self, args, state, control, **kwargs):
            [callback] = [c for c in resumed.callback_handler.callbacks if isinstance(c, SevlmEarlyStoppingCallback)]
            seen.update(best=dict(callback.best), stale=callback.stale)

    resumed.add_callback(Peek())
    resumed.train(resume_from_checkpoint=checkpoint)
    assert seen == {"best": saved["attributes"]["best"], "stale": saved["attributes"]["stale"]}


# ------------------------------------------------------------------------ a metric that never moves
def test_a_metric_that_never_moves_neither_stops_training_nor_keeps_a_model_silently(tmp_path, monkeypatch, caplog):
    """A validation split of one painting: accuracy stays 0 and BLEU at its floor while the validation loss falls.
    With --metric_for_best_model loss (configs/own-data.args) training goes on while the loss improves, and the
    best_* folders that hold the first evaluation's model are said to, at the end and in the results."""
    constant = {"emotion_accuracy": 0.0, "emotion_accuracy_scores": 0.0, "bleu_4_fast": 1e-11, "paintings": 1, "majority_paintings": 1}
    monkeypatch.setattr(SevlmTrainer, "generation_metrics", lambda self, paintings: dict(constant))
    emotions = ["calm", "tense", "joyful", "gloomy"]
    corpus = taxonomy_corpus(tmp_path / "own", emotions)
    output = tmp_path / "out"
    args = own_data_args(corpus, output, "--max_steps", "8", "--eval_steps", "1", "--save_steps", "1", "--test_split", "")
    args += ["--metric_for_best_model", "loss", "--early_stopping_patience", "2", "--max_eval_paintings", "1", "--save_total_limit", "1"]
    with caplog.at_level(logging.WARNING):
        metrics = train(args)
    [last] = [path for path in output.glob("checkpoint-*") if path.name == "checkpoint-8"]
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    losses = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    # Not stopped after 2 evaluations without a better accuracy or BLEU (at step 3): the loss that chooses the
    # model improved, and early stopping watches it too.
    assert len(losses) == 8 and min(losses) < losses[0] and metrics["eval_emotion_accuracy"] == 0.0
    messages = [record.getMessage() for record in caplog.records]
    for name, value in (("emotion_accuracy", "0"), ("bleu_4_fast", "1e-11")):
        said = [text for text in messages if text.startswith(f"best_{name}/ is the model of the first evaluation (step 1")]
        assert len(said) == 1, messages
        assert f"eval_{name} never rose above its first value ({value}) in the 7 evaluations after it on 1 validation painting" in said[0]
        assert f"while eval_loss fell from {losses[0]:.4g} to {min(losses):.4g}" in said[0] and "too few" in said[0]
    assert not any(text.startswith("The final model") for text in messages)  # chosen by the loss, which fell
    best = json.loads((output / "train_results.json").read_text())["best_models"]
    assert best["best_emotion_accuracy"]["first_evaluation"] and best["best_emotion_accuracy"]["step"] == 1
    assert "never rose above its first value" in best["best_bleu_4_fast"]["note"]
    assert not best["final"]["first_evaluation"] and "note" not in best["final"] and best["final"]["metric"] == "eval_loss"
    assert json.loads((output / "all_results.json").read_text())["best_models"] == best


def test_the_report_says_which_kept_model_is_the_first_evaluations():
    history = [
        {"loss": 5.0, "step": 1},
        {"eval_loss": 3.0, "eval_emotion_accuracy": 0.5, "eval_bleu_4_fast": 0.1, "eval_paintings": 40, "eval_majority_paintings": 30, "step": 10, "epoch": 1.0},
        {"eval_loss": 3.2, "eval_emotion_accuracy": 0.6, "eval_bleu_4_fast": 0.1, "eval_paintings": 40, "eval_majority_paintings": 30, "step": 20, "epoch": 2.0},
        {"eval_loss": 3.1, "eval_emotion_accuracy": float("nan"), "eval_bleu_4_fast": 0.05, "eval_paintings": 40, "eval_majority_paintings": 30, "step": 30, "epoch": 3.0},
        {"train_runtime": 1.0, "step": 30},
    ]  # fmt: skip
    report = best_model_report(history, ["emotion_accuracy", "bleu_4_fast"], final_metric="eval_loss")
    assert report["best_emotion_accuracy"] == {
        "metric": "eval_emotion_accuracy", "value": 0.6, "step": 20, "epoch": 2.0, "evaluations": 2, "first_evaluation": False,
    }  # fmt: skip
    assert report["best_bleu_4_fast"]["first_evaluation"] and report["best_bleu_4_fast"]["note"].startswith(
        "best_bleu_4_fast/ is the model of the first evaluation (step 10, epoch 1): eval_bleu_4_fast never rose above "
        "its first value (0.1) in the 2 evaluations after it on 40 validation paintings."
    )
    assert "eval_loss fell" not in report["best_bleu_4_fast"]["note"]  # it did not
    assert report["final"]["note"].startswith(
        "The final model (--load_best_model_at_end, chosen by eval_loss) is the model of the first evaluation (step 10, "
        "epoch 1): eval_loss never fell below its first value (3) in the 2 evaluations after it."
    )
    # One evaluation only: nothing came after it, nothing to say.
    assert "note" not in best_model_report(history[:2], ["bleu_4_fast"])["best_bleu_4_fast"]


def test_a_corpus_of_very_many_classes_is_said(caplog):
    """3,000 classes (an id column read as the label?) train, but not without a word."""
    from datasets import Dataset, DatasetDict
    from transformers import CLIPVisionConfig

    from sevlm.data.schema import corpus_features
    from sevlm.training import build_processor
    from sevlm.training_arguments import DataArguments, ModelArguments

    emotions = [f"class {index}" for index in range(3000)]
    row = {"painting_id": "p", "art_style": "s", "painting": "p", "emotions": [7], "explanations": ["the sky is calm"],
           "emotion_histogram": [0.0] * 3000, "source": ["a.csv"]}
    corpus = DatasetDict({"train": Dataset.from_list([row], features=corpus_features(emotions, with_image=False))})
    vision, text = str(config_file("demo_vision.json")), str(config_file("demo_text.json"))
    model_args = ModelArguments(vision_model_name_or_path=vision, text_model_name_or_path=text, no_vad=True)
    data_args = DataArguments(dataset_path="data")
    with caplog.at_level("WARNING"):
        processor = build_processor(model_args, data_args, corpus, CLIPVisionConfig.from_json_file(vision))
    assert len(processor.emotions) == 3000
    assert "The corpus has 3000 emotion classes (more than 50)" in caplog.text
