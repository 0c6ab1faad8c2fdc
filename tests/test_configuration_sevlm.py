import json

import pytest
from helpers import tiny_text_config, tiny_vision_config
from transformers import CLIPVisionConfig, GPT2Config

from configuration_sevlm import ARTEMIS_EMOTIONS, SevlmConfig, SevlmSequenceFormat


def test_defaults_follow_the_paper():
    config = SevlmConfig()
    assert config.emotions == list(ARTEMIS_EMOTIONS) and config.emotions[8] == "something else"
    assert (config.prompt_text, config.connector_text) == (" the emotion is", " because")
    assert (config.vad_encoder_layers, config.vad_encoder_heads, config.vad_encoder_ffn_dim) == (3, 1, 128)
    assert config.vad_encoder_causal and config.freeze_vision
    assert config.use_vad_embedding and config.use_vad_loss and config.use_contrastive_loss
    assert (config.lm_loss_weight, config.vad_loss_weight, config.contrastive_loss_weight) == (1.0, 1.0, 1.0)
    assert config.vision_config.patch_size == 16 and config.text_config.n_layer == 6
    assert config.text_config.add_cross_attention


@pytest.mark.parametrize("as_dict", [True, False])
def test_sub_configs_from_dicts_or_objects(as_dict, tmp_path):
    vision, text = tiny_vision_config(), tiny_text_config()
    config = SevlmConfig(
        vision_config=vision.to_dict() if as_dict else vision,
        text_config=text.to_dict() if as_dict else text,
        emotions=["joy", "gloom", "something else"],
        use_contrastive_loss=False,
    )
    assert isinstance(config.vision_config, CLIPVisionConfig) and isinstance(config.text_config, GPT2Config)
    assert config.text_config.add_cross_attention and config.contrastive_hidden_size == 32
    config.save_pretrained(tmp_path)
    reloaded = SevlmConfig.from_pretrained(tmp_path)
    assert reloaded.emotions == ["joy", "gloom", "something else"] and not reloaded.use_contrastive_loss
    assert reloaded.vision_config.hidden_size == 32 and reloaded.text_config.n_embd == 32
    assert reloaded.auto_map["AutoModelForImageTextToText"] == "modeling_sevlm.SevlmForConditionalGeneration"


def test_bad_emotion_lists():
    with pytest.raises(ValueError, match="at least 2 distinct"):
        SevlmConfig(emotions=["awe"])
    with pytest.raises(ValueError, match="at least 2 distinct"):
        SevlmConfig(emotions=["awe", "awe"])
    with pytest.raises(ValueError, match="contains the connector"):
        SevlmConfig(emotions=["awe", "sad because"])


def _format_fields(**overrides):
    fields = dict(
        emotions=["awe", "something else"],
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
        emotion_token_id=2,
        explanation_token_id=3,
        prompt_token_ids=[10, 11, 12],
        connector_token_ids=[20],
        emotion_token_ids=[[30], [31, 32]],
    )
    fields.update(overrides)
    return fields


def test_json_round_trips_and_subfolders(tmp_path):
    config = SevlmConfig(
        vision_config=tiny_vision_config(), text_config=tiny_text_config(pad_token_id=1), **_format_fields(), vad_loss_weight=0.5
    )
    again = SevlmConfig.from_dict(json.loads(config.to_json_string()))
    assert again.to_dict() == config.to_dict()
    config.to_json_file(tmp_path / "config.json")
    assert SevlmConfig.from_json_file(tmp_path / "config.json").to_dict() == config.to_dict()
    config.save_pretrained(tmp_path / "folder" / "sub")
    loaded = SevlmConfig.from_pretrained(tmp_path / "folder", subfolder="sub")
    assert loaded.sequence_format.to_dict() == config.sequence_format.to_dict() and loaded.vad_loss_weight == 0.5
    # Output switches are plain config fields, as in every transformers config.
    assert not SevlmConfig(return_dict=False).return_dict


def test_sequence_format_needs_the_token_ids():
    with pytest.raises(ValueError, match="from_vision_text"):
        _ = SevlmConfig().sequence_format


def test_sequence_format_layout_and_segments():
    sequences = SevlmSequenceFormat(**_format_fields(connector_token_ids=[20, 21]))
    assert sequences.prompt() == [0, 10, 11, 12]
    assert sequences.prompt(1) == [0, 10, 11, 12, 31, 32, 20, 21]
    assert sequences.min_max_length == 1 + 3 + 2 + 2 + 2
    row = sequences.training_ids(0, [40, 41, 42, 43], max_length=10)
    assert row == [0, 10, 11, 12, 30, 20, 21, 40, 41, 0]  # explanation shortened, <eos> kept
    batch = sequences.batch([row, sequences.prompt(0) + [40, 0]], padding_side="right", with_labels=True)
    # <explanation> from the token that completes the two-token connector; padding continues the segment.
    assert batch["token_type_ids"][0].tolist() == [2, 2, 2, 2, 2, 2, 3, 3, 3, 3]
    assert batch["token_type_ids"][1].tolist() == [2, 2, 2, 2, 2, 2, 3, 3, 3, 3]
    assert batch["labels"][1].tolist() == [-100, 10, 11, 12, 30, 20, 21, 40, 0, -100]
    left = sequences.batch([sequences.prompt(), sequences.prompt(1)], padding_side="left")
    assert left["input_ids"][0].tolist() == [1, 1, 1, 1, 0, 10, 11, 12]
    assert left["attention_mask"][0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert sequences.split_generated([1, 0, 10, 11, 12, 31, 32, 20, 21, 40, 41, 0, 1]) == ([31, 32], [40, 41])
    assert sequences.split_generated([30, 20, 21, 40]) == ([30], [40])
    assert sequences.split_generated([0, 10, 11, 12, 31]) == ([31], [])


def test_sequence_format_refuses_ambiguous_formats():
    with pytest.raises(ValueError, match="tokenise to the same tokens"):
        SevlmSequenceFormat(**_format_fields(emotion_token_ids=[[30], [30]]))
    with pytest.raises(ValueError, match="connector tokens .* 'something else'"):
        SevlmSequenceFormat(**_format_fields(emotion_token_ids=[[30], [31, 20]]))
    with pytest.raises(ValueError, match="connector"):
        SevlmSequenceFormat(**_format_fields(connector_token_ids=[]))
    with pytest.raises(ValueError, match=r"max_length=7 is too short.*the connector \(1 token\).*at least 9"):
        SevlmSequenceFormat(**_format_fields()).training_ids(0, [40], max_length=7)
