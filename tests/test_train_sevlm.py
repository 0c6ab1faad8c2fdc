"""train_sevlm.py: the demo run, loss switches, LoRA, resume after SIGKILL, two processes, the NaN guard."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO_ROOT
from dataset_scripts.make_demo_corpus import make_demo_corpus
from train_sevlm import build_trainer, is_complete_checkpoint, main, parse_arguments, resolve_checkpoint

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
    assert model_args.vision_model_name_or_path == "configs/demo_vision.json"
    assert training_args.output_dir == "outputs/sevlm-demo"
    # Flags after --args_file win; without any file the paper's recipe is the default.
    _, _, overridden = parse_arguments(["--args_file", "configs/demo.args", "--num_train_epochs", "1"])
    assert overridden.num_train_epochs == 1
    _, _, paper = parse_arguments(["--dataset_path", "x"])
    assert (paper.learning_rate, paper.num_train_epochs, paper.per_device_train_batch_size) == (2e-5, 35, 32)
    assert paper.weight_decay == 0 and paper.lr_scheduler_type == "linear" and paper.metric_for_best_model == "emotion_accuracy"


def test_demo_run_leaves_a_complete_folder(small_corpus, tmp_path):
    output = tmp_path / "sevlm-demo"
    metrics = main(demo_args(small_corpus, output, "--report_to", "tensorboard"))
    for name in FOLDER_FILES:
        assert (output / name).is_file(), name
    assert not list(output.glob("*.bin")) and not (output / ".final-staging").exists()
    config = json.loads((output / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_sevlm.SevlmForConditionalGeneration"
    assert {"eval_emotion_accuracy", "eval_bleu_4", "test_emotion_accuracy", "eval_loss"} <= set(metrics)
    results = json.loads((output / "train_results.json").read_text())
    assert results["test_emotion_accuracy"] == metrics["test_emotion_accuracy"]
    assert "Emotion accuracy" in (output / "README.md").read_text()
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


def test_lora_run_saves_merged_plain_folder(small_corpus, tmp_path):
    output = tmp_path / "lora"
    main(demo_args(small_corpus, output, "--lora_r", "4", "--max_steps", "4", "--save_steps", "2", "--eval_steps", "2"))
    assert (output / "model.safetensors").is_file() and not (output / "adapter_model.safetensors").exists()
    weights = load_file(output / "model.safetensors")
    assert not any("lora_" in key or "modules_to_save" in key or "base_layer" in key for key in weights)
    assert "language_model.transformer.h.0.attn.c_attn.weight" in weights
    # Checkpoints hold the adapter (and the fully trained new modules) for resuming.
    assert (output / "checkpoint-4" / "adapter_model.safetensors").is_file()
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
