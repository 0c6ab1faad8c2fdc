import pytest
from transformers import CLIPVisionConfig, GPT2Config

from configuration_sevlm import ARTEMIS_EMOTIONS, SevlmConfig
from conftest import tiny_text_config, tiny_vision_config


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
