"""pipeline_sevlm.py: the `art-emotion` pipeline (single, batched, conditional), its folder entry, remote loading."""

import ast
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, random_images
from transformers import Pipeline, pipeline

from pipeline_sevlm import TASK, SevlmArtEmotionPipeline, pipeline_config_entry, predict_batch
from sevlm.hub import add_pipeline_to_folder


@pytest.fixture(scope="module")
def pipe(trained_tiny):
    model, processor, _ = trained_tiny
    return SevlmArtEmotionPipeline(model=model, processor=processor, device="cpu")


def expected_result(model, processor, image, emotion=None):
    """What the pipeline promises, computed by hand: argmax of emotion_scores, explanation generated for it."""
    pixel_values = processor(images=[image])["pixel_values"]
    scores = model.emotion_scores(pixel_values)[0]
    emotion = emotion or model.config.emotions[int(scores.argmax())]
    ids = model.generate(**processor(images=[image], emotions=[emotion]))
    return {
        "emotion": emotion,
        "score": float(scores[model.config.emotions.index(emotion)]),
        "scores": dict(zip(model.config.emotions, scores.tolist())),
        "explanation": processor.post_process_generation(ids)[0]["explanation"],
    }


def assert_same(result, expected):
    assert result["emotion"] == expected["emotion"]
    assert result["explanation"] == expected["explanation"]
    assert result["score"] == pytest.approx(expected["score"], abs=1e-5)
    assert list(result["scores"]) == list(expected["scores"])
    assert list(result["scores"].values()) == pytest.approx(list(expected["scores"].values()), abs=1e-5)


def test_single_image(pipe, trained_tiny):
    model, processor, images = trained_tiny
    result = pipe(images[0])
    assert set(result) == {"emotion", "score", "scores", "explanation"}
    assert isinstance(result["score"], float) and isinstance(result["explanation"], str)
    assert list(result["scores"]) == model.config.emotions and sum(result["scores"].values()) == pytest.approx(1.0)
    # The predicted emotion is the best-scored class; the explanation is written for it.
    assert result["score"] == result["scores"][result["emotion"]] == max(result["scores"].values())
    assert_same(result, expected_result(model, processor, images[0]))
    # The trained model's free generation agrees with it.
    free = processor.post_process_generation(model.generate(pixel_values=processor(images=images[0])["pixel_values"]))[0]
    assert (result["emotion"], result["explanation"]) == (free["emotion"], free["explanation"]) == ("sadness", "the woman looks lonely and sad")


def test_batch_matches_single_for_pil_arrays_tensors_and_paths(pipe, trained_tiny, tmp_path):
    _, _, images = trained_tiny
    path = tmp_path / "painting.png"
    images[2].save(path)
    inputs = [images[0], np.asarray(images[1]), str(path), torch.from_numpy(np.asarray(images[3]).copy()).permute(2, 0, 1)]
    singles = [pipe(item) for item in inputs]
    batched = pipe(inputs, batch_size=3)
    assert isinstance(batched, list) and len(batched) == 4
    for one, many in zip(singles, batched):
        assert_same(many, one)
    assert [r["emotion"] for r in batched] == ["sadness", "awe", "something else", "anger"]
    assert pipe(tuple(inputs[:2]), batch_size=2)[1]["emotion"] == "awe"
    assert pipe([]) == []


def test_conditional_emotion(pipe, trained_tiny):
    model, processor, images = trained_tiny
    results = pipe(images, emotion="awe", batch_size=4)
    for image, result in zip(images, results):
        assert result["emotion"] == "awe" and result["score"] == result["scores"]["awe"]
        assert_same(result, expected_result(model, processor, image, emotion="awe"))
    # Per-image emotions as dicts, mixed with plain images; names match case-insensitively.
    mixed = pipe([{"image": images[0], "emotion": "Fear"}, images[1]], batch_size=2)
    assert mixed[0]["emotion"] == "fear" and mixed[1]["emotion"] == "awe"
    with pytest.raises(ValueError, match="Unknown emotion 'joy'.*amusement"):
        pipe(images[0], emotion="joy")
    with pytest.raises(ValueError, match="'image' key"):
        pipe({"picture": images[0]})


def test_generation_options(trained_tiny):
    model, processor, images = trained_tiny
    short = SevlmArtEmotionPipeline(model=model, processor=processor, device="cpu", max_new_tokens=2)
    assert len(short(images[0])["explanation"].split()) <= 2
    # Creation-time options stay in force when a call adds others.
    assert len(short(images[0], num_beams=2)["explanation"].split()) <= 2
    assert short(images[0], max_new_tokens=25)["explanation"] == "the woman looks lonely and sad"
    with pytest.raises(TypeError, match=r"Unknown argument\(s\) \['emotions'\]"):
        short(images[0], emotions="awe")
    with pytest.raises(ValueError, match="num_return_sequences"):
        short(images[0], num_return_sequences=2)
    with pytest.raises(ValueError, match="SevlmProcessor"):
        SevlmArtEmotionPipeline(model=model, processor=None, device="cpu")


def test_each_image_read_and_encoded_once(pipe, trained_tiny, tmp_path, monkeypatch):
    import PIL.Image

    model, _, images = trained_tiny
    paths = []
    for index, image in enumerate(images):
        paths.append(str(tmp_path / f"{index}.png"))
        image.save(paths[-1])
    opened, encoded = [], []
    real_open = PIL.Image.open
    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    hook = model.vision_model.register_forward_hook(lambda module, args, output: encoded.append(args))
    try:
        pipe(paths, batch_size=4)
    finally:
        hook.remove()
    assert sorted(opened) == sorted(paths)
    assert len(encoded) == 1  # one vision pass for the batch: scores and generation share the features


def test_registered_task_builds_the_pipeline_in_process(trained_tiny):
    model, processor, images = trained_tiny
    built = pipeline(TASK, model=model, processor=processor, device="cpu")
    assert isinstance(built, SevlmArtEmotionPipeline)
    assert built(images[1])["emotion"] == "awe"


def test_folder_entry_matches_pipeline_save_pretrained(pipe, tmp_path):
    Pipeline.save_pretrained(pipe, tmp_path / "by-transformers")
    written = json.loads((tmp_path / "by-transformers" / "config.json").read_text())["custom_pipelines"]
    assert written == pipeline_config_entry()
    pipe.save_pretrained(tmp_path / "ours")  # model + processor + add_pipeline_to_folder
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["custom_pipelines"] == written
    assert config["auto_map"]["AutoModel"] == "modeling_sevlm.SevlmForConditionalGeneration"
    assert (tmp_path / "ours" / "pipeline_sevlm.py").read_text() == (REPO_ROOT / "pipeline_sevlm.py").read_text()
    assert (tmp_path / "ours" / "processor_config.json").is_file()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        add_pipeline_to_folder(tmp_path / "empty")


def test_pipeline_file_is_self_contained():
    """The file travels as remote code: only the standard library, torch, transformers and the other model files."""
    tree = ast.parse((REPO_ROOT / "pipeline_sevlm.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert modules <= {"pathlib", "torch", "transformers", "configuration_sevlm", ""}, modules


@pytest.mark.slow
def test_pipeline_loads_in_fresh_process(pipe, trained_tiny, tmp_path):
    model, processor, images = trained_tiny
    folder = tmp_path / "sevlm-tiny"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    add_pipeline_to_folder(folder)
    for index, image in enumerate(images):
        image.save(tmp_path / f"{index}.png")
    np.save(tmp_path / "array.npy", np.asarray(random_images(1, seed=5)[0]))
    expected = {
        "single": pipe(images[0]),
        "batch": pipe([images[1], images[2], np.load(tmp_path / "array.npy")], batch_size=2),
        "conditional": pipe(images[3], emotion="awe"),
    }
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from transformers import pipeline
        assert {str(REPO_ROOT)!r} not in sys.path
        pipe = pipeline("{TASK}", model="sevlm-tiny", trust_remote_code=True, device="cpu")
        print(json.dumps({{
            "class": type(pipe).__module__ + "." + type(pipe).__name__,
            "single": pipe("0.png"),
            "batch": pipe(["1.png", "2.png", np.load("array.npy")], batch_size=2),
            "conditional": pipe("3.png", emotion="awe"),
        }}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["class"].startswith("transformers_modules.") and loaded["class"].endswith("pipeline_sevlm.SevlmArtEmotionPipeline")
    assert_same(loaded["single"], expected["single"])
    for got, want in zip(loaded["batch"], expected["batch"], strict=True):
        assert_same(got, want)
    assert_same(loaded["conditional"], expected["conditional"])


# --------------------------------------------------------------------------------------------- predict_batch
def test_predict_batch_is_what_the_pipeline_returns(pipe, trained_tiny):
    model, processor, images = trained_tiny
    results = predict_batch(model, processor, images)
    assert [set(r) for r in results] == [{"emotion", "score", "scores", "explanation"}] * 4
    for image, result in zip(images, results):
        assert_same(result, pipe(image))
    from_pixels = predict_batch(model, processor, pixel_values=processor.preprocess_images(images))
    for got, want in zip(from_pixels, results):
        assert_same(got, want)
    with pytest.raises(ValueError, match="either `images` or `pixel_values`"):
        predict_batch(model, processor)
    with pytest.raises(ValueError, match="emotion_source"):
        predict_batch(model, processor, images, emotion_source="votes")


def test_generation_source_is_free_generation(trained_tiny):
    """`emotion_source="generation"`: the paper's protocol, the emotion the model writes before the connector."""
    model, processor, images = trained_tiny
    pixel_values = processor(images=images)["pixel_values"]
    free = processor.post_process_generation(model.generate(pixel_values=pixel_values))
    results = predict_batch(model, processor, images, emotion_source="generation")
    assert [(r["emotion"], r["explanation"]) for r in results] == [(f["emotion"], f["explanation"]) for f in free]
    scores = model.emotion_scores(pixel_values)
    for row, result in enumerate(results):
        assert list(result["scores"].values()) == pytest.approx(scores[row].tolist(), abs=1e-6)
        assert result["score"] == result["scores"][result["emotion"]]
    # Cut short, "something else" is written as "something": not a class, so no score.
    short = predict_batch(model, processor, images[2:3], emotion_source="generation", generate_kwargs={"max_new_tokens": 1})
    assert short[0]["emotion"] == "something" and short[0]["score"] is None and short[0]["explanation"] == ""


def test_given_emotions_per_image_in_both_modes(trained_tiny):
    model, processor, images = trained_tiny
    for source in ("scores", "generation"):
        results = predict_batch(model, processor, images, emotions=[None, "Fear", None, "awe"], emotion_source=source)
        assert [r["emotion"] for r in results] == ["sadness", "fear", "something else", "awe"]
        single = predict_batch(model, processor, images[1:2], emotions=["fear"])[0]
        assert results[1]["explanation"] == single["explanation"]
    with pytest.raises(ValueError, match="4 images but 2 emotions"):
        predict_batch(model, processor, images, emotions=["awe", None])
    with pytest.raises(ValueError, match="Unknown emotion 'joy'"):
        predict_batch(model, processor, images[:1], emotions=["joy"])


def test_image_embeds_are_the_pooled_image_vector(trained_tiny):
    model, processor, images = trained_tiny
    results = predict_batch(model, processor, images, return_image_embeds=True)
    pooled = model.get_image_features(processor(images=images)["pixel_values"]).pooler_output
    for row, result in enumerate(results):
        embeds = result["image_embeds"]
        assert embeds.dtype == torch.float32 and embeds.device.type == "cpu" and embeds.shape == (32,)
        assert not embeds.requires_grad
        torch.testing.assert_close(embeds, pooled[row])


def _cross_attention_while_generating(model, processor, image, emotion):
    """The attention map computed independently: hooks on the cross-attention layers during a greedy generate."""
    captured = []
    hooks = [
        block.crossattention.register_forward_hook(lambda module, args, output: captured.append(output[1]))
        for block in model.language_model.transformer.h
    ]
    decoder = model.language_model
    previous = decoder.config._attn_implementation  # no public getter in transformers 5
    decoder.set_attn_implementation("eager")  # SDPA returns no weights
    try:
        ids = model.generate(**processor(images=[image], emotions=[emotion]))
    finally:
        decoder.set_attn_implementation(previous)
        for hook in hooks:
            hook.remove()
    layers = len(hooks)
    steps = [torch.stack(captured[i : i + layers]).mean(dim=(0, 2))[0, -1] for i in range(0, len(captured), layers)]
    # Step k wrote token k after the prompt: keep the steps up to the one that wrote <eos>.
    written = ids[0, -len(steps) :].tolist()
    end = written.index(processor.tokenizer.eos_token_id) + 1 if processor.tokenizer.eos_token_id in written else len(steps)
    grid = torch.stack(steps[:end]).mean(0)
    return (grid / grid.max()).view(4, 4)


def test_attention_map_is_where_the_explanation_looked(trained_tiny):
    model, processor, images = trained_tiny
    results = predict_batch(model, processor, images, return_attention_map=True)
    for image, result in zip(images[:2], results[:2]):
        grid = torch.tensor(result["attention_map"])
        assert grid.shape == (4, 4) and grid.min() >= 0 and grid.max() == 1.0
        torch.testing.assert_close(grid, _cross_attention_while_generating(model, processor, image, result["emotion"]))
    assert results[0]["attention_map"] != results[1]["attention_map"]
    assert model.language_model.config._attn_implementation == "sdpa"


def test_predict_batch_keeps_the_training_mode(trained_tiny):
    model, processor, images = trained_tiny
    model.train()
    try:
        with torch.enable_grad():
            results = predict_batch(model, processor, images[:1], return_image_embeds=True)
        assert model.training and not results[0]["image_embeds"].requires_grad
    finally:
        model.eval()
    assert not model.training


def test_pipeline_options_emotion_source_and_attention_map(pipe, trained_tiny):
    _, _, images = trained_tiny
    default = pipe(images[2])
    assert set(default) == {"emotion", "score", "scores", "explanation"}
    free = pipe(images[2], emotion_source="generation", max_new_tokens=1)
    assert free["emotion"] == "something" and free["score"] is None
    mapped = pipe(images[:2], return_attention_map=True, batch_size=2)
    assert all(len(r["attention_map"]) == 4 and len(r["attention_map"][0]) == 4 for r in mapped)
    assert_same(mapped[0], pipe(images[0]))
    with pytest.raises(ValueError, match="emotion_source"):
        pipe(images[0], emotion_source="majority")


def test_pipeline_refuses_a_processor_of_another_format(trained_tiny):
    import copy

    from processing_sevlm import SevlmProcessor

    model, processor, images = trained_tiny
    other = SevlmProcessor.from_vision_text(
        model.config.vision_config, copy.deepcopy(processor.tokenizer), connector_text=" because of"
    )
    with pytest.raises(ValueError, match="differ in connector_token_ids"):
        SevlmArtEmotionPipeline(model=model, processor=other, device="cpu")
    with pytest.raises(ValueError, match="differ in connector_token_ids"):
        predict_batch(model, other, images[:1])


def test_pipeline_errors_name_the_file(pipe, tmp_path, monkeypatch):
    from PIL import Image

    Image.new("RGB", (100, 100)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match=r"bomb\.png.*too large"):
        pipe(str(tmp_path / "bomb.png"))


def test_pipeline_sees_photos_upright(pipe, trained_tiny, tmp_path):
    from PIL import Image

    _, _, images = trained_tiny
    upright = images[0]
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # stored on its side ...
    exif = sideways.getexif()
    exif[0x0112] = 6  # ... with the tag that turns it back
    sideways.save(tmp_path / "photo.png", exif=exif.tobytes())
    assert_same(pipe(str(tmp_path / "photo.png")), pipe(upright))
