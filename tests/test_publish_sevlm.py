"""publish_sevlm.py: a complete Hub folder and model card, loaded as the Hub would serve it (nothing is uploaded)."""

import json
import math
import shutil
from types import SimpleNamespace

import pytest
import torch
import yaml
from transformers import CLIPVisionConfig, GPT2Config

from conftest import corpus_texts
from configuration_sevlm import SevlmConfig
from modeling_sevlm import SevlmForConditionalGeneration
from pipeline_sevlm import TASK, SevlmArtEmotionPipeline
from processing_sevlm import SevlmProcessor, train_tokenizer
from publish_sevlm import (
    _card_metrics,
    check_folder,
    find_metrics,
    main,
    publish,
    training_card_fields,
    verify_folder,
    write_model_card,
)

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
    (folder / "train_results.json").write_text(json.dumps({"test_emotion_accuracy": 0.5, "eval_bleu_4": 0.05}))
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
    (out / "eval_args.json").write_text(json.dumps({"split": "test", "dataset_path": "data/artemis-v1"}))
    return out / "metrics.json"


@pytest.fixture(scope="module")
def hub_folder(trained_folder, metrics_file, tmp_path_factory):
    return publish(trained_folder, tmp_path_factory.mktemp("hub") / "sevlm-tiny", metrics=metrics_file, vad_lexicon="NRC-VAD-Lexicon.txt")


def card_metadata(folder):
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1]), text


def test_hub_folder_is_complete_and_clean(hub_folder):
    names = sorted(path.name for path in hub_folder.iterdir())
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


def test_model_card(hub_folder):
    metadata, text = card_metadata(hub_folder)
    assert metadata["pipeline_tag"] == "image-to-text" and metadata["library_name"] == "transformers"
    assert "custom_code" in metadata["tags"] and metadata["datasets"] == ["artemis"]
    assert metadata["base_model"] == ["openai/clip-vit-base-patch16", "distilgpt2"]
    results = {m["name"]: m["value"] for m in metadata["model-index"][0]["results"][0]["metrics"]}
    assert results["Emotion accuracy (test, %)"] == 62.5 and results["CIDEr (test, %)"] == 42.0
    assert len(results) == 10  # the paper's metrics; KL, VAD distance, per-emotion dicts and counts stay out
    assert "| test | BLEU-4 | 10.0 |" in text and "data/artemis-v1" in text
    # Usage for the pipeline and AutoModel, and the lexicon's source and terms.
    assert f'pipeline("{TASK}", model=' in text and "AutoModel.from_pretrained(" in text and "trust_remote_code=True" in text
    assert "saifmohammad.com/WebPages/nrc-vad.html" in text and "commercial" in text


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
    results = {m["name"]: m["value"] for m in metadata["model-index"][0]["results"][0]["metrics"]}
    assert results == {"Emotion accuracy (validation, %)": 40.0}
    metadata, text = card_metadata(tmp_path / "hub")
    assert "model-index" not in metadata and "not evaluated yet" in text


def test_metrics_found_from_train_results(trained_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_metrics(trained_folder) == trained_folder / "train_results.json"
    evaluated = tmp_path / "outputs" / "eval" / trained_folder.name / "test"
    evaluated.mkdir(parents=True)
    (evaluated / "metrics.json").write_text(json.dumps(EVAL_METRICS))
    assert find_metrics(trained_folder).resolve() == (evaluated / "metrics.json").resolve()
    assert _card_metrics({"test_emotion_accuracy": 0.5, "epoch": 3, "eval_bleu_4": 0.1}) == [
        ("test", "emotion_accuracy", 0.5), ("validation", "bleu_4", 0.1),
    ]  # fmt: skip


def test_errors_name_the_problem(trained_folder, hub_folder, tmp_path):
    with pytest.raises(FileExistsError, match="not empty"):
        publish(trained_folder, hub_folder)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        publish(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match=r"run eval_sevlm.py"):
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


def test_published_folder_loads_in_fresh_process(hub_folder, trained_tiny, tmp_path):
    """Copied to a temporary folder and loaded there (AutoModel, AutoProcessor, pipeline): identical outputs."""
    model, processor, images = trained_tiny
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"{index}.png")
        image.save(paths[-1])
    loaded = verify_folder(hub_folder, images=paths)
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
