"""SEVLM: a small emotional vision-language model (Zhang et al., ECCV 2024).

A CLIP vision tower encodes the painting once; a GPT-2 decoder with cross-attention writes
`{emotion} because {explanation}` after the prompt `<bos> the emotion is`. Explanation tokens carry
VAD (valence, arousal, dominance) features from a `[vocab, 3]` lexicon table and a small causal VAD
encoder; a VAD head predicts the next token's VAD and a contrastive head scores (image, emotion,
explanation) triples.
"""

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionModel, GenerationConfig, GenerationMixin, GPT2LMHeadModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, logging

try:
    from .configuration_sevlm import SevlmConfig
except ImportError:
    from configuration_sevlm import SevlmConfig

logger = logging.get_logger(__name__)

IGNORE_INDEX = -100


# --------------------------------------------------------------------------------------------- VAD lexicon
def load_vad_lexicon(source):
    """Read a VAD lexicon into `{word: (valence, arousal, dominance)}` on the bipolar scale [-1, 1].

    `source` is a path to an NRC-VAD style file (one header line, then `word<TAB>V<TAB>A<TAB>D`) or a mapping
    `word -> (v, a, d)`. Scores in [0, 1] (the NRC-VAD release) are mapped with `2 * x - 1`; a lexicon with any
    negative score is taken as already bipolar.
    """
    if isinstance(source, (str, os.PathLike)):
        entries = _read_vad_file(source)
        where = str(source)
    else:
        entries = {str(word).strip().lower(): tuple(float(x) for x in scores) for word, scores in dict(source).items()}
        where = "the VAD mapping"
        for word, scores in entries.items():
            if len(scores) != 3:
                raise ValueError(f"{where}: entry {word!r} has {len(scores)} scores; expected (valence, arousal, dominance).")
    if not entries:
        raise ValueError(f"{where} holds no entries.")
    values = [x for scores in entries.values() for x in scores]
    low, high = min(values), max(values)
    if low < -1.0 or high > 1.0:
        raise ValueError(f"{where}: scores must lie in [0, 1] or [-1, 1]; found range [{low}, {high}].")
    if low >= 0.0:
        entries = {word: tuple(2.0 * x - 1.0 for x in scores) for word, scores in entries.items()}
    return entries


def _read_vad_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"VAD lexicon {path} not found. Download the NRC-VAD lexicon (https://saifmohammad.com/WebPages/nrc-vad.html) "
            "and pass the path to NRC-VAD-Lexicon.txt."
        )
    entries = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n\r").split("\t")
            if not line.strip():
                continue
            try:
                scores = tuple(float(x) for x in fields[1:4])
            except ValueError:
                if number == 1:
                    continue  # header line
                raise ValueError(f"{path}:{number}: expected `word<TAB>valence<TAB>arousal<TAB>dominance`, got {line!r}.")
            if len(fields) != 4 or not fields[0].strip():
                raise ValueError(f"{path}:{number}: expected `word<TAB>valence<TAB>arousal<TAB>dominance`, got {line!r}.")
            entries[fields[0].strip().lower()] = scores
    return entries


def lemmas(word):
    """Dictionary lemmas of an English word, then rule-based ones (lemminflect: offline, no downloads)."""
    try:
        import lemminflect
    except ImportError as error:
        raise ImportError("Looking up VAD lemmas needs `lemminflect`: pip install lemminflect") from error
    found = []
    for candidates in lemminflect.getAllLemmas(word).values():
        found.extend(candidates)
    if not found:
        for pos in ("VERB", "NOUN", "ADJ"):
            found.extend(lemminflect.getAllLemmasOOV(word, pos).get(pos, ()))
    return [lemma.lower() for lemma in dict.fromkeys(found) if lemma.lower() != word]


def lookup_vad(lexicon, word):
    """VAD of `word` (lower-cased, else its lemma) in a bipolar lexicon, or None when not found."""
    word = word.strip().lower()
    if not word:
        return None
    if word in lexicon:
        return lexicon[word]
    if not word.isalpha():
        return None
    for lemma in lemmas(word):
        if lemma in lexicon:
            return lexicon[lemma]
    return None


def build_vad_table(tokenizer, lexicon, size=None):
    """`[size, 3]` float tensor: each token's VAD (BPE piece without its leading space, lower-cased, or its lemma).

    Special tokens, sub-word pieces and words missing from the lexicon get zeros.
    """
    size = size or len(tokenizer)
    table = torch.zeros(size, 3)
    special = set(tokenizer.all_special_ids)
    for token_id, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))):
        if token_id in special or piece is None:
            continue
        scores = lookup_vad(lexicon, tokenizer.convert_tokens_to_string([piece]))
        if scores is not None:
            table[token_id] = torch.tensor(scores)
    return table


# -------------------------------------------------------------------------------------------------- outputs
@dataclass
class SevlmOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*):
        `lm_loss_weight * lm_loss + vad_loss_weight * vad_loss + contrastive_loss_weight * contrastive_loss`
        over the terms that are switched on.
    lm_loss (`torch.FloatTensor`, *optional*): next-token cross-entropy.
    vad_loss (`torch.FloatTensor`, *optional*): MSE of the VAD head against the next explanation token's VAD.
    contrastive_loss (`torch.FloatTensor`, *optional*): contrastive loss over (image, emotion, explanation) triples.
    logits (`torch.FloatTensor` of shape `(batch, seq, vocab)`): language-modelling scores.
    vad_predictions (`torch.FloatTensor` of shape `(batch, seq, 3)`, *optional*): the VAD head's outputs.
    contrastive_scores (`torch.FloatTensor` of shape `(batch, 1 + negatives)`, *optional*):
        match scores of the true triple (column 0) and its negatives.
    cache (`Cache`, *optional*): the decoder's key/value cache.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*): decoder hidden states.
    image_embeds (`torch.FloatTensor` of shape `(images, patches, hidden)`, *optional*): cross-attention memory.
    """

    loss: torch.FloatTensor | None = None
    lm_loss: torch.FloatTensor | None = None
    vad_loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    vad_predictions: torch.FloatTensor | None = None
    contrastive_scores: torch.FloatTensor | None = None
    cache: object | None = None
    hidden_states: tuple | None = None
    image_embeds: torch.FloatTensor | None = None


# -------------------------------------------------------------------------------------------------- modules
class SevlmVadEncoder(nn.Module):
    """Transformer over per-token VAD values (d_model 3) with learned positions; causal by default.

    Post-norm layers with ReLU as `nn.TransformerEncoderLayer`, and a final layer norm. The forward pass is written
    out with one fused projection and `scaled_dot_product_attention` per layer: at d_model 3 the cost is all in op
    dispatch, and this halves it (it runs at every generation step).
    """

    def __init__(self, config):
        super().__init__()
        self.causal = config.vad_encoder_causal
        self.heads = config.vad_encoder_heads
        self.position_embedding = nn.Embedding(config.text_config.n_positions, 3)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=3,
                nhead=config.vad_encoder_heads,
                dim_feedforward=config.vad_encoder_ffn_dim,
                dropout=config.vad_encoder_dropout,
                batch_first=True,
            )
            for _ in range(config.vad_encoder_layers)
        )
        self.norm = nn.LayerNorm(3)

    def forward(self, vad_values, attention_mask=None):
        batch, length, width = vad_values.shape
        device = vad_values.device
        if attention_mask is None:
            attention_mask = torch.ones(batch, length, dtype=torch.long, device=device)
        attention_mask = attention_mask[:, -length:].bool()
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = vad_values + self.position_embedding(positions).to(vad_values.dtype)
        # allowed[b, 0, i, j]: query i may read key j. Padding is never read; every position reads itself so that
        # padded queries do not produce NaNs (their outputs are never used).
        allowed = attention_mask[:, None, None, :]
        if self.causal:
            allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=device).tril()
        allowed = allowed | torch.eye(length, dtype=torch.bool, device=device)
        for layer in self.layers:
            attention = layer.self_attn
            query, key, value = (
                F.linear(hidden, attention.in_proj_weight, attention.in_proj_bias)
                .view(batch, length, 3, self.heads, width // self.heads)
                .permute(2, 0, 3, 1, 4)
            )
            mixed = F.scaled_dot_product_attention(
                query, key, value, attn_mask=allowed, dropout_p=attention.dropout if self.training else 0.0
            )
            mixed = attention.out_proj(mixed.transpose(1, 2).reshape(batch, length, width))
            hidden = layer.norm1(hidden + layer.dropout1(mixed))
            feed_forward = layer.linear2(layer.dropout(F.relu(layer.linear1(hidden))))
            hidden = layer.norm2(hidden + layer.dropout2(feed_forward))
        return self.norm(hidden)


class SevlmVadFusion(nn.Module):
    """`Linear(hidden + 3 -> hidden)` over `[token_embedding ; vad_feature]`, started at identity on the embedding
    part so that pretrained GPT-2 embeddings pass unchanged at the first step."""

    def __init__(self, hidden_size):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden_size, hidden_size + 3))
        self.bias = nn.Parameter(torch.empty(hidden_size))

    def forward(self, embeddings, vad_features):
        return F.linear(torch.cat([embeddings, vad_features.to(embeddings.dtype)], dim=-1), self.weight, self.bias)


class SevlmContrastiveHead(nn.Module):
    """MLP `[image ; emotion ; explanation] -> hidden x4 -> 1` (ReLU between): a match score."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        sizes = [input_size] + [hidden_size] * 4
        layers = []
        for size_in, size_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(size_in, size_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden_size, 1))

    def forward(self, image, emotion, explanation):
        return self.mlp(torch.cat([image, emotion, explanation], dim=-1)).squeeze(-1)


# ---------------------------------------------------------------------------------------------------- model
class SevlmPreTrainedModel(PreTrainedModel):
    config_class = SevlmConfig
    base_model_prefix = "sevlm"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["GPT2Block", "CLIPEncoderLayer"]
    # Each loss term is a mean over its own items: the Trainer scales for gradient accumulation.
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, SevlmVadFusion):
            init.eye_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, SevlmForConditionalGeneration):
            init.zeros_(module.vad_table)
            # Non-persistent buffers are not in the checkpoint: rebuild them from the config.
            init.copy_(module.connector_ids, _long_tensor(self.config.connector_token_ids))
            init.copy_(module.prompt_ids, _long_tensor(self.config.prompt_token_ids))


class SevlmForConditionalGeneration(SevlmPreTrainedModel, GenerationMixin):
    """CLIP vision tower + GPT-2 decoder with cross-attention + VAD encoder/fusion/head + contrastive head."""

    _tied_weights_keys = {"language_model.lm_head.weight": "language_model.transformer.wte.weight"}
    # Tied to the input embeddings: not stored, re-tied on load (also by the Trainer's best-model reload).
    _keys_to_ignore_on_save = ["language_model.lm_head.weight"]

    def __init__(self, config: SevlmConfig):
        super().__init__(config)
        text_config = config.text_config
        hidden = text_config.n_embd
        self.vision_model = CLIPVisionModel(config.vision_config)
        self.language_model = GPT2LMHeadModel(text_config)
        # GPT-2 cross-attention reads memory of its own width.
        vision_hidden = config.vision_config.hidden_size
        self.image_projection = nn.Linear(vision_hidden, hidden) if vision_hidden != hidden else nn.Identity()
        self.vad_encoder = SevlmVadEncoder(config)
        self.vad_fusion = SevlmVadFusion(hidden)
        self.vad_head = nn.Linear(hidden, 3)
        self.contrastive_head = SevlmContrastiveHead(3 * hidden, config.contrastive_hidden_size)
        # The VAD lexicon as a table over the vocabulary: one gather on the device per step.
        self.register_buffer("vad_table", torch.zeros(text_config.vocab_size, 3), persistent=True)
        self.register_buffer("connector_ids", _long_tensor(config.connector_token_ids), persistent=False)
        self.register_buffer("prompt_ids", _long_tensor(config.prompt_token_ids), persistent=False)
        if config.freeze_vision:
            self.vision_model.requires_grad_(False)
        self.post_init()

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def from_vision_text(cls, vision, text, processor, vad_lexicon=None, **config_kwargs):
        """Start a new SEVLM from a vision tower and a decoder.

        Args:
            vision: a pretrained CLIP name or path (e.g. `"openai/clip-vit-base-patch16"`, weights loaded) or a
                `CLIPVisionConfig` / dict (random init).
            text: a pretrained GPT-2 name or path (e.g. `"distilgpt2"`, weights loaded; cross-attention is new) or a
                `GPT2Config` / dict (random init).
            processor: the `SevlmProcessor` whose tokenizer the model will use. Its special tokens are added to the
                embeddings and its emotions, prompt and connector go into the config.
            vad_lexicon: an NRC-VAD style file or a mapping `word -> (v, a, d)`; fills the VAD table.
            config_kwargs: other `SevlmConfig` fields (loss switches and weights, `vad_encoder_causal`, ...).
        """
        from transformers import CLIPVisionConfig, GPT2Config

        vision_model = text_model = None
        # A full CLIP checkpoint holds a text tower we drop, and GPT-2 checkpoints have no cross-attention yet:
        # the load reports would list both at length, so they are quietened to one line each.
        verbosity = logging.get_verbosity()
        logging.set_verbosity_error()
        try:
            if isinstance(vision, (str, os.PathLike)):
                vision_model = CLIPVisionModel.from_pretrained(vision)
            if isinstance(text, (str, os.PathLike)):
                text_model = GPT2LMHeadModel.from_pretrained(text, add_cross_attention=True)
        finally:
            logging.set_verbosity(verbosity)
        if vision_model is not None:
            vision_config = vision_model.config
            logger.info(f"Vision tower loaded from {vision}.")
        else:
            vision_config = CLIPVisionConfig(**vision) if isinstance(vision, dict) else vision
        if text_model is not None:
            text_config = text_model.config
            logger.info(f"Decoder loaded from {text}; its cross-attention layers are newly initialised.")
        else:
            text_config = GPT2Config(**text) if isinstance(text, dict) else text

        token_fields = processor.token_id_config()
        for key in ("emotions", "prompt_text", "connector_text"):
            if key in config_kwargs and config_kwargs.pop(key) != token_fields[key]:
                raise ValueError(f"`{key}` comes from the processor; build the processor with the {key} you want.")
        if vad_lexicon is None and (config_kwargs.get("use_vad_embedding", True) or config_kwargs.get("use_vad_loss", True)):
            logger.warning("No VAD lexicon given: the VAD table is all zeros, so VAD fusion and VAD loss learn nothing.")
        tokenizer = processor.tokenizer
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(text_config, key, token_fields[key])
        config = SevlmConfig(vision_config=vision_config, text_config=text_config, **token_fields, **config_kwargs)

        model = cls(config)
        if vision_model is not None:
            model.vision_model.load_state_dict(vision_model.state_dict())
        if text_model is not None:
            model.language_model.load_state_dict(text_model.state_dict())
        if model.get_input_embeddings().num_embeddings != len(tokenizer):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=text_model is not None)
        if vad_lexicon is not None:
            model.set_vad_lexicon(vad_lexicon, tokenizer)
        model.generation_config = GenerationConfig(
            bos_token_id=token_fields["bos_token_id"],
            eos_token_id=token_fields["eos_token_id"],
            pad_token_id=token_fields["pad_token_id"],
            max_new_tokens=25,
            do_sample=False,
            num_beams=1,
        )
        return model

    def set_vad_lexicon(self, vad_lexicon, tokenizer):
        """Fill the VAD table from a lexicon (path or mapping); returns how many tokens got a VAD value."""
        lexicon = load_vad_lexicon(vad_lexicon)
        table = build_vad_table(tokenizer, lexicon, size=self.vad_table.shape[0])
        self.vad_table.copy_(table.to(self.vad_table))
        found = int((table.abs().sum(-1) > 0).sum())
        logger.info(f"VAD table: {found} of {table.shape[0]} tokens found in the lexicon.")
        return found

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        size = embeddings.num_embeddings
        old = self.vad_table
        table = torch.zeros(size, 3, dtype=old.dtype, device=old.device)
        table[: min(size, old.shape[0])] = old[:size]
        self.vad_table = table
        return embeddings

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value):
        self.language_model.set_output_embeddings(value)

    # -------------------------------------------------------------------------------------------- features
    def get_image_features(self, pixel_values):
        """Cross-attention memory: CLIP patch tokens after the final layer norm (no CLS), in the decoder's width."""
        frozen = self.config.freeze_vision
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            pixel_values = pixel_values.to(dtype=self.vision_model.dtype, device=self.vision_model.device)
            hidden = self.vision_model(pixel_values=pixel_values).last_hidden_state[:, 1:]
            hidden = self.vision_model.post_layernorm(hidden)
        return self.image_projection(hidden)

    def segment_ids(self, input_ids):
        """`<explanation>` from the token that completes the connector on, `<emotion>` before (whole sequences)."""
        self._check_token_ids()
        width = self.connector_ids.numel()
        if width == 1:
            completes = input_ids == self.connector_ids
        else:
            length = input_ids.shape[1]
            if length < width:
                completes = torch.zeros_like(input_ids, dtype=torch.bool)
            else:
                completes = F.pad((input_ids.unfold(1, width, 1) == self.connector_ids).all(-1), (width - 1, 0))
        explanation = completes.long().cumsum(-1) > 0
        return torch.where(
            explanation,
            torch.full_like(input_ids, self.config.explanation_token_id),
            torch.full_like(input_ids, self.config.emotion_token_id),
        )

    def vad_features(self, input_ids, attention_mask=None):
        """VAD encoder over the table's VAD values of whole sequences: `[batch, seq, 3]`."""
        return self.vad_encoder(self.vad_table[input_ids], attention_mask)

    def _check_token_ids(self):
        if not self.config.has_token_ids:
            raise ValueError(
                "This SEVLM config has no tokenizer ids (emotion/explanation tokens, prompt, connector). "
                "Build models with SevlmForConditionalGeneration.from_vision_text(..., processor=...)."
            )

    def _embed(self, input_ids, token_type_ids, vad_features):
        embeddings = self.get_input_embeddings()(input_ids)
        if not self.config.use_vad_embedding:
            return embeddings
        # Fusion on the token embedding (before GPT-2 adds positions and segments): explanation tokens only.
        fused = self.vad_fusion(embeddings, vad_features)
        is_explanation = (token_type_ids == self.config.explanation_token_id).unsqueeze(-1)
        return torch.where(is_explanation, fused, embeddings)

    # --------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        input_ids=None,
        pixel_values=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        labels=None,
        image_index=None,
        encoder_hidden_states=None,
        vad_features=None,
        cache=None,
        use_cache=None,
        logits_to_keep=0,
        **kwargs,
    ) -> SevlmOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch, seq)`): token ids (only the uncached tail when `cache`
                holds earlier steps; then `token_type_ids` and `vad_features` must be given, as `generate` does).
            pixel_values (`torch.FloatTensor` of shape `(images, 3, H, W)`): paintings. One per sequence, or one per
                row of `image_index`.
            token_type_ids: segment ids; derived from `input_ids` when omitted.
            labels (`torch.LongTensor` of shape `(batch, seq)`): targets, -100 where ignored (not shifted).
            image_index (`torch.LongTensor` of shape `(batch,)`): the image row of each sequence. Needed by the
                contrastive loss: sequences `2k` and `2k+1` are a pair, two annotations of one painting with
                different emotions.
            encoder_hidden_states: precomputed `get_image_features(pixel_values)`, instead of `pixel_values`.
            vad_features (`torch.FloatTensor` of shape `(batch, seq, 3)`): precomputed VAD encoder outputs.
        """
        if input_ids is None:
            raise ValueError("SEVLM needs `input_ids` (use the SevlmProcessor to build them).")
        if encoder_hidden_states is None:
            if pixel_values is None:
                raise ValueError("SEVLM needs an image: pass `pixel_values` (or `encoder_hidden_states`).")
            encoder_hidden_states = self.get_image_features(pixel_values)
        image_embeds = encoder_hidden_states
        if image_index is not None:
            encoder_hidden_states = encoder_hidden_states[image_index]
        if encoder_hidden_states.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"Got {encoder_hidden_states.shape[0]} images for {input_ids.shape[0]} sequences; "
                "pass one image per sequence or an `image_index`."
            )
        partial = cache is not None and cache.get_seq_length() > 0
        if partial and (token_type_ids is None or (self.config.use_vad_embedding and vad_features is None)):
            raise ValueError("With a filled `cache` pass `token_type_ids` and `vad_features`, or use `generate()`.")
        if token_type_ids is None:
            token_type_ids = self.segment_ids(input_ids)
        if self.config.use_vad_embedding and vad_features is None:
            vad_features = self.vad_features(input_ids, attention_mask)

        outputs = self.language_model.transformer(
            inputs_embeds=self._embed(input_ids, token_type_ids, vad_features),
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            encoder_hidden_states=encoder_hidden_states,
            cache=cache,
            use_cache=use_cache,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) and logits_to_keep else slice(None)
        logits = self.language_model.lm_head(hidden[:, keep])

        lm_loss = vad_loss = contrastive_loss = vad_predictions = contrastive_scores = None
        if labels is not None:
            lm_loss = F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
            )
            if self.config.use_vad_loss:
                vad_predictions = self.vad_head(hidden)
                vad_loss = self._vad_loss(vad_predictions, labels, token_type_ids)
            if self.config.use_contrastive_loss:
                if image_index is None:
                    raise ValueError(
                        "The contrastive loss needs paired batches with `image_index` (see SevlmPairCollator), "
                        "or set `use_contrastive_loss=False`."
                    )
                contrastive_loss, contrastive_scores = self._contrastive_loss(
                    hidden, image_embeds, image_index, token_type_ids, attention_mask
                )
        terms = [
            (self.config.lm_loss_weight, lm_loss),
            (self.config.vad_loss_weight, vad_loss),
            (self.config.contrastive_loss_weight, contrastive_loss),
        ]
        loss = sum(weight * term for weight, term in terms if term is not None) if labels is not None else None
        return SevlmOutput(
            loss=loss,
            lm_loss=lm_loss,
            vad_loss=vad_loss,
            contrastive_loss=contrastive_loss,
            logits=logits,
            vad_predictions=vad_predictions,
            contrastive_scores=contrastive_scores,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            image_embeds=image_embeds,
        )

    def _vad_loss(self, predictions, labels, token_type_ids):
        """MSE between the prediction at t and the VAD of explanation token t+1, where that VAD is non-zero."""
        targets = labels[:, 1:]
        target_vad = self.vad_table[targets.clamp(min=0)].to(predictions.dtype)
        mask = (
            (targets != IGNORE_INDEX)
            & (token_type_ids[:, 1:] == self.config.explanation_token_id)
            & (target_vad.abs().sum(-1) > 0)
        )
        errors = (predictions[:, :-1] - target_vad).pow(2).mean(-1)
        return (errors * mask).sum() / mask.sum().clamp(min=1)

    def _contrastive_loss(self, hidden, image_embeds, image_index, token_type_ids, attention_mask):
        """`-log(e^{s+} / (e^{s+} + e^{s-same image} + e^{s-other image}))` over paired sequences."""
        batch = hidden.shape[0]
        if batch % 2 or not torch.equal(image_index[0::2], image_index[1::2]):
            raise ValueError("Contrastive batches are pairs: sequences 2k and 2k+1 must share `image_index`.")
        valid = attention_mask.bool() if attention_mask is not None else torch.ones_like(token_type_ids, dtype=torch.bool)
        is_emotion = (token_type_ids == self.config.emotion_token_id) & valid
        is_explanation = (token_type_ids == self.config.explanation_token_id) & valid
        emotion_vec = _masked_mean(hidden, is_emotion)
        explanation_vec = _masked_mean(hidden, is_explanation)
        image_vec = image_embeds.mean(1)[image_index].to(hidden.dtype)

        pairs = batch // 2
        partner = torch.arange(batch, device=hidden.device) ^ 1  # 2k <-> 2k+1: same painting, other emotion
        candidates = [explanation_vec, explanation_vec[partner]]
        if pairs > 1:
            # A random derangement of the pairs (a shift, never 0): an explanation of a different painting.
            shift = int(torch.randint(1, pairs, ()))
            other_pair = (torch.arange(pairs, device=hidden.device) + shift) % pairs
            other = (other_pair.repeat_interleave(2) * 2) + (torch.arange(batch, device=hidden.device) % 2)
            candidates.append(explanation_vec[other])
        scores = torch.stack([self.contrastive_head(image_vec, emotion_vec, cand) for cand in candidates], dim=1)
        target = torch.zeros(batch, dtype=torch.long, device=hidden.device)
        return F.cross_entropy(scores.float(), target), scores

    # ------------------------------------------------------------------------------------------ generation
    def prompt(self, batch_size):
        """`<bos> the emotion is` for `batch_size` images."""
        self._check_token_ids()
        bos = torch.tensor([self.config.text_config.bos_token_id], device=self.prompt_ids.device)
        return torch.cat([bos, self.prompt_ids]).unsqueeze(0).expand(batch_size, -1).contiguous()

    @torch.no_grad()
    def generate(self, pixel_values=None, input_ids=None, attention_mask=None, encoder_hidden_states=None, **kwargs):
        """Encode the images once and generate `{emotion} because {explanation}<eos>` with the HF machinery.

        Without `input_ids` the prompt is `<bos> the emotion is`; pass the processor's output to condition on a
        given emotion. All `generate` options work (greedy, beam search, sampling, `max_new_tokens`, ...).
        """
        if encoder_hidden_states is None:
            if pixel_values is None:
                raise ValueError("SEVLM generation needs an image: pass `pixel_values` (or `encoder_hidden_states`).")
            encoder_hidden_states = self.get_image_features(pixel_values)
        if input_ids is None:
            input_ids = self.prompt(encoder_hidden_states.shape[0])
            attention_mask = torch.ones_like(input_ids)
        kwargs.pop("token_type_ids", None)  # re-derived from the ids at every step
        if not self.config.vad_encoder_causal and kwargs.get("use_cache", True):
            logger.warning_once("The bidirectional VAD encoder changes past positions at every step: generating without a KV cache.")
            kwargs["use_cache"] = False
        return super().generate(
            input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=encoder_hidden_states, **kwargs
        )

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        # Segments and VAD features come from the whole sequence so far: a cached step only sees its new token.
        kwargs["token_type_ids"] = self.segment_ids(input_ids)
        model_inputs = super().prepare_inputs_for_generation(input_ids, attention_mask=attention_mask, **kwargs)
        if self.config.use_vad_embedding:
            new_tokens = model_inputs["input_ids"].shape[1]
            model_inputs["vad_features"] = self.vad_features(input_ids, attention_mask)[:, -new_tokens:]
        return model_inputs

    @torch.no_grad()
    def emotion_scores(self, pixel_values=None, encoder_hidden_states=None):
        """Probability of every class in `config.emotions`, per image: `[images, classes]`, rows sum to 1.

        Each class is scored by the model's log-likelihood of `{emotion} because` after the prompt (all tokens
        of multi-token names such as "something else", and the connector that ends the name).
        """
        if encoder_hidden_states is None:
            if pixel_values is None:
                raise ValueError("emotion_scores needs `pixel_values` (or `encoder_hidden_states`).")
            encoder_hidden_states = self.get_image_features(pixel_values)
        images = encoder_hidden_states.shape[0]
        prompt = self.prompt(1)[0].tolist()
        connector = self.config.connector_token_ids
        rows = [prompt + list(ids) + connector for ids in self.config.emotion_token_ids]
        classes, width = len(rows), max(map(len, rows))
        pad = self.config.text_config.pad_token_id
        device = encoder_hidden_states.device
        input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows], device=device)
        attention_mask = (torch.arange(width, device=device) < torch.tensor([len(r) for r in rows], device=device)[:, None]).long()
        image_index = torch.arange(images, device=device).repeat_interleave(classes)
        logits = self(
            input_ids=input_ids.repeat(images, 1),
            attention_mask=attention_mask.repeat(images, 1),
            encoder_hidden_states=encoder_hidden_states,
            image_index=image_index,
        ).logits.float()
        log_probs = logits[:, :-1].log_softmax(-1).gather(-1, input_ids.repeat(images, 1)[:, 1:, None]).squeeze(-1)
        scored = attention_mask.repeat(images, 1)[:, 1:].bool()
        scored[:, : len(prompt) - 1] = False  # the prompt is given, not scored
        totals = (log_probs * scored).sum(-1).view(images, classes)
        return totals.softmax(-1)


def _masked_mean(hidden, mask):
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


def _long_tensor(values):
    return torch.tensor(list(values) if values is not None else [], dtype=torch.long)


SevlmForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")

__all__ = [
    "SevlmForConditionalGeneration",
    "SevlmOutput",
    "SevlmPreTrainedModel",
    "build_vad_table",
    "load_vad_lexicon",
    "lookup_vad",
]
