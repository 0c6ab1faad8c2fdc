import copy

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import corpus_texts, random_images, tiny_vision_config
from processing_sevlm import IGNORE_INDEX, SevlmProcessor, to_rgb_image, train_tokenizer


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
    assert to_rgb_image(image).mode == "RGB"
    assert processor.preprocess_images([image]).shape == (1, 3, 32, 32)


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert to_rgb_image(image).getpixel((0, 0)) == (255, 255, 255)


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
