import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import corpus_texts, random_images, tiny_vision_config
from PIL import Image

from processing_sevlm import IGNORE_INDEX, SevlmProcessor, load_image
from sevlm.loading import load_model_and_processor, missing_processor_files
from sevlm.tokenizer import train_tokenizer


@pytest.fixture()
def processor(tokenizer):
    return SevlmProcessor.from_vision_text(tiny_vision_config(), copy.deepcopy(tokenizer))


def test_training_sequence_layout(processor):
    tokenizer = processor.tokenizer
    batch = processor(images=random_images(2), emotions=["something else", "awe"], explanations=["it is strange", "the mountain is huge"])
    ids, types, labels, mask = (batch[k] for k in ("input_ids", "token_type_ids", "labels", "attention_mask"))
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    row = ids[0].tolist()
    text = tokenizer.decode(row, skip_special_tokens=False)
    assert text.startswith("<|endoftext|> the emotion is something else because it is strange<|endoftext|>")
    # "something else" is two tokens; the segment switches at " because".
    because = row.index(processor.connector_token_ids[0])
    assert set(types[0, :because].tolist()) == {processor.emotion_token_id}
    assert set(types[0, because:].tolist()) == {processor.explanation_token_id}
    assert labels[0, 0] == IGNORE_INDEX and torch.equal(labels[0, 1 : mask[0].sum()], ids[0, 1 : mask[0].sum()])
    # The shorter row is right-padded with <pad>, masked out and ignored by the loss; padding is explanation.
    short = mask[1].sum()
    assert (ids[1, short:] == tokenizer.pad_token_id).all() and (labels[1, short:] == IGNORE_INDEX).all()
    assert (types[1, short:] == processor.explanation_token_id).all()
    assert ids[1, short - 1] == tokenizer.eos_token_id


def test_long_explanations_are_cut_to_max_length_keeping_eos(processor):
    long = " ".join(["the mountain is huge and majestic"] * 10)
    batch = processor.encode_text(["awe"], [long])
    assert batch["input_ids"].shape[1] == 30
    assert batch["input_ids"][0, -1] == processor.tokenizer.eos_token_id
    assert processor.encode_text(["awe"], [long], max_length=12)["input_ids"].shape[1] == 12


def test_inference_and_conditioned_prompts(processor):
    tokenizer = processor.tokenizer
    plain = processor(images=random_images(3))
    assert set(plain) == {"input_ids", "attention_mask", "token_type_ids", "pixel_values"}
    assert tokenizer.decode(plain["input_ids"][0]) == "<|endoftext|> the emotion is"
    conditioned = processor(images=random_images(2), emotions=["awe", "something else"])
    # Left padding so that generation continues right after " because".
    assert conditioned["attention_mask"][0].tolist()[0] == 0
    assert tokenizer.decode(conditioned["input_ids"][0], skip_special_tokens=True) == " the emotion is awe because"
    assert (conditioned["input_ids"][:, -1] == processor.connector_token_ids[-1]).all()


def test_post_process_generation(processor):
    tokenizer = processor.tokenizer
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    full = [bos, *encode(" the emotion is something else because it is strange"), eos, pad, pad]
    new_only = [*encode(" fear because the storm is frightening"), eos]
    left_padded = [pad, bos, *encode(" the emotion is awe because the mountain is huge"), eos]
    no_connector = [bos, *encode(" the emotion is sadness")]
    results = processor.post_process_generation(torch.tensor([full]).tolist() + [new_only, left_padded, no_connector])
    assert results == [
        {"emotion": "something else", "explanation": "it is strange"},
        {"emotion": "fear", "explanation": "the storm is frightening"},
        {"emotion": "awe", "explanation": "the mountain is huge"},
        {"emotion": "sadness", "explanation": ""},
    ]


def test_special_tokens_added_once(tokenizer):
    plain = train_tokenizer(corpus_texts(), vocab_size=300)
    # A GPT-2 style tokenizer with only <|endoftext|>, as the pretrained GPT-2 one.
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(plain.backend_tokenizer.to_str())
    from transformers import GPT2Tokenizer

    gpt2_like = GPT2Tokenizer(tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    gpt2_like.pad_token = None
    before = len(gpt2_like)
    processor = SevlmProcessor.from_vision_text(tiny_vision_config(), gpt2_like)
    assert processor.tokenizer.pad_token == "<pad>" or processor.tokenizer.pad_token_id != processor.tokenizer.eos_token_id
    assert len(processor.tokenizer) >= before
    size = len(processor.tokenizer)
    SevlmProcessor(image_processor=processor.image_processor, tokenizer=processor.tokenizer)
    assert len(processor.tokenizer) == size


def test_save_and_reload(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    reloaded = SevlmProcessor.from_pretrained(tmp_path)
    assert reloaded.emotions == processor.emotions and reloaded.max_length == 30
    assert reloaded.token_id_config() == processor.token_id_config()
    images = random_images(2)
    torch.testing.assert_close(reloaded(images=images)["pixel_values"], processor(images=images)["pixel_values"])


def test_whole_painting_is_kept(processor):
    """A wide painting is squeezed to a square, not centre-cropped: its right edge still shows."""
    wide = np.zeros((32, 128, 3), dtype=np.uint8)
    wide[:, -16:] = 255  # a white band at the far right
    pixels = processor.preprocess_images([Image.fromarray(wide)])
    assert pixels[0, :, :, -2:].mean() > 1.0  # normalised white is about +1.9


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "CMYK", "P", "I;16", "1"])
def test_image_modes(processor, mode):
    image = Image.new("RGB", (40, 30), (200, 30, 30)).convert(mode)
    assert load_image(image).mode == "RGB"
    assert processor.preprocess_images([image]).shape == (1, 3, 32, 32)


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_image(image).getpixel((0, 0)) == (255, 255, 255)


def test_arrays_tensors_and_paths(processor, tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "painting é.png")
    inputs = [array, array[..., 0], torch.from_numpy(array).permute(2, 0, 1), array.astype(np.float32) / 255, str(tmp_path / "painting é.png")]
    pixels = processor.preprocess_images(inputs)
    assert pixels.shape == (5, 3, 32, 32)
    torch.testing.assert_close(pixels[0], pixels[2])
    torch.testing.assert_close(pixels[0], pixels[4])


def test_bad_inputs_give_clear_errors(processor, tmp_path):
    with pytest.raises(ValueError, match="needs `images`"):
        processor(emotions=["awe"], explanations=["huge"])
    with pytest.raises(ValueError, match="empty list"):
        processor(images=[])
    with pytest.raises(ValueError, match="Explanation 1 is empty"):
        processor(images=random_images(2), emotions=["awe", "fear"], explanations=["huge", "  "])
    with pytest.raises(ValueError, match=r"Unknown emotion 'joyful' \(row 0\)"):
        processor(images=random_images(1), emotions=["joyful"], explanations=["huge"])
    with pytest.raises(ValueError, match="2 images but 1 emotions"):
        processor(images=random_images(2), emotions=["awe"], explanations=["huge"])
    with pytest.raises(ValueError, match="need their `emotions`"):
        processor(images=random_images(1), explanations=["huge"])
    with pytest.raises(ValueError, match="shape"):
        processor.preprocess_images([np.zeros((6, 8, 2), dtype=np.uint8)])
    with pytest.raises(TypeError, match="PIL image"):
        processor.preprocess_images([{"not": "an image"}])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        processor.preprocess_images([str(broken)])


def test_emotion_names_are_matched_loosely(processor):
    assert processor.emotion_index(" Something Else ") == 8
    batch = processor.encode_text(["AWE"], ["huge"])
    assert batch["input_ids"].shape[0] == 1


# ------------------------------------------------------------------------------------------- load_image
def _halves(size=(40, 20)):
    """Left half red, right half blue."""
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[:, : size[0] // 2] = (255, 0, 0)
    array[:, size[0] // 2 :] = (0, 0, 255)
    return Image.fromarray(array)


def test_exif_orientation_is_applied(processor, tmp_path):
    """A camera photo stored sideways with an EXIF orientation tag is seen upright, from a file or in memory."""
    stored = _halves()
    exif = stored.getexif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    stored.save(tmp_path / "photo.png", exif=exif.tobytes())
    upright = stored.transpose(Image.Transpose.ROTATE_270)
    assert upright.size == (20, 40) and upright.getpixel((10, 5)) == (255, 0, 0)  # red on top
    loaded = load_image(tmp_path / "photo.png")
    assert loaded.size == (20, 40) and loaded.tobytes() == upright.tobytes()
    with Image.open(tmp_path / "photo.png") as opened:
        assert load_image(opened).tobytes() == upright.tobytes()
    torch.testing.assert_close(
        processor.preprocess_images([str(tmp_path / "photo.png")]), processor.preprocess_images([upright])
    )


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((6, 6), 128 * 257, dtype=np.uint16)).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode == "I;16"
    assert load_image(tmp_path / "gray16.png").getpixel((0, 0)) == (128, 128, 128)
    assert load_image(np.full((4, 4, 3), 65535, dtype=np.uint16)).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(np.full((4, 4), 257 * 10, dtype=np.uint16)).getpixel((0, 0)) == (10, 10, 10)


@pytest.mark.parametrize("kind", ["rgba", "la", "palette", "rgb-key"])
def test_transparency_is_composited_on_white(tmp_path, kind):
    if kind == "rgba":
        image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    elif kind == "la":
        image = Image.new("LA", (4, 4), (0, 0))
    elif kind == "palette":
        image = Image.new("P", (4, 4), 0)
        image.putpalette([0, 0, 0] * 256)
        image.info["transparency"] = 0
    else:
        image = Image.new("RGB", (4, 4), (0, 0, 0))
        image.info["transparency"] = (0, 0, 0)
    path = tmp_path / f"{kind}.png"
    image.save(path, **({"transparency": image.info["transparency"]} if "transparency" in image.info else {}))
    assert load_image(path).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(image).getpixel((0, 0)) == (255, 255, 255)


def test_draft_size_decodes_jpeg_at_reduced_scale(tmp_path):
    big = Image.new("RGB", (800, 600), (10, 200, 30))
    big.save(tmp_path / "big.jpg")
    assert load_image(tmp_path / "big.jpg").size == (800, 600)
    assert load_image(tmp_path / "big.jpg", draft_size=(200, 150)).size == (200, 150)
    assert load_image(tmp_path / "big.jpg", draft_size=(300, 300)).size == (400, 300)  # at least the size asked
    # Stored sideways: the draft still covers the upright size asked for.
    exif = big.getexif()
    exif[0x0112] = 6
    big.save(tmp_path / "sideways.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "sideways.jpg", draft_size=(150, 200)).size == (150, 200)
    big.save(tmp_path / "big.png")
    assert load_image(tmp_path / "big.png", draft_size=(200, 150)).size == (800, 600)  # not a JPEG: full size


def test_bytes_and_file_objects(tmp_path):
    _halves().save(tmp_path / "halves.png")
    data = (tmp_path / "halves.png").read_bytes()
    assert load_image(data).tobytes() == _halves().tobytes()
    with open(tmp_path / "halves.png", "rb") as handle:
        assert load_image(handle).tobytes() == _halves().tobytes()


def test_decompression_bomb_is_an_error_naming_the_file(tmp_path, monkeypatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels is more than twice the limit
    with pytest.raises(ValueError, match=r"huge\.png.*too large.*MAX_IMAGE_PIXELS"):
        load_image(str(tmp_path / "huge.png"), index=3)


def test_unreadable_files_are_errors_naming_the_file(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"Image 2 \(.*text\.png\) cannot be read"):
        load_image(tmp_path / "text.png", index=2)
    with pytest.raises(ValueError, match=r"missing\.jpg"):
        load_image(tmp_path / "missing.jpg")
    # A file name that is not valid UTF-8 still gives a printable message.
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")
    with open(odd, "wb") as handle:
        handle.write(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"caf\\udce9\.png") as raised:
        load_image(os.fsdecode(odd))
    str(raised.value).encode("utf-8")  # printable


# ------------------------------------------------------------------------------------- sequence format
def test_max_length_below_the_minimum_is_an_error_naming_it(processor):
    # <bos> + " the emotion is" + "something else" + " because" + one explanation token + <eos>
    expected = 1 + len(processor.prompt_token_ids) + len(processor.emotion_token_ids[8]) + len(processor.connector_token_ids) + 2
    assert processor.min_max_length == expected
    assert processor.encode_text(["something else"], ["strange and dark"], max_length=expected)["input_ids"].shape[1] == expected
    with pytest.raises(ValueError, match=rf"max_length={expected - 1} is too short.*'something else'.*at least {expected}"):
        processor.encode_text(["awe"], ["huge"], max_length=expected - 1)
    with pytest.raises(ValueError, match=rf"at least {expected}"):
        processor.max_length = 4
    with pytest.raises(ValueError, match=rf"at least {expected}"):
        SevlmProcessor(image_processor=processor.image_processor, tokenizer=processor.tokenizer, max_length=5)


def test_token_types_come_from_the_shared_format(processor):
    batch = processor.encode_text(["something else", "awe"], ["it is strange because of the dark", "huge"])
    torch.testing.assert_close(batch["token_type_ids"], processor.sequence_format.segment_ids(batch["input_ids"]))
    prompts = processor.encode_prompt(3, ["awe", None, "something else"])
    assert prompts["attention_mask"][1].tolist().count(0) == 3  # the free prompt is the shortest, left-padded
    assert processor.decode(prompts["input_ids"][1], skip_special_tokens=True) == " the emotion is"
    torch.testing.assert_close(prompts["token_type_ids"], processor.sequence_format.segment_ids(prompts["input_ids"]))


def test_connector_inside_an_emotion_name_is_refused(tokenizer):
    with pytest.raises(ValueError, match=r"connector tokens .* emotion 'sad because'"):
        SevlmProcessor.from_vision_text(tiny_vision_config(), copy.deepcopy(tokenizer), emotions=["awe", "sad because"])


def test_any_taxonomy_prompt_and_connector(tmp_path):
    """Names of several words, several tokens and other scripts; another prompt and connector."""
    emotions = ["quiet longing", "Gemütlichkeit", "喜び", "awe"]
    texts = [f" the feeling is {e} since {x}" for e in emotions for x in ["the sky is calm", "it is dark and strange"]] * 5
    tokenizer = train_tokenizer(texts, vocab_size=400)
    processor = SevlmProcessor.from_vision_text(
        tiny_vision_config(), tokenizer, emotions=emotions, prompt_text=" the feeling is", connector_text=" since"
    )
    assert processor.emotions == emotions and all(len(ids) >= 1 for ids in processor.emotion_token_ids)
    assert len(processor.emotion_token_ids[0]) > 1  # two words: at least two tokens
    batch = processor(images=random_images(4), emotions=emotions, explanations=["the sky is calm"] * 4)
    for row, emotion in enumerate(emotions):
        text = tokenizer.decode(batch["input_ids"][row], skip_special_tokens=True)
        assert text.startswith(f" the feeling is {emotion} since the sky is calm")
        types = batch["token_type_ids"][row].tolist()
        since = batch["input_ids"][row].tolist().index(processor.connector_token_ids[-1])
        assert set(types[:since]) == {processor.emotion_token_id} and types[since] == processor.explanation_token_id
    generated = processor(images=random_images(4), emotions=emotions, explanations=["it is dark and strange"] * 4)["input_ids"]
    parsed = processor.post_process_generation(generated)
    assert parsed == [{"emotion": e, "explanation": "it is dark and strange"} for e in emotions]
    # Case, Unicode normal form and spacing do not matter when naming a class.
    import unicodedata

    assert processor.emotion_index(unicodedata.normalize("NFD", "GEMÜTLICHKEIT")) == 1
    assert processor.emotion_index("  Quiet   Longing ") == 0
    processor.save_pretrained(tmp_path)
    reloaded = SevlmProcessor.from_pretrained(tmp_path)
    assert reloaded.token_id_config() == processor.token_id_config()


def test_processor_and_model_config_must_agree(tiny, tmp_path):
    model, processor = tiny
    processor.check_config(model.config)  # built together: no difference
    other = SevlmProcessor.from_vision_text(tiny_vision_config(), copy.deepcopy(processor.tokenizer), connector_text=" because of")
    with pytest.raises(ValueError, match="differ in connector_token_ids"):
        other.check_config(model.config)
    # A folder whose processor files disagree with its config.json is refused on loading.
    model.save_pretrained(tmp_path)
    other.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"processor in .* does not match the model's config.*connector_token_ids"):
        SevlmProcessor.from_pretrained(tmp_path)
    # Inputs built by another format are caught by the model, which derives the segments itself.
    model.config.use_contrastive_loss = False
    with pytest.raises(ValueError, match="another sequence format"):
        model(**other(images=random_images(1), emotions=["awe"], explanations=["the sky"]))


def test_folder_without_processor_files_says_what_is_missing(tiny, tmp_path):
    """Every tool loads a folder through `sevlm.loading`, which names the processor files a folder lacks."""
    model, processor = tiny
    model.save_pretrained(tmp_path / "model-only")
    with pytest.raises(FileNotFoundError, match=r"missing processor_config\.json, tokenizer_config\.json.*processor\.save_pretrained"):
        load_model_and_processor(tmp_path / "model-only")
    model.save_pretrained(tmp_path / "no-tokenizer")
    processor.save_pretrained(tmp_path / "no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "no-tokenizer" / name).unlink()
    assert missing_processor_files(tmp_path / "no-tokenizer") == ["tokenizer_config.json", "tokenizer.json or vocab.json + merges.txt"]
    with pytest.raises(FileNotFoundError, match=r"missing tokenizer_config\.json, tokenizer\.json or vocab\.json \+ merges\.txt"):
        load_model_and_processor(tmp_path / "no-tokenizer")


@pytest.mark.slow
def test_loading_needs_no_remote_code_prompt_and_warns_nothing(trained_tiny, tmp_path):
    """`SevlmProcessor.from_pretrained(folder)` with the project's class, in a fresh process with stdin on a pipe:
    no "run the custom code?" question (a 15 s stall) and no model-type warning."""
    model, processor, _ = trained_tiny
    model.save_pretrained(tmp_path / "complete")
    processor.save_pretrained(tmp_path / "complete")
    script = textwrap.dedent(
        """
        import time
        from processing_sevlm import SevlmProcessor
        start = time.time()
        processor = SevlmProcessor.from_pretrained("complete")
        print("loaded", type(processor).__name__, len(processor.emotions), round(time.time() - start, 1))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.PIPE
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "loaded SevlmProcessor 9" in result.stdout
    assert "custom code" not in output and "model of type" not in output, output[-3000:]


def test_huge_images_are_shrunk_right_after_decoding(tmp_path):
    """A hostile file (a 300 KB PNG of 13000 x 13000 16-bit pixels) took sevlm-predict to 5 GB: decoded images keep at
    most LARGEST_SIDE pixels on the long side, shrunk before any conversion (16-bit included), aspect kept."""
    from processing_sevlm import LARGEST_SIDE

    wide = np.full((6, LARGEST_SIDE * 2), 65535, dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "wide16.png")
    loaded = load_image(tmp_path / "wide16.png")
    assert loaded.size == (LARGEST_SIDE, 3) and loaded.mode == "RGB" and loaded.getpixel((0, 0)) == (255, 255, 255)
    small = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(small).save(tmp_path / "small16.png")
    # 16-bit to 8-bit without a float copy: the same values as round(x / 257).
    assert np.array_equal(np.asarray(load_image(tmp_path / "small16.png"))[..., 0], np.round(small / 257).astype(np.uint8))
    Image.new("RGB", (LARGEST_SIDE + 100, 50), (10, 200, 30)).save(tmp_path / "wide.jpg")
    assert load_image(tmp_path / "wide.jpg").size[0] <= LARGEST_SIDE


def test_a_checkpoint_without_code_names_each_missing_file_once(tiny, tmp_path):
    from sevlm.loading import check_model_folder

    model, _ = tiny
    checkpoint = tmp_path / "run" / "checkpoint-10"
    model.save_pretrained(checkpoint)
    for name in ("configuration_sevlm.py", "modeling_sevlm.py", "pipeline_sevlm.py"):
        (checkpoint / name).unlink(missing_ok=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="is a Trainer checkpoint") as raised:
        check_model_folder(checkpoint)
    message = str(raised.value)
    assert message.count("processing_sevlm.py") == 1 and "modeling_sevlm.py" in message


def test_no_progress_hides_the_loading_bar(tiny, tmp_path, capfd):
    """--no_progress (progress=False) hides transformers' "Loading weights" bar too, and leaves it on afterwards."""
    from transformers.utils import logging as transformers_logging

    model, processor = tiny
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    capfd.readouterr()
    load_model_and_processor(tmp_path / "model", progress=False)
    assert "Loading weights" not in capfd.readouterr().err
    assert transformers_logging.is_progress_bar_enabled()
    load_model_and_processor(tmp_path / "model")
    assert "Loading weights" in capfd.readouterr().err
