"""SEVLM configuration: a CLIP vision tower, a GPT-2 decoder with cross-attention, the VAD modules, and the one
definition of SEVLM's token sequences (`SevlmSequenceFormat`) that the model and the processor share."""

import unicodedata

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


IGNORE_INDEX = -100


def emotion_key(name):
    """The one rule by which two emotion names are the same class, wherever a name from a user or a file meets a
    model's classes: Unicode NFC, case folded, `_` read as a space, surrounding and repeated spaces ignored. So
    `"Something_Else"`, `" something  else "` and `"something else"` are one class, as are an NFD and an NFC `"café"`.
    """
    return " ".join(unicodedata.normalize("NFC", str(name)).casefold().replace("_", " ").split())


class SevlmSequenceFormat:
    r"""
    The token sequences of SEVLM, defined once for the model and the processor:

        <bos> {prompt} {emotion} {connector} {explanation} <eos>        e.g. `<bos> the emotion is awe because ...`

    Segment (token-type) ids: `<emotion>` up to the token before the one that completes the connector, `<explanation>`
    from that token on (the rest of the sequence, padding included). They follow from the token ids alone, so the
    model derives them itself (also for the tokens it generates) and the processor's `token_type_ids` are computed by
    the same `segment_ids`.

    Built from a `SevlmConfig` (`config.sequence_format`, the source of truth) or by the processor from its tokenizer.
    Every field is a token id or a list of them; `emotions` are the class names in index order.

    `eos_token_id` may be None (transformers' generation tests unset it to check lengths): generation then runs to
    `max_new_tokens` and reading stops at the end of the ids; building training sequences needs it.
    """

    FIELDS = (
        "emotions",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "emotion_token_id",
        "explanation_token_id",
        "prompt_token_ids",
        "connector_token_ids",
        "emotion_token_ids",
    )

    def __init__(
        self,
        emotions,
        bos_token_id,
        eos_token_id,
        pad_token_id,
        emotion_token_id,
        explanation_token_id,
        prompt_token_ids,
        connector_token_ids,
        emotion_token_ids,
    ):
        self.emotions = list(emotions)
        self.bos_token_id = int(bos_token_id)
        self.eos_token_id = None if eos_token_id is None else int(eos_token_id)
        self.pad_token_id = int(pad_token_id)
        self.emotion_token_id = int(emotion_token_id)
        self.explanation_token_id = int(explanation_token_id)
        self.prompt_token_ids = [int(i) for i in prompt_token_ids]
        self.connector_token_ids = [int(i) for i in connector_token_ids]
        self.emotion_token_ids = [[int(i) for i in ids] for ids in emotion_token_ids]
        self._validate()
        self._tensors = {}  # see _segment_tensors

    @classmethod
    def from_config(cls, config):
        text = config.text_config
        return cls(
            emotions=config.emotions,
            bos_token_id=text.bos_token_id,
            eos_token_id=text.eos_token_id,
            pad_token_id=text.pad_token_id,
            emotion_token_id=config.emotion_token_id,
            explanation_token_id=config.explanation_token_id,
            prompt_token_ids=config.prompt_token_ids,
            connector_token_ids=config.connector_token_ids,
            emotion_token_ids=config.emotion_token_ids,
        )

    def _validate(self):
        if len(self.emotion_token_ids) != len(self.emotions):
            raise ValueError(f"{len(self.emotions)} emotions but {len(self.emotion_token_ids)} tokenised emotion names.")
        if not self.connector_token_ids:
            raise ValueError("The connector (e.g. ' because') tokenises to no tokens.")
        seen = {}
        for index, (name, ids) in enumerate(zip(self.emotions, self.emotion_token_ids)):
            if not ids:
                raise ValueError(f"Emotion {name!r} tokenises to no tokens.")
            if tuple(ids) in seen:
                raise ValueError(f"Emotions {seen[tuple(ids)]!r} and {name!r} tokenise to the same tokens {ids}.")
            seen[tuple(ids)] = name
            # The explanation segment starts where the connector first completes: it must not complete earlier.
            row = self.prompt(index)
            if _find(row, self.connector_token_ids) != len(row) - len(self.connector_token_ids):
                raise ValueError(
                    f"The connector tokens {self.connector_token_ids} occur inside the prompt or the emotion {name!r}: "
                    "the explanation would start too early. Rename the emotion or choose another connector."
                )

    def to_dict(self):
        return {field: getattr(self, field) for field in self.FIELDS}

    def differences(self, other):
        """Names of the fields in which `other` (a format) differs from this one."""
        return [field for field in self.FIELDS if getattr(self, field) != getattr(other, field)]

    @property
    def min_max_length(self):
        """The shortest `max_length` that fits every emotion with one explanation token:
        `<bos>` + prompt + longest emotion + connector + 1 explanation token + `<eos>`."""
        return 1 + len(self.prompt_token_ids) + max(map(len, self.emotion_token_ids)) + len(self.connector_token_ids) + 2

    # ------------------------------------------------------------------------------------------- building
    def prompt(self, emotion_index=None):
        """`<bos> {prompt}`, or with a class index `<bos> {prompt} {emotion} {connector}`: the ids generation continues."""
        ids = [self.bos_token_id, *self.prompt_token_ids]
        if emotion_index is not None:
            ids += [*self.emotion_token_ids[emotion_index], *self.connector_token_ids]
        return ids

    def training_ids(self, emotion_index, explanation_ids, max_length):
        """A whole training sequence, the explanation shortened to fit `max_length` (the `<eos>` is kept)."""
        if max_length < self.min_max_length:
            raise ValueError(self.max_length_error(max_length))
        if self.eos_token_id is None:
            raise ValueError(
                "Training sequences end with <eos>, but the text config has no `eos_token_id`: set "
                "`config.text_config.eos_token_id` to the tokenizer's eos id (SevlmProcessor.token_id_config())."
            )
        head = self.prompt(emotion_index)
        room = max_length - len(head) - 1
        return head + list(explanation_ids)[:room] + [self.eos_token_id]

    def max_length_error(self, max_length):
        longest = max(range(len(self.emotions)), key=lambda i: len(self.emotion_token_ids[i]))
        tokens = lambda count: f"{count} token" + ("s" if count != 1 else "")  # noqa: E731
        return (
            f"max_length={max_length} is too short: <bos>, the prompt ({tokens(len(self.prompt_token_ids))}), the longest "
            f"emotion ({self.emotions[longest]!r}, {tokens(len(self.emotion_token_ids[longest]))}), the connector "
            f"({tokens(len(self.connector_token_ids))}), one explanation token and <eos> need at least "
            f"{self.min_max_length}."
        )

    def batch(self, rows, padding_side="right", with_labels=False):
        """Pad id lists into `input_ids`, `attention_mask`, `token_type_ids` (and `labels`: `<bos>` and padding -100).

        Right padding for training and scoring; left padding for generation prompts, so that every row continues
        from its last real token.
        """
        import torch  # this file stays free of torch at import: tools read the class names without it

        width = max(map(len, rows))
        ids, mask, labels = [], [], []
        for row in rows:
            missing = width - len(row)
            pad = [self.pad_token_id] * missing
            ids.append(row + pad if padding_side == "right" else pad + row)
            mask.append([1] * len(row) + [0] * missing if padding_side == "right" else [0] * missing + [1] * len(row))
            row_labels = [IGNORE_INDEX] + row[1:]
            ignored = [IGNORE_INDEX] * missing
            labels.append(row_labels + ignored if padding_side == "right" else ignored + row_labels)
        input_ids = torch.tensor(ids, dtype=torch.long)
        batch = {
            "input_ids": input_ids,
            "attention_mask": torch.tensor(mask, dtype=torch.long),
            "token_type_ids": self.segment_ids(input_ids),
        }
        if with_labels:
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch

    def segment_ids(self, input_ids):
        """`<explanation>` from the token that completes the connector on, `<emotion>` before: `[batch, seq]`.

        Written with one comparison per connector token against Python ints, so that it runs on any device without a
        host-to-device copy and traces into a static graph.
        """
        length = input_ids.shape[1]
        completes = input_ids.new_zeros(input_ids.shape, dtype=bool)
        if length >= len(self.connector_token_ids):
            completes[:, len(self.connector_token_ids) - 1 :] = self._connector_ends(input_ids)
        explanation = completes.cumsum(-1) > 0
        return input_ids.new_full(input_ids.shape, self.emotion_token_id).masked_fill(explanation, self.explanation_token_id)

    def last_segment_ids(self, input_ids):
        """The segment id of the last token of each row, `[batch, 1]`: `segment_ids(input_ids)[:, -1:]` in as few
        operations as it takes (a generation step asks this for its new token): whether the connector occurs, and a
        choice between the two ids, kept on the device."""
        if input_ids.shape[1] < len(self.connector_token_ids):
            return input_ids[:, -1:].new_full((input_ids.shape[0], 1), self.emotion_token_id)
        explanation = self._connector_ends(input_ids).any(-1, keepdim=True)
        explanation_id, emotion_id = self._segment_tensors(input_ids)
        return explanation_id.where(explanation, emotion_id)

    def _segment_tensors(self, like):
        """The explanation and emotion segment ids as 0-d tensors on `like`'s device, made once per device."""
        key = (like.device, like.dtype)
        if key not in self._tensors:
            self._tensors[key] = (like.new_tensor(self.explanation_token_id), like.new_tensor(self.emotion_token_id))
        return self._tensors[key]

    def _connector_ends(self, input_ids):
        """`[batch, seq - len(connector) + 1]`: whether the connector ends at each position from its length on."""
        width, length = len(self.connector_token_ids), input_ids.shape[1]
        match = (input_ids if width == 1 else input_ids[:, width - 1 :]) == self.connector_token_ids[-1]
        for offset, token in enumerate(self.connector_token_ids[:-1]):
            match = match & (input_ids[:, offset : length - width + 1 + offset] == token)
        return match

    # ------------------------------------------------------------------------------------------- reading
    def split_generated(self, ids):
        """Generated ids (with or without the prompt, padded on either side) -> (emotion ids, explanation ids).

        Without a connector the whole text counts as the emotion and the explanation is empty.
        """
        ids = list(ids)
        skip = {self.pad_token_id, self.bos_token_id, self.emotion_token_id, self.explanation_token_id}
        start = 0
        while start < len(ids) and ids[start] in skip:
            start += 1
        ids = ids[start:]
        if ids[: len(self.prompt_token_ids)] == self.prompt_token_ids:
            ids = ids[len(self.prompt_token_ids) :]
        if self.eos_token_id is not None and self.eos_token_id in ids:
            ids = ids[: ids.index(self.eos_token_id)]
        cut = _find(ids, self.connector_token_ids)
        if cut < 0:
            return ids, []
        return ids[:cut], ids[cut + len(self.connector_token_ids) :]


def _find(ids, pattern):
    """First index where `pattern` starts in `ids`, or -1."""
    width = len(pattern)
    for start in range(len(ids) - width + 1):
        if ids[start : start + width] == pattern:
            return start
    return -1


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
            Together with `emotions`, the tokenised prompt, connector and names below and `text_config`'s
            bos/eos/pad ids they define the sequence format (`config.sequence_format`): the config is its single
            source, and a processor is checked against it (`SevlmProcessor.check_config`). `eos_token_id` may be
            None: generation then never stops early (training needs it).
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
    def sequence_format(self) -> SevlmSequenceFormat:
        """The token sequences this model reads and writes (see `SevlmSequenceFormat`)."""
        if not self.has_token_ids:
            raise ValueError(
                "This SEVLM config has no tokenizer ids (emotion/explanation tokens, prompt, connector). "
                "Build models with SevlmForConditionalGeneration.from_vision_text(..., processor=...)."
            )
        return SevlmSequenceFormat.from_config(self)

    @property
    def has_token_ids(self) -> bool:
        """Whether the tokenizer-dependent ids were filled in (by `from_vision_text`); `eos_token_id` may be None."""
        text = self.text_config
        return None not in (
            text.bos_token_id,
            text.pad_token_id,
            self.emotion_token_id,
            self.explanation_token_id,
            self.prompt_token_ids,
            self.connector_token_ids,
            self.emotion_token_ids,
        )


SevlmConfig.register_for_auto_class()

__all__ = ["ARTEMIS_EMOTIONS", "IGNORE_INDEX", "SevlmConfig", "SevlmSequenceFormat", "emotion_key"]
