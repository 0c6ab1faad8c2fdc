"""SEVLM configuration: a CLIP vision tower, a GPT-2 decoder with cross-attention, and the VAD modules."""

from transformers import CLIPVisionConfig, GPT2Config, PreTrainedConfig

# ArtEmis emotion classes in their fixed index order: 0-3 positive, 4-7 negative, 8 other.
ARTEMIS_EMOTIONS = (
    "amusement",
    "awe",
    "contentment",
    "excitement",
    "anger",
    "disgust",
    "fear",
    "sadness",
    "something else",
)


# The Auto classes a saved SEVLM folder answers to (with `trust_remote_code=True`).
AUTO_MAP = {
    "AutoConfig": "configuration_sevlm.SevlmConfig",
    "AutoModel": "modeling_sevlm.SevlmForConditionalGeneration",
    "AutoModelForImageTextToText": "modeling_sevlm.SevlmForConditionalGeneration",
}


class SevlmConfig(PreTrainedConfig):
    r"""
    Configuration of [`SevlmForConditionalGeneration`].

    Args:
        vision_config (`dict` or `CLIPVisionConfig`, *optional*):
            The image encoder (CLIP ViT-B/16 in the paper). Its patch tokens are the decoder's cross-attention memory.
        text_config (`dict` or `GPT2Config`, *optional*):
            The decoder (distilGPT-2 in the paper). Cross-attention is always switched on.
        emotions (`list[str]`, *optional*):
            Class names, in index order. Defaults to the 9 ArtEmis classes. Names may span several tokens.
        prompt_text (`str`, *optional*, defaults to `" the emotion is"`):
            Text after `<bos>` that the model continues with the emotion name.
        connector_text (`str`, *optional*, defaults to `" because"`):
            Text between the emotion and the explanation. The explanation segment starts at the token that
            completes the connector.
        vad_encoder_layers (`int`, *optional*, defaults to 3), vad_encoder_heads (`int`, *optional*, defaults to 1),
        vad_encoder_ffn_dim (`int`, *optional*, defaults to 128), vad_encoder_dropout (`float`, *optional*, defaults to 0.1):
            Size of the transformer that turns per-token (valence, arousal, dominance) values into VAD features.
        vad_encoder_causal (`bool`, *optional*, defaults to `True`):
            Causal VAD encoder (no look-ahead, exact KV-cached generation). `False` reproduces the reference's
            bidirectional encoder; generation then runs without a KV cache.
        use_vad_embedding (`bool`, *optional*, defaults to `True`):
            Fuse VAD features into the explanation tokens' embeddings.
        use_vad_loss (`bool`, *optional*, defaults to `True`):
            Train the VAD head to predict the next token's VAD.
        use_contrastive_loss (`bool`, *optional*, defaults to `True`):
            Train the contrastive head on pairs of annotations (same painting, different emotions).
        lm_loss_weight, vad_loss_weight, contrastive_loss_weight (`float`, *optional*, default to 1.0):
            `loss = lm_loss_weight * XE + vad_loss_weight * VAD_MSE + contrastive_loss_weight * CL`.
        contrastive_hidden_size (`int`, *optional*):
            Width of the contrastive MLP; defaults to the decoder width.
        freeze_vision (`bool`, *optional*, defaults to `True`):
            Keep the image encoder frozen (the paper's recipe).
        emotion_token_id, explanation_token_id (`int`, *optional*):
            Ids of the `<emotion>` / `<explanation>` segment tokens, set from the processor's tokenizer.
        prompt_token_ids, connector_token_ids (`list[int]`, *optional*):
            Tokenised prompt and connector, set from the processor's tokenizer.
        emotion_token_ids (`list[list[int]]`, *optional*):
            Tokenised class names (with their leading space), used by `emotion_scores`.
    """

    model_type = "sevlm"
    sub_configs_defaults = {"vision_config": CLIPVisionConfig, "text_config": GPT2Config}

    def __init__(
        self,
        vision_config=None,
        text_config=None,
        emotions=None,
        prompt_text=" the emotion is",
        connector_text=" because",
        vad_encoder_layers=3,
        vad_encoder_heads=1,
        vad_encoder_ffn_dim=128,
        vad_encoder_dropout=0.1,
        vad_encoder_causal=True,
        use_vad_embedding=True,
        use_vad_loss=True,
        use_contrastive_loss=True,
        lm_loss_weight=1.0,
        vad_loss_weight=1.0,
        contrastive_loss_weight=1.0,
        contrastive_hidden_size=None,
        freeze_vision=True,
        emotion_token_id=None,
        explanation_token_id=None,
        prompt_token_ids=None,
        connector_token_ids=None,
        emotion_token_ids=None,
        **kwargs,
    ):
        if isinstance(vision_config, dict):
            vision_config = CLIPVisionConfig(**{k: v for k, v in vision_config.items() if k != "model_type"})
        elif vision_config is None:
            vision_config = CLIPVisionConfig(image_size=224, patch_size=16)
        if isinstance(text_config, dict):
            text_config = GPT2Config(**{k: v for k, v in text_config.items() if k != "model_type"})
        elif text_config is None:
            text_config = GPT2Config(n_layer=6)
        # The decoder attends to the image at every layer.
        text_config.add_cross_attention = True
        text_config.is_decoder = True

        self.vision_config = vision_config
        self.text_config = text_config
        self.emotions = list(emotions) if emotions is not None else list(ARTEMIS_EMOTIONS)
        if len(self.emotions) < 2 or len(set(self.emotions)) != len(self.emotions):
            raise ValueError(f"`emotions` must list at least 2 distinct class names, got {self.emotions}.")
        for name in self.emotions:
            if not name.strip() or connector_text.strip() in name.split():
                raise ValueError(
                    f"Emotion name {name!r} is empty or contains the connector {connector_text!r}; rename it."
                )
        self.prompt_text = prompt_text
        self.connector_text = connector_text
        self.vad_encoder_layers = vad_encoder_layers
        self.vad_encoder_heads = vad_encoder_heads
        self.vad_encoder_ffn_dim = vad_encoder_ffn_dim
        self.vad_encoder_dropout = vad_encoder_dropout
        self.vad_encoder_causal = vad_encoder_causal
        self.use_vad_embedding = use_vad_embedding
        self.use_vad_loss = use_vad_loss
        self.use_contrastive_loss = use_contrastive_loss
        self.lm_loss_weight = lm_loss_weight
        self.vad_loss_weight = vad_loss_weight
        self.contrastive_loss_weight = contrastive_loss_weight
        self.contrastive_hidden_size = contrastive_hidden_size or text_config.n_embd
        self.freeze_vision = freeze_vision
        self.emotion_token_id = emotion_token_id
        self.explanation_token_id = explanation_token_id
        self.prompt_token_ids = prompt_token_ids
        self.connector_token_ids = connector_token_ids
        self.emotion_token_ids = emotion_token_ids
        kwargs.setdefault("tie_word_embeddings", True)
        kwargs.setdefault("auto_map", dict(AUTO_MAP))
        super().__init__(**kwargs)

    @property
    def has_token_ids(self) -> bool:
        """Whether the tokenizer-dependent ids were filled in (by `from_vision_text`)."""
        return None not in (
            self.emotion_token_id,
            self.explanation_token_id,
            self.prompt_token_ids,
            self.connector_token_ids,
            self.emotion_token_ids,
        )


SevlmConfig.register_for_auto_class()

__all__ = ["ARTEMIS_EMOTIONS", "SevlmConfig"]
