"""publish_sevlm.py: a complete Hub folder and model card, loaded as the Hub would serve it (nothing is uploaded)."""

import io
import json
import math
import os
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from types import SimpleNamespace

import pytest
import torch
import yaml
from helpers import build_tiny, corpus_texts
from transformers import CLIPVisionConfig, GPT2Config

from configuration_sevlm import SevlmConfig
from modeling_sevlm import SevlmForConditionalGeneration
from pipeline_sevlm import TASK, SevlmArtEmotionPipeline
from processing_sevlm import SevlmProcessor
from sevlm.cli.publish import build_parser, main
from sevlm.hub import (
    HUB_FILES,
    _card_metrics,
    check_folder,
    find_metrics,
    is_credential,
    publish,
    push_folder,
    training_card_fields,
    verify_environment,
    verify_folder,
    write_model_card,
)
from sevlm.tokenizer import train_tokenizer

EVAL_METRICS = {
    "emotion_accuracy": 0.625,
    "bleu_1": 0.5,
    "bleu_2": 0.3,
    "bleu_3": 0.2,
    "bleu_4": 0.1,
    "meteor": 0.15,
    "rouge_l": 0.31,
    "cider": 0.42,
    "emotional_alignment": 0.7,
    "emotion_explanation_consistency": 0.8,
    "emotion_accuracy_scores": 0.6,
    "emotion_classifier_accuracy": 0.55,
    "unique": 0.9,
    "emotion_distribution_kl": 0.5,
    "vad_distance": None,
    "per_emotion_accuracy": {"awe": 0.5},
    "num_paintings": 8,
}


@pytest.fixture(scope="module")
def trained_folder(trained_tiny, tmp_path_factory):
    """A folder as train_sevlm.py leaves it: model, processor, run files, a checkpoint and TensorBoard logs."""
    model, processor, _ = trained_tiny
    folder = tmp_path_factory.mktemp("run") / "sevlm-tiny"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "train_results.json").write_text(json.dumps({"test_emotion_accuracy": 0.5, "eval_bleu_4_fast": 0.05}))
    (folder / "training_args.bin").write_bytes(b"pickle")
    (folder / "checkpoint-6").mkdir()
    (folder / "checkpoint-6" / "model.safetensors").write_bytes(b"old")
    (folder / "runs").mkdir()
    return folder


@pytest.fixture(scope="module")
def metrics_file(tmp_path_factory):
    """What eval_sevlm.py writes: OUT/metrics.json and OUT/eval_args.json."""
    out = tmp_path_factory.mktemp("eval")
    (out / "metrics.json").write_text(json.dumps(EVAL_METRICS))
    (out / "eval_args.json").write_text(json.dumps({"split": "test", "dataset_path": "data/artemis-v1", "num_beams": 3, "max_new_tokens": 25}))
    return out / "metrics.json"


@pytest.fixture(scope="module")
def hub_folder(trained_folder, metrics_file, tmp_path_factory):
    return publish(
        trained_folder, tmp_path_factory.mktemp("hub") / "sevlm-tiny", metrics=metrics_file, dataset="ArtEmis",
        base_models=("openai/clip-vit-base-patch16", "distilgpt2"), vad_lexicon="NRC-VAD-Lexicon.txt",
    )  # fmt: skip


def card_metadata(folder):
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1]), text


def test_hub_folder_is_complete_and_clean(hub_folder):
    names = sorted(path.name for path in hub_folder.iterdir() if path.name != ".sevlm-output.json")
    assert names == sorted([
        "README.md", "config.json", "configuration_sevlm.py", "generation_config.json", "model.safetensors",
        "modeling_sevlm.py", "pipeline_sevlm.py", "processing_sevlm.py", "processor_config.json", "tokenizer.json",
        "tokenizer_config.json",
    ])  # fmt: skip
    config = json.loads((hub_folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_sevlm.SevlmForConditionalGeneration"
    assert config["custom_pipelines"][TASK]["impl"] == "pipeline_sevlm.SevlmArtEmotionPipeline"
    assert json.loads((hub_folder / "processor_config.json").read_text())["auto_map"]["AutoProcessor"] == "processing_sevlm.SevlmProcessor"
    assert json.loads((hub_folder / "generation_config.json").read_text())["max_new_tokens"] == 25
    check_folder(hub_folder)


def model_index(metadata):
    """{(split, metric name): (value, protocol)} of a card's model-index."""
    results = {}
    for entry in metadata["model-index"][0]["results"]:
        for metric in entry["metrics"]:
            results[entry["dataset"].get("split"), metric["name"]] = (metric["value"], metric.get("config"))
    return results


def test_model_card(hub_folder):
    metadata, text = card_metadata(hub_folder)
    assert metadata["pipeline_tag"] == "image-to-text" and metadata["library_name"] == "transformers"
    assert "custom_code" in metadata["tags"] and "art" in metadata["tags"] and metadata["datasets"] == ["artemis"]
    assert metadata["base_model"] == ["openai/clip-vit-base-patch16", "distilgpt2"]
    results = model_index(metadata)
    assert results["test", "Emotion accuracy (eval_sevlm.py, %)"] == (62.5, "eval")
    assert results["test", "CIDEr (eval_sevlm.py, %)"] == (42.0, "eval")
    assert results["test", "Emotional alignment (eval_sevlm.py, %)"] == (70.0, "eval")
    assert results["test", "Emotion-explanation consistency (eval_sevlm.py, %)"] == (80.0, "eval")
    assert results["test", "EA classifier accuracy (eval_sevlm.py, %)"] == (55.0, "eval")
    assert len(results) == 13  # the paper's metrics and their companions; KL, VAD distance, per-emotion dicts and counts stay out
    assert "| test | BLEU-4 | 10.0 | eval_sevlm.py |" in text
    assert "sevlm-eval evaluated it on `data/artemis-v1` (beam search with 3 beams, at most 25 new tokens)." in text
    assert "COCO caption toolkit" in text and "training-time" not in text  # the one protocol used, explained
    assert "ArtEmis's official test split can be set beside the SEVLM paper's table" in text
    assert "www.artemisdataset.org" in text and "Trained on ArtEmis." in text
    # Usage for the pipeline and AutoModel, and the lexicon's source and terms.
    assert f'pipeline("{TASK}", model=' in text and "AutoModel.from_pretrained(" in text and "trust_remote_code=True" in text
    assert "saifmohammad.com/WebPages/nrc-vad.html" in text and "commercial" in text
    # huggingface_hub reads it back as the same numbers.
    from huggingface_hub import ModelCard

    card = ModelCard.load(hub_folder / "README.md")
    assert {(r.dataset_name, r.dataset_split, r.metric_name, r.metric_value) for r in card.data.eval_results} >= {
        ("ArtEmis", "test", "BLEU-4 (eval_sevlm.py, %)", 10.0),
    }


def test_every_number_says_its_protocol(trained_folder, metrics_file, tmp_path, monkeypatch):
    """eval_sevlm.py's metrics.json (found by default) beside a training run's train_results.json: both on the card,
    each number with its protocol; the training-time BLEU-4 (also under its old key) is the light-tokenisation one."""
    run = tmp_path / "sevlm-tiny"
    shutil.copytree(trained_folder, run)
    (run / "train_results.json").write_text(json.dumps({"eval_emotion_accuracy": 0.45, "eval_bleu_4_fast": 0.07, "test_bleu_4_fast": 0.06, "epoch": 3}))
    monkeypatch.chdir(tmp_path)
    evaluated = tmp_path / "outputs" / "eval" / "sevlm-tiny" / "test"
    shutil.copytree(metrics_file.parent, evaluated)
    stdout = io.StringIO()
    with redirect_stdout(stdout):
        assert main([str(run), "--output_dir", str(tmp_path / "hub"), "--dataset", "ArtEmis"]) == 0
    assert "Metrics for the card: outputs/eval/sevlm-tiny/test/metrics.json" in stdout.getvalue()
    metadata, text = card_metadata(tmp_path / "hub")
    results = model_index(metadata)
    assert results["test", "BLEU-4 (eval_sevlm.py, %)"] == (10.0, "eval")
    assert results["validation", "Emotion accuracy (training-time approximation, %)"] == (45.0, "training")
    assert results["validation", "BLEU-4 (light tokenisation) (training-time approximation, %)"] == (7.0, "training")
    assert results["test", "BLEU-4 (light tokenisation) (training-time approximation, %)"] == (6.0, "training")
    assert "| validation | Emotion accuracy | 45.0 | training-time approximation |" in text
    assert "| test | BLEU-4 | 10.0 | eval_sevlm.py |" in text
    assert "COCO caption toolkit" in text and "not comparable with eval_sevlm.py's numbers" in text
    assert "BLEU-4 with a light tokenisation" in text and "the majority emotion of its annotators" in text


def test_demo_card_facts_carry_over_to_the_hub_folder(trained_tiny, trained_folder, tmp_path):
    """save_final_model's card for a demo run (no pretrained parts, demo corpus and lexicon); publish keeps them."""
    model, _, _ = trained_tiny
    run = tmp_path / "run"
    shutil.copytree(trained_folder, run)
    (tmp_path / "demo" / "train").mkdir(parents=True)
    (tmp_path / "demo" / "demo_params.json").write_text("{}")
    corpus = SimpleNamespace(cache_files=[{"filename": str(tmp_path / "demo" / "train" / "data-00000-of-00001.arrow")}])
    fields = training_card_fields(model, corpus)
    assert fields == {"base_models": (), "dataset": "SEVLM demo corpus", "vad_lexicon": str(tmp_path / "demo" / "demo_vad_lexicon.txt")}
    write_model_card(run, metrics={"eval_emotion_accuracy": 0.4, "eval_loss": 1.2, "test_bleu_4": math.nan}, **fields)
    for folder in (run, publish(run, tmp_path / "hub", metrics=None)):
        metadata, text = card_metadata(folder)
        assert metadata["datasets"] == ["sevlm-demo-corpus"] and "base_model" not in metadata
        assert "not NRC-VAD values" in text and "Trained on SEVLM demo corpus." in text and "WikiArt" not in text
    metadata, _ = card_metadata(run)
    assert model_index(metadata) == {("validation", "Emotion accuracy (training-time approximation, %)"): (40.0, "training")}
    metadata, text = card_metadata(tmp_path / "hub")
    assert "model-index" not in metadata and "Not evaluated yet" in text


def test_metrics_found_from_train_results(trained_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_metrics(trained_folder) == [trained_folder / "train_results.json"]
    # What trainer.save_metrics writes wins over an older train_results.json.
    (trained_folder / "all_results.json").write_text(json.dumps({"eval_emotion_accuracy": 0.5}))
    assert find_metrics(trained_folder) == [trained_folder / "all_results.json"]
    (trained_folder / "all_results.json").unlink()
    evaluated = tmp_path / "outputs" / "eval" / trained_folder.name / "test"
    evaluated.mkdir(parents=True)
    (evaluated / "metrics.json").write_text(json.dumps(EVAL_METRICS))
    assert [path.resolve() for path in find_metrics(trained_folder)] == [(evaluated / "metrics.json").resolve(), trained_folder / "train_results.json"]
    assert _card_metrics({"test_emotion_accuracy": 0.5, "epoch": 3, "eval_bleu_4_fast": 0.1, "eval_cider": math.inf}) == [
        ("test", "emotion_accuracy", 0.5, "training"), ("validation", "bleu_4_fast", 0.1, "training"),
    ]  # fmt: skip
    assert _card_metrics({"bleu_4": 0.1}, protocol="eval") == [("test", "bleu_4", 0.1, "eval")]


def test_errors_name_the_problem(trained_folder, hub_folder, tmp_path):
    with pytest.raises(FileExistsError, match="holds an earlier Hub folder .*--overwrite"):
        publish(trained_folder, hub_folder)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        publish(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match=r"run sevlm-eval"):
        publish(trained_folder, tmp_path / "x", metrics=tmp_path / "missing.json")
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in hub_folder.iterdir():
        if path.name != "pipeline_sevlm.py":
            (broken / path.name).write_bytes(path.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"missing \['pipeline_sevlm.py'\]"):
        check_folder(broken)


def test_cli_publishes_in_place(trained_tiny, tmp_path, capsys):
    model, processor, _ = trained_tiny
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    assert main([str(tmp_path / "m"), "--no_metrics", "--dataset", "ArtEmis"]) == 0
    assert "Hub folder ready" in capsys.readouterr().out
    check_folder(tmp_path / "m")


@pytest.mark.slow
def test_published_folder_loads_in_fresh_process(hub_folder, trained_tiny, tmp_path, monkeypatch):
    """Copied to a temporary folder and loaded there (AutoModel, AutoProcessor, pipeline): identical outputs; the
    folder's code runs without the credentials of this process's environment."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SEVLM_SETTING", "kept")
    model, processor, images = trained_tiny
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"{index}.png")
        image.save(paths[-1])
    loaded = verify_folder(hub_folder, images=paths)
    assert "SEVLM_SETTING" in loaded["environment"] and not set(CREDENTIALS) & set(loaded["environment"])
    assert (loaded["model"], loaded["processor"], loaded["pipeline"]) == (
        "SevlmForConditionalGeneration", "SevlmProcessor", "SevlmArtEmotionPipeline",
    )  # fmt: skip
    pixel_values = processor(images=[str(path) for path in paths])["pixel_values"]
    ids = model.generate(pixel_values=pixel_values)
    assert loaded["ids"] == ids.tolist()
    assert loaded["generated"] == processor.post_process_generation(ids)
    torch.testing.assert_close(torch.tensor(loaded["scores"]), model.emotion_scores(pixel_values))
    expected = SevlmArtEmotionPipeline(model=model, processor=processor, device="cpu")([str(p) for p in paths], batch_size=4)
    for got, want in zip(loaded["pipeline_results"], expected, strict=True):
        assert (got["emotion"], got["explanation"]) == (want["emotion"], want["explanation"])
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)
        assert list(got["scores"].values()) == pytest.approx(list(want["scores"].values()), abs=1e-5)


def test_real_size_hub_folder_estimate():
    """CLIP ViT-B/16 + distilGPT-2 (from configs, no download): the weights a Hub folder stores, about 0.73 GB in
    float32 (the tied LM head is not stored)."""
    tokenizer = train_tokenizer(corpus_texts(), vocab_size=1000)
    vision, text = CLIPVisionConfig(image_size=224, patch_size=16), GPT2Config(n_layer=6)
    processor = SevlmProcessor.from_vision_text(vision, tokenizer)
    with torch.device("meta"):
        model = SevlmForConditionalGeneration(SevlmConfig(vision_config=vision, text_config=text, **processor.token_id_config()))
    stored = {
        name: tensor for name, tensor in model.state_dict().items() if name not in model._keys_to_ignore_on_save
    }
    size = sum(tensor.numel() * tensor.element_size() for tensor in stored.values())
    assert 0.72e9 < size < 0.75e9, size


# ------------------------------------------------------------------------------------------------ any taxonomy
PRODUCT_EMOTIONS = ["delighted", "satisfied", "disappointed", "frustrated"]


@pytest.fixture(scope="module")
def product_folder(tmp_path_factory):
    """A 4-class model of another domain, saved as train_sevlm.py saves it (no card yet)."""
    model, processor = build_tiny(emotions=PRODUCT_EMOTIONS)
    folder = tmp_path_factory.mktemp("product") / "sevlm-product"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_card_of_another_taxonomy_claims_nothing_of_artemis(product_folder, metrics_file, tmp_path):
    hub = publish(product_folder, tmp_path / "hub", metrics=metrics_file, dataset="Product feedback 2026")
    metadata, text = card_metadata(hub)
    for word in ("ArtEmis", "artemis", "WikiArt", "painting"):
        assert word not in text.replace("data/artemis-v1", ""), word  # (the eval_args.json fixture names its folder)
    assert "art" not in metadata["tags"] and metadata["datasets"] == ["product-feedback-2026"]
    assert "one of 4 classes (delighted, satisfied, disappointed, frustrated)" in text
    assert 'pipe("image.jpg", emotion="frustrated")' in text and '"emotion": "delighted"' in text
    entry = metadata["model-index"][0]["results"][0]
    assert entry["task"]["name"] == "Emotion (4 classes) and explanation"
    assert entry["dataset"] == {"name": "Product feedback 2026", "type": "product-feedback-2026", "split": "test"}
    assert "Trained on Product feedback 2026." in text

    # Nothing known about the data: the card says so, and claims no dataset.
    bare = publish(product_folder, tmp_path / "bare", metrics=None)
    metadata, text = card_metadata(bare)
    assert "datasets" not in metadata and "base_model" not in metadata and "ArtEmis" not in text
    assert "training data was not recorded" in text and "--dataset NAME" in text
    assert "NRC-VAD format; which file was not recorded" in text


def test_training_card_fields_name_the_corpus(trained_tiny, tmp_path):
    from datasets import Dataset, DatasetDict, load_from_disk

    model, _, _ = trained_tiny
    DatasetDict({"train": Dataset.from_dict({"x": [1, 2]})}).save_to_disk(str(tmp_path / "museum-feelings"))
    corpus = load_from_disk(str(tmp_path / "museum-feelings"))
    assert training_card_fields(model, corpus) == {"base_models": (), "dataset": "museum-feelings"}
    assert training_card_fields(model, corpus, vad_lexicon="lex/NRC-VAD-Lexicon.txt")["vad_lexicon"] == "lex/NRC-VAD-Lexicon.txt"
    (tmp_path / "museum-feelings" / "prepare_report.json").write_text(json.dumps({"inputs": {"artemis_csv": "a.csv"}}))
    assert training_card_fields(model, corpus)["dataset"] == "ArtEmis"
    (tmp_path / "museum-feelings" / "demo_params.json").write_text(json.dumps({"taxonomy": "product-reviews"}))
    assert training_card_fields(model, corpus)["dataset"] == "SEVLM demo corpus (product-reviews)"
    assert training_card_fields(model) == {"base_models": ()}


# --------------------------------------------------------------------------------------------- no credentials
CREDENTIALS = {
    "HF_TOKEN": "hf_secret",
    "HUGGING_FACE_HUB_TOKEN": "hf_secret",
    "HF_TOKEN_PATH": "/somewhere/token",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_PROFILE": "work",
    "GOOGLE_APPLICATION_CREDENTIALS": "/keys.json",
    "AZURE_CLIENT_ID": "x",
    "OPENAI_API_KEY": "x",
    "db_password": "x",
    "GITHUB_TOKEN": "x",
    "MY_CLIENT_SECRET": "x",
    "SSH_AUTH_SOCK": "/tmp/agent",
}


def test_verify_environment_has_no_credentials(tmp_path):
    environ = {**CREDENTIALS, "PATH": "/usr/bin", "LANG": "C.UTF-8", "PYTHONPATH": "/repo", "SEVLM_SETTING": "1"}
    env = verify_environment(tmp_path / "hf_home", environ)
    assert not set(CREDENTIALS) & set(env) and all(is_credential(name) for name in CREDENTIALS)
    assert {"PATH": "/usr/bin", "LANG": "C.UTF-8", "SEVLM_SETTING": "1"}.items() <= env.items() and "PYTHONPATH" not in env
    assert env["HF_HUB_OFFLINE"] == "1" and env["HF_HOME"] == str(tmp_path / "hf_home")
    assert not any(is_credential(name) for name in ("PATH", "HOME", "LANG", "HF_HOME", "OMP_NUM_THREADS", "TERM"))


def test_cli_messages_instead_of_tracebacks(trained_folder, hub_folder, tmp_path):
    stderr = io.StringIO()
    with redirect_stderr(stderr), redirect_stdout(io.StringIO()):
        assert main([str(trained_folder), "--output_dir", str(hub_folder)]) == 1
        assert main([str(trained_folder), "--output_dir", str(tmp_path / "x"), "--metrics", str(tmp_path / "missing.json")]) == 1
    assert "holds an earlier Hub folder" in stderr.getvalue() and "Pass --overwrite" in stderr.getvalue()
    assert "run sevlm-eval first" in stderr.getvalue()
    assert not (tmp_path / "x").exists()


def test_output_dir_replaced_only_when_complete(trained_folder, metrics_file, tmp_path):
    hub = publish(trained_folder, tmp_path / "hub", metrics=None, dataset="ArtEmis")
    before = (hub / "README.md").read_text(encoding="utf-8")
    # A broken metrics file stops the new folder before the old one is touched.
    broken = tmp_path / "metrics.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        publish(trained_folder, hub, metrics=broken, overwrite=True)
    assert (hub / "README.md").read_text(encoding="utf-8") == before
    publish(trained_folder, hub, metrics=metrics_file, dataset="ArtEmis", overwrite=True)
    assert "| test | BLEU-4 | 10.0 | eval_sevlm.py |" in (hub / "README.md").read_text(encoding="utf-8")
    assert sorted(name for name in os.listdir(tmp_path) if name.startswith(".")) == []  # no staging folder left
    # A folder with other files: the Hub files go beside them, and only they are replaced later.
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("mine")
    publish(trained_folder, shared, metrics=None)
    publish(trained_folder, shared, metrics=None, overwrite=True)
    assert (shared / "notes.txt").read_text() == "mine" and (shared / "model.safetensors").is_file()


def test_overwrite_never_deletes_a_repository(trained_folder, tmp_path):
    """`--output_dir REPO --overwrite` on a git repository with its own README.md and config.json deleted the
    repository; now nothing of it is touched and the message names the files in the way."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "src").mkdir()
    (repo / "src" / "train.py").write_text("print()")
    (repo / "README.md").write_text("# my project")
    (repo / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"README\.md.*did not write"):
        publish(trained_folder, repo, metrics=None, overwrite=True)
    assert (repo / "README.md").read_text() == "# my project" and (repo / ".git" / "HEAD").is_file()
    assert (repo / "src" / "train.py").is_file() and (repo / "config.json").read_text() == "{}"


def test_a_hub_folder_holds_exactly_the_model_files(trained_tiny, tmp_path, monkeypatch):
    """Files were copied by suffix: a token file, credentials, a link to /etc/passwd and a run's best_* folder went
    into the Hub folder (and would have been uploaded). Now only a model folder's own files go, links out of the
    folder are never followed, and a file that looks like a credential is named in a warning."""
    model, processor, _ = trained_tiny
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "hf_token.txt").write_text("hf_secret")
    (folder / "credentials.json").write_text("{}")
    (folder / "notes").mkdir()
    (folder / "notes" / ".env").write_text("KEY=1")
    (folder / "best_emotion_accuracy").mkdir()
    (folder / "special_tokens_map.json").symlink_to("/etc/passwd")
    left_out = {}
    hub = publish(folder, tmp_path / "hub", metrics=None, report=lambda name, why: left_out.setdefault(name, why))
    names = {path.name for path in hub.iterdir()} - {".sevlm-output.json"}
    assert names <= set(HUB_FILES) and {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not {"hf_token.txt", "credentials.json", "special_tokens_map.json", "notes", "best_emotion_accuracy"} & names
    assert "credential" in left_out["hf_token.txt"] and "credential" in left_out["credentials.json"]
    assert "symbolic link out of the folder" in left_out["special_tokens_map.json"]
    # An upload takes the same files, in place too.
    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, *args, **kwargs):
            pass

        def upload_folder(self, folder_path, repo_id, allow_patterns=None, **kwargs):
            uploaded.update(folder=folder_path, allow=allow_patterns, other=kwargs)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    publish(folder, metrics=None, dataset="ArtEmis")
    push_folder(folder, "someone/sevlm")
    assert set(uploaded["allow"]) <= set(HUB_FILES) and "hf_token.txt" not in uploaded["allow"]
    assert "special_tokens_map.json" not in uploaded["allow"] and "model.safetensors" in uploaded["allow"]


def test_card_text_from_data_is_not_markup(trained_tiny, tmp_path):
    """Class names and the dataset name are data: Markdown and HTML in them are shown as written, and the usage
    code stays valid Python."""
    emotions = ["calm | quiet", "<script>alert(1)</script>", "*bold*"]
    texts = [f" the emotion is {e} because {x}" for e in emotions for x in ("the sky is calm", "it is dark")] * 10
    processor = SevlmProcessor.from_vision_text(
        CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
        train_tokenizer(texts, vocab_size=300), emotions=emotions,
    )
    vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    text = GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=64)
    model = SevlmForConditionalGeneration.from_vision_text(vision, text, processor)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    write_model_card(folder, dataset="[click](javascript:alert(1))")
    card = (folder / "README.md").read_text(encoding="utf-8")
    body = card.split("---\n", 2)[2]
    prose = re.sub(r"```.*?```", "", body, flags=re.S)  # code blocks show their text as it is
    assert "<script>" not in prose and "\\<script\\>" in prose
    assert "calm \\| quiet" in prose and "\\*bold\\*" in prose
    assert "[click](javascript" not in prose and "\\[click\\]\\(javascript" in prose
    code = body.split("```python\n")[1].split("```")[0]
    compile(code, "card", "exec")  # the names are quoted as Python strings


def test_metrics_older_than_the_weights_are_not_the_models(trained_tiny, tmp_path, monkeypatch):
    """After retraining into a folder, results written before the new weights describe the old model."""
    model, processor, _ = trained_tiny
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    results = folder / "test_results.json"
    (folder / "all_results.json").write_text(json.dumps({"test_emotion_accuracy": 0.9}))
    weights = folder / "model.safetensors"
    os.utime(folder / "all_results.json", (weights.stat().st_mtime - 60,) * 2)
    monkeypatch.chdir(tmp_path)
    stale = []
    assert find_metrics(folder, report=lambda path, why: stale.append((path.name, why))) == []
    assert stale and stale[0][0] == "all_results.json" and "earlier model" in stale[0][1]
    assert not results.exists()


def test_publish_help_explains_every_flag():
    parser = build_parser()
    assert all(action.help for action in parser._actions)
    text = parser.format_help()
    for flag in ["--output_dir", "--overwrite", "--metrics", "--no_metrics", "--dataset", "--base_models", "--vad_lexicon",
                 "--verify", "--hub_model_id", "--private"]:  # fmt: skip
        assert flag in text, flag
