"""SEVLM: a small emotional vision-language model (Zhang et al., ECCV 2024).

A CLIP vision tower encodes the painting once; a GPT-2 decoder with cross-attention writes
`{emotion} because {explanation}` after the prompt `<bos> the emotion is`. Explanation tokens carry
VAD (valence, arousal, dominance) features from a `[vocab, 3]` lexicon table and a small causal VAD
encoder; a VAD head predicts the next token's VAD and a contrastive head scores (image, emotion,
explanation) triples.
"""

import copy
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionModel, GenerationConfig, GenerationMixin, GPT2LMHeadModel, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import DynamicCache, DynamicLayer, EncoderDecoderCache, StaticLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput, can_return_tuple, logging
from transformers.utils.deprecation import deprecate_kwarg

try:
    from .configuration_sevlm import IGNORE_INDEX, SevlmConfig
except ImportError:
    from configuration_sevlm import IGNORE_INDEX, SevlmConfig

logger = logging.get_logger(__name__)


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
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, with `output_hidden_states=True`):
        the decoder's hidden states, the embeddings and each layer's output: `(batch, seq, hidden)` each.
    attentions (`tuple(torch.FloatTensor)`, *optional*, with `output_attentions=True`):
        the decoder's self-attention weights per layer: `(batch, heads, seq, seq)` each.
    cross_attentions (`tuple(torch.FloatTensor)`, *optional*, with `output_attentions=True`):
        the decoder's attention over the image patches per layer: `(batch, heads, seq, patches)` each. Patch `p`
        is row `p // side`, column `p % side` of the vision tower's patch grid (`side = image_size // patch_size`).
    image_embeds (`torch.FloatTensor` of shape `(images, patches, hidden)`, *optional*): cross-attention memory.
    image_outputs (`BaseModelOutputWithPooling`, *optional*): the image encoder's output when this call encoded the
        images (from `pixel_values`, or `get_image_features`' output given as `encoder_hidden_states`), as
        `get_image_features` returns it: `last_hidden_state` (the memory), `pooler_output`, and the vision tower's
        `hidden_states` / `attentions` with `output_hidden_states` / `output_attentions`. As transformers'
        vision-language models return `image_outputs`; None when only the memory was given.
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
    attentions: tuple | None = None
    cross_attentions: tuple | None = None
    image_embeds: torch.FloatTensor | None = None
    image_outputs: BaseModelOutputWithPooling | None = None

    def to_tuple(self):
        # The image encoder's output becomes a tuple as well, as in transformers' vision-language outputs.
        return tuple(self[key].to_tuple() if key == "image_outputs" else self[key] for key in self.keys())


@contextmanager
def _eager_attention(model, needed):
    """Run a stock sub-model (the vision tower, the decoder) with the eager attention kernel, switched with
    `set_attn_implementation` and back: SDPA and flash attention do not return attention weights."""
    # transformers 5.x has no public reader of the current kernel; its attention guide reads this property.
    previous = model.config._attn_implementation
    if not needed or previous in (None, "eager"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


# -------------------------------------------------------------------------------------------------- modules
class SevlmVadEncoder(nn.Module):
    """Transformer over per-token VAD values (d_model 3) with learned positions; causal by default.

    Post-norm layers with ReLU as `nn.TransformerEncoderLayer`, and a final layer norm.

    Two ways through it, with the same weights and the same results up to float rounding:
    - whole sequences (`cache_layers=None`): training, scoring, and generation without a KV cache, written out with
      one fused projection per layer and bit-identical to `nn.TransformerEncoder`;
    - with a KV cache (`cache_layers`, one transformers cache layer per encoder layer, causal encoder only): the keys
      and values of the given tokens are appended to the cache and attention reads the cache, so that a generation
      step runs the encoder over its new token only, as the decoder does. At d_model 3 a step costs operator
      dispatch, not arithmetic (on a GPU every operator is a kernel launch), so it runs on weights folded once per
      `generate` call (`step_weights`), in as few operators as the method allows.

    What the cache layers hold, per head: keys `(batch, heads, length, 3 // heads + 1)` whose last column is the
    token's additive mask (0, or `_mask_value(dtype)` for padding), so that a decoding step needs no attention mask;
    values `(batch, heads, length, 3)` already through the output projection, so that the attention output is their
    weighted sum over heads and keys.
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

    def forward(self, vad_values, attention_mask=None, positions=None, cache_layers=None, step_weights=None):
        """VAD features `[batch, length, 3]` of `vad_values` `[batch, length, 3]`.

        Args:
            attention_mask: `[batch, keys]`, 1 for real tokens and 0 for padding (keys: the cached tokens and these),
                or the decoder's 4-d mask `[batch, 1, length, keys]` (True, or 0 when additive, where a query may read
                a key) that `generate` makes for a static cache. Cached tokens keep the padding they were cached with.
            positions: `[batch, length]` position ids of tokens after cached ones (`generate`'s, which count the
                real tokens as this encoder does); by default counted over the real tokens of the mask.
            cache_layers: the transformers cache layers that hold this encoder's keys and values, one per layer.
                Empty ones get the keys and values of these tokens; filled ones are read and extended.
            step_weights: `step_weights()`, folded once for many cached steps (`generate` does); made here if None.
        """
        if cache_layers is not None:
            if not self.causal:
                raise ValueError("The bidirectional VAD encoder changes past positions at every step: it takes no cache.")
            if _holds_tokens(cache_layers[0]):
                return self._cached(vad_values, attention_mask, positions, cache_layers, step_weights)
        if attention_mask is not None and attention_mask.dim() == 4:
            attention_mask = _real_keys(attention_mask)[:, : vad_values.shape[1]]
        return self._whole(vad_values, attention_mask, cache_layers, step_weights)

    def _whole(self, vad_values, attention_mask, cache_layers=None, step_weights=None):
        """Whole sequences (training, scoring, generation without a cache, and the prompt of a cached generation,
        whose keys and values go into the empty `cache_layers`)."""
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
        if cache_layers is not None:
            step_layers = (step_weights or self.step_weights())[0]
            key_padding = self._key_padding(attention_mask.logical_not(), hidden.dtype)
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            if cache_layers is not None:
                # The cache gets the keys and values of a cached step (see the class docstring).
                projection, projection_bias = step_layers[index][:2]
                projected = torch.addmm(projection_bias, hidden.view(-1, width), projection)
                _, key, value = self._split(projected, batch, length)
                cache_layers[index].update(key + key_padding, value)
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

    def step_weights(self):
        """The weights of a cached step, folded (in float32, then cast back): `(layers, final_norm)`.

        Per layer `(projection, projection_bias, norm1, up, up_bias, down, norm2)`, `addmm` operands over rows
        `[tokens, 3]`. The projection gives per head the query, scaled, and a constant 1 (which reads the keys' mask
        column); the key and a 0 (its mask column: not padding); the value through its head's share of the output
        projection, plus the output bias over the heads (attention weights sum to one). `up` gives the feed-forward
        activations and a constant 1 (ReLU keeps it), so that `down` also adds the second bias. Norms are
        `(weight, bias, eps)`.
        """
        heads, size = self.heads, 3 // self.heads
        layers = []
        for layer in self.layers:
            attention = layer.self_attn
            dtype = attention.in_proj_weight.dtype
            weight = attention.in_proj_weight.float().view(3, heads, size, 3)  # (query/key/value, head, row, input)
            bias = attention.in_proj_bias.float().view(3, heads, size)
            out_weight = attention.out_proj.weight.float().view(3, heads, size).transpose(0, 1)  # (head, output, row)
            value_weight = out_weight @ weight[2]
            value_bias = (out_weight @ bias[2].unsqueeze(-1)).squeeze(-1) + attention.out_proj.bias.float() / heads
            scale = size**-0.5
            constant = weight.new_zeros(heads, 1, 3)  # a row that reads nothing: its bias is the output
            zeros, ones = bias.new_zeros(heads, 1), bias.new_ones(heads, 1)
            projection = torch.cat([weight[0] * scale, constant, weight[1], constant, value_weight], 1)
            projection_bias = torch.cat([bias[0] * scale, ones, bias[1], zeros, value_bias], 1)
            up = torch.cat([layer.linear1.weight.float(), constant[0]])
            up_bias = torch.cat([layer.linear1.bias.float(), ones[0]])
            down = torch.cat([layer.linear2.weight.float().t(), layer.linear2.bias.float()[None]])
            layers.append((
                projection.reshape(-1, 3).t().to(dtype).contiguous(),
                projection_bias.to(dtype).view(1, -1),
                _norm_weights(layer.norm1),
                up.t().to(dtype).contiguous(),
                up_bias.to(dtype).view(1, -1),
                down.to(dtype).contiguous(),
                _norm_weights(layer.norm2),
            ))
        return layers, _norm_weights(self.norm)

    def _split(self, projected, batch, length):
        """Views `(query, key, value)` of the projection `[batch * length, heads * (2 * (3 // heads) + 5)]` by
        `step_weights` (a product's fresh, contiguous output): `(batch, heads, length, 3 // heads + 1)` twice and
        `(batch, heads, length, 3)`. Strided views, one operator each where `view` and `split` take five."""
        size = 3 // self.heads
        part = 2 * size + 5
        row = self.heads * part
        strides = (length * row, part, row, 1)
        return (
            projected.as_strided((batch, self.heads, length, size + 1), strides, 0),
            projected.as_strided((batch, self.heads, length, size + 1), strides, size + 1),
            projected.as_strided((batch, self.heads, length, 3), strides, 2 * size + 2),
        )

    def _key_padding(self, padding, dtype):
        """What to add to keys `[batch, heads, length, 3 // heads + 1]` so that their mask column marks `padding`
        `[batch, length]` (True for padding): `[batch, 1, length, 3 // heads + 1]`."""
        column = (padding.to(dtype) * _mask_value(dtype))[:, None, :, None]
        return F.pad(column, (3 // self.heads, 0))

    def _cached(self, vad_values, attention_mask, positions, cache_layers, step_weights=None):
        """Tokens after cached ones: each is appended to the cache and reads it, so nothing before it is recomputed.
        Several tokens (a chunked prefill, assisted decoding's candidates) go one after another, each reading those
        before it; a decoding step has one. Dropout is left out (generation runs in eval mode)."""
        batch, length, width = vad_values.shape
        weights = step_weights or self.step_weights()
        if positions is None:
            positions = self._positions(attention_mask, length, cache_layers[0], vad_values.device)
        position_values = self.position_embedding.weight[positions]
        if position_values.dtype != vad_values.dtype:
            position_values = position_values.to(vad_values.dtype)
        hidden = vad_values + position_values
        if length == 1:
            return self._step(hidden.view(batch, width), weights, cache_layers).view(batch, 1, width)
        padding = self._new_padding(attention_mask, length, cache_layers[0])
        if padding is not None:
            padding = self._key_padding(padding, hidden.dtype)
        outputs = [
            self._step(
                hidden[:, index], weights, cache_layers, None if padding is None else padding[:, :, index : index + 1]
            )
            for index in range(length)
        ]
        return torch.stack(outputs, 1)

    def _step(self, rows, weights, cache_layers, key_padding=None):
        """One new token per row: rows `[batch, 3]` in, VAD features `[batch, 3]` out."""
        layers, final_norm = weights
        batch = rows.shape[0]
        bias = None
        if isinstance(cache_layers[0], StaticLayer):
            # A static layer's slots after this token's are unfilled (zeros): masked.
            slots = torch.arange(cache_layers[0].max_cache_len, device=rows.device)
            unfilled = (slots > cache_layers[0].get_seq_length()).to(rows.dtype)
            bias = (unfilled * _mask_value(rows.dtype)).view(1, 1, -1, 1)
        for (projection, projection_bias, norm1, up, up_bias, down, norm2), cache_layer in zip(layers, cache_layers):
            query, key, value = self._split(torch.addmm(projection_bias, rows, projection), batch, 1)
            if key_padding is not None:
                key = key + key_padding
            keys, values = cache_layer.update(key, value)
            scores = (query * keys).sum(-1, keepdim=True)  # (batch, heads, keys, 1), masked through the mask column
            if bias is not None:
                scores = scores + bias
            # The values carry the output projection: their weighted sum over heads and keys is the attention output.
            attended = (scores.softmax(-2) * values).sum((1, 2))
            rows = _layer_norm(rows + attended, norm1)
            activations = torch.addmm(up_bias, rows, up).clamp_min_(0)  # ReLU
            # The residual in place (the norm's output is not needed apart from it).
            rows = _layer_norm(rows.addmm_(activations, down), norm2)
        return _layer_norm(rows, final_norm)

    @staticmethod
    def _positions(attention_mask, length, cache_layer, device):
        """Position ids of the new tokens when the caller gave none: counted over the real tokens, as `_whole` does."""
        if attention_mask is None:
            return (torch.arange(length, device=device) + cache_layer.get_seq_length()).unsqueeze(0)
        if attention_mask.dim() == 4:
            return _real_keys(attention_mask).long().sum(-1, keepdim=True) - length + torch.arange(length, device=device)
        return (attention_mask.long().cumsum(-1)[:, -length:] - 1).clamp(min=0)

    @staticmethod
    def _new_padding(attention_mask, length, cache_layer):
        """`[batch, length]`, True where a new token is padding (None without a mask)."""
        if attention_mask is None:
            return None
        if attention_mask.dim() == 2:
            return attention_mask[:, -length:] == 0
        # The decoder's mask: whether each new token may read its own slot.
        slots = torch.arange(length, device=attention_mask.device) + cache_layer.get_seq_length()
        slots = slots.view(1, -1, 1).expand(attention_mask.shape[0], -1, -1)
        own = attention_mask[:, 0].gather(-1, slots).squeeze(-1)
        return own.logical_not() if own.dtype == torch.bool else own != 0


def _mask_value(dtype):
    """The additive mask of the VAD encoder's cached steps: half the dtype's lowest value, so that a key masked twice
    (padding, and an unfilled static slot) stays finite and a row whose keys are all masked gives no NaN."""
    return torch.finfo(dtype).min / 2


def _norm_weights(norm):
    return norm.weight, norm.bias, norm.eps


def _layer_norm(rows, norm):
    """LayerNorm over the width of rows `[count, width]`, as a GroupNorm of one group over `count` samples of `width`
    channels (the same statistics), called as its kernel: one operator where `layer_norm` dispatches three."""
    weight, bias, eps = norm
    return torch.native_group_norm(rows, weight, bias, rows.shape[0], rows.shape[1], 1, 1, eps)[0]


def _holds_tokens(cache_layer, exact=False):
    """Whether a cache layer holds tokens already. An allocated static layer counts as holding them unless `exact`:
    reading its length makes the host wait for the device."""
    if not cache_layer.is_initialized:
        return False
    if isinstance(cache_layer, StaticLayer) and not exact:
        return True
    return int(cache_layer.get_seq_length()) > 0


def _real_keys(attention_mask):
    """`[batch, keys]` bool from a 4-d decoder mask: what its last query may read. With left padding the last token
    is real, so that is every real token up to it."""
    row = attention_mask[:, 0, -1]
    return row if row.dtype == torch.bool else row == 0


class SevlmVadFusion(nn.Module):
    """`Linear(hidden + 3 -> hidden)` over `[token_embedding ; vad_feature]`, started at identity on the embedding
    part so that pretrained GPT-2 embeddings pass unchanged at the first step."""

    def __init__(self, hidden_size):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden_size, hidden_size + 3))
        self.bias = nn.Parameter(torch.empty(hidden_size))

    def operands(self):
        """`(weight, bias)` as `baddbmm` takes them, `[1, hidden + 3, hidden]` and `[1, 1, hidden]` (views)."""
        return self.weight.t()[None], self.bias[None, None]

    def forward(self, embeddings, vad_features, operands=None):
        """Fused `[..., hidden]` of embeddings `[..., hidden]` and VAD features `[..., 3]`: one `baddbmm` over rows
        `[1, tokens, hidden]` (pass those, and `operands()` made once, for the fewest operators)."""
        weight, bias = operands or self.operands()
        if vad_features.dtype != embeddings.dtype:
            vad_features = vad_features.to(embeddings.dtype)
        rows = torch.cat([embeddings, vad_features], dim=-1)
        if rows.dim() != 3 or rows.shape[0] != 1:
            return torch.baddbmm(bias, rows.reshape(1, -1, rows.shape[-1]), weight).view(*rows.shape[:-1], -1)
        return torch.baddbmm(bias, rows, weight)


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
    # Static cache + torch.compile(fullgraph=True) of a decoding step: no data-dependent control flow in `forward`.
    _can_compile_fullgraph = True
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

    def initialize_weights(self):
        """Initialise the weights missing from a checkpoint as the stock models do: the vision tower and the decoder
        first, each by its own `initialize_weights` (CLIP's scheme; GPT-2's, with its scaled residual projections),
        then SEVLM's own modules by `_init_weights`, whose modules those calls have marked as done.

        Within custom code transformers skips every module whose direct parameters all count as loaded, which
        includes every module without direct parameters (GPT-2's attention and MLP, CLIP's attention): where those
        schemes live. Called on their own, the stock sub-models are transformers' own code and get them.
        """
        self.vision_model.initialize_weights()
        self.language_model.initialize_weights()
        super().initialize_weights()


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
        if config.freeze_vision:
            self.vision_model.requires_grad_(False)
        self.post_init()

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def from_vision_text(cls, vision, text, processor, vad_table=None, **config_kwargs):
        """Start a new SEVLM from a vision tower and a decoder.

        Args:
            vision: a pretrained CLIP name or path (e.g. `"openai/clip-vit-base-patch16"`, weights loaded) or a
                `CLIPVisionConfig` / dict (random init).
            text: a pretrained GPT-2 name or path (e.g. `"distilgpt2"`, weights loaded; cross-attention is new) or a
                `GPT2Config` / dict (random init).
            processor: the `SevlmProcessor` whose tokenizer the model will use. Its special tokens are added to the
                embeddings and its sequence format (emotions, prompt, connector, token ids) goes into the config.
            vad_table (`torch.Tensor` of shape `(len(processor.tokenizer), 3)`, *optional*): each token's (valence,
                arousal, dominance) in [-1, 1], zeros for tokens without one. Build it from a lexicon with
                `sevlm.vad.build_vad_table(processor.tokenizer, "NRC-VAD-Lexicon.txt")`.
            config_kwargs: other `SevlmConfig` fields (loss switches and weights, `vad_encoder_causal`, ...).
        """
        from transformers import CLIPVisionConfig, GPT2Config

        if "vad_lexicon" in config_kwargs:
            raise TypeError(
                "from_vision_text takes `vad_table=` (a [vocab, 3] tensor) instead of `vad_lexicon=`: build it with "
                "sevlm.vad.build_vad_table(processor.tokenizer, lexicon_path)."
            )
        token_fields = processor.token_id_config()
        for key in ("emotions", "prompt_text", "connector_text"):
            if key in config_kwargs and config_kwargs.pop(key) != token_fields[key]:
                raise ValueError(f"`{key}` comes from the processor; build the processor with the {key} you want.")
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
            vision_config = CLIPVisionConfig(**vision) if isinstance(vision, dict) else copy.deepcopy(vision)
        tokenizer = processor.tokenizer
        # The embeddings grow by the processor's new tokens before the new ids are set, so that the ids are always
        # inside the vocabulary (mean-initialised rows for a pretrained decoder, as `resize_token_embeddings` does).
        if text_model is not None:
            if text_model.get_input_embeddings().num_embeddings != len(tokenizer):
                text_model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
            text_config = text_model.config
            logger.info(f"Decoder loaded from {text}; its cross-attention layers are newly initialised.")
        else:
            text_config = GPT2Config(**text) if isinstance(text, dict) else copy.deepcopy(text)
            text_config.vocab_size = len(tokenizer)
        if vad_table is None and (config_kwargs.get("use_vad_embedding", True) or config_kwargs.get("use_vad_loss", True)):
            logger.warning("No VAD table given: it is all zeros, so VAD fusion and VAD loss learn nothing.")
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(text_config, key, token_fields.pop(key))
        config = SevlmConfig(vision_config=vision_config, text_config=text_config, **token_fields, **config_kwargs)

        model = cls(config)
        if vision_model is not None:
            model.vision_model.load_state_dict(vision_model.state_dict())
        if text_model is not None:
            model.language_model.load_state_dict(text_model.state_dict())
        if vad_table is not None:
            model.set_vad_table(vad_table)
        model.generation_config = GenerationConfig(
            bos_token_id=text_config.bos_token_id,
            eos_token_id=text_config.eos_token_id,
            pad_token_id=text_config.pad_token_id,
            max_new_tokens=25,
            do_sample=False,
            num_beams=1,
        )
        return model

    def set_vad_table(self, vad_table):
        """Fill the VAD table (`[vocab, 3]`, each token's valence, arousal, dominance in [-1, 1]); returns how many
        tokens have a VAD value. Rows beyond the model's vocabulary are an error; missing rows stay zero."""
        vad_table = torch.as_tensor(vad_table, dtype=torch.float32)
        size = self.vad_table.shape[0]
        if vad_table.ndim != 2 or vad_table.shape[1] != 3 or vad_table.shape[0] > size:
            raise ValueError(f"vad_table must have shape (at most {size}, 3), got {tuple(vad_table.shape)}.")
        if not torch.isfinite(vad_table).all() or vad_table.abs().max() > 1:
            raise ValueError("vad_table values must be finite and lie in [-1, 1].")
        self.vad_table.zero_()
        self.vad_table[: vad_table.shape[0]] = vad_table.to(self.vad_table)
        found = int((vad_table.abs().sum(-1) > 0).sum())
        logger.info(f"VAD table: {found} of {size} tokens have a VAD value.")
        return found

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, and the folder answers to `pipeline("art-emotion", model=folder,
        trust_remote_code=True)`: config.json's `custom_pipelines` names `pipeline_sevlm.py`, which transformers copies
        beside this file (it is imported below)."""
        try:
            from .pipeline_sevlm import pipeline_config_entry
        except ImportError:
            from pipeline_sevlm import pipeline_config_entry
        self.config.custom_pipelines = pipeline_config_entry()
        return super().save_pretrained(save_directory, *args, **kwargs)

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

    @property
    def sequence_format(self):
        """The token sequences this model reads and writes (`SevlmSequenceFormat`, from the config).

        Kept while the config's format fields stay the same: it is read at every generation step.
        """
        config, text = self.config, self.config.text_config
        key = (
            tuple(config.emotions),
            tuple(config.prompt_token_ids or ()),
            tuple(config.connector_token_ids or ()),
            tuple(map(tuple, config.emotion_token_ids or ())),
            config.emotion_token_id,
            config.explanation_token_id,
            text.bos_token_id,
            text.eos_token_id,
            text.pad_token_id,
        )
        cached = getattr(self, "_sequence_format_cache", None)
        if cached is None or cached[0] != key:
            cached = self._sequence_format_cache = (key, config.sequence_format)
        return cached[1]

    # -------------------------------------------------------------------------------------------- features
    def get_image_features(self, pixel_values, output_hidden_states=None, output_attentions=None, return_dict=None, **kwargs):
        """Encode images: a `BaseModelOutputWithPooling` with

        - `last_hidden_state` `(images, patches, hidden)`: the cross-attention memory, CLIP's patch tokens (no CLS)
          after its final layer norm, projected to the decoder's width. `generate`, `emotion_scores` and `forward`
          take it (or this whole output) as `encoder_hidden_states`.
        - `pooler_output` `(images, hidden)`: its mean over the patches, the image's global vector (the one the
          contrastive head reads; an image search index stores it).
        - `hidden_states`, `attentions`: the vision tower's, with `output_hidden_states` / `output_attentions` (given,
          or set in this config or the vision config).

        The vision tower runs without gradients while it is frozen (`config.freeze_vision`).
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        vision = self.vision_model
        # Resolved here from this config or the vision tower's: an explicit None would switch the tower's default off.
        if output_attentions is None:
            output_attentions = self.config.output_attentions or vision.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states or vision.config.output_hidden_states
        frozen = self.config.freeze_vision
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen), _eager_attention(vision, output_attentions):
            outputs = vision(
                pixel_values=pixel_values.to(dtype=vision.dtype, device=vision.device),
                output_hidden_states=output_hidden_states,
                output_attentions=output_attentions,
                **kwargs,
            )
            patches = vision.post_layernorm(outputs.last_hidden_state[:, 1:])
        memory = self.image_projection(patches)
        features = BaseModelOutputWithPooling(
            last_hidden_state=memory,
            pooler_output=memory.mean(1),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return features if return_dict else features.to_tuple()

    def _encode_images(self, pixel_values, encoder_hidden_states, caller, output_attentions=False, output_hidden_states=False):
        """`(memory, image_outputs)`: the cross-attention memory, from `encoder_hidden_states` (a tensor or
        `get_image_features`' output) or from pixels, and the image encoder's output when there is one (else None)."""
        if encoder_hidden_states is None:
            if pixel_values is None:
                raise ValueError(f"{caller} needs an image: pass `pixel_values` (or `encoder_hidden_states`).")
            outputs = self.get_image_features(
                pixel_values, output_hidden_states=output_hidden_states, output_attentions=output_attentions, return_dict=True
            )
            return outputs.last_hidden_state, outputs
        if isinstance(encoder_hidden_states, ModelOutput):
            return encoder_hidden_states.last_hidden_state, encoder_hidden_states
        if isinstance(encoder_hidden_states, tuple):
            return encoder_hidden_states[0], None
        return encoder_hidden_states, None

    def _image_memory(self, pixel_values, encoder_hidden_states, caller):
        """The cross-attention memory from `encoder_hidden_states` (a tensor or `get_image_features`' output) or pixels."""
        return self._encode_images(pixel_values, encoder_hidden_states, caller)[0]

    def segment_ids(self, input_ids):
        """`<explanation>` from the token that completes the connector on, `<emotion>` before (whole sequences)."""
        return self.sequence_format.segment_ids(input_ids)

    def vad_features(self, input_ids, attention_mask=None):
        """VAD encoder over the table's VAD values of whole sequences: `[batch, seq, 3]`."""
        return self.vad_encoder(self.vad_table[input_ids], attention_mask)

    def _vad_cache_layers(self, cache):
        """The cache layers that hold the VAD encoder's keys and values (created when missing), or None.

        They follow the decoder's own layers in its self-attention cache, of the same kind (static layers in a
        static cache), so that everything `generate` does to the cache (beam search reordering it, assisted decoding
        cropping it, a static cache allocating and compiling it) also applies to them.
        """
        if cache is None or not self.config.vad_encoder_causal:
            return None
        layers = (cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache).layers
        first, count = self.config.text_config.n_layer, len(self.vad_encoder.layers)
        while len(layers) < first + count:
            kind = layers[0] if layers else None
            layers.append(StaticLayer(kind.max_cache_len) if isinstance(kind, StaticLayer) else DynamicLayer())
        return layers[first : first + count]

    def _embed(self, input_ids, token_type_ids, vad_features, fusion_operands=None):
        embeddings = self.get_input_embeddings()(input_ids)
        if not self.config.use_vad_embedding:
            return embeddings
        # Fusion on the token embedding (before GPT-2 adds positions and segments), explanation tokens only, over
        # rows [1, tokens, hidden]: one product and one choice per step.
        batch, length, hidden = embeddings.shape
        rows = embeddings.view(1, batch * length, hidden)
        vad_rows = vad_features.view(1, -1, 3) if vad_features.is_contiguous() else vad_features.reshape(1, -1, 3)
        fused = self.vad_fusion(rows, vad_rows, fusion_operands)
        is_explanation = (token_type_ids == self.config.explanation_token_id).view(1, -1, 1)
        return torch.where(is_explanation, fused, rows).view(batch, length, hidden)

    # --------------------------------------------------------------------------------------------- forward
    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
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
        output_attentions=None,
        output_hidden_states=None,
        **kwargs,
    ) -> SevlmOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch, seq)`): token ids (only the uncached tail when `cache`
                holds earlier steps; then `token_type_ids` of that tail must be given, as `generate` does).
            pixel_values (`torch.FloatTensor` of shape `(images, 3, H, W)`): paintings. One per sequence, or one per
                row of `image_index`.
            token_type_ids: segment ids. The model derives them from `input_ids`; given ones (the processor's) must
                agree, which catches a processor whose sequence format differs from the model's.
            labels (`torch.LongTensor` of shape `(batch, seq)`): targets, -100 where ignored (not shifted).
            image_index (`torch.LongTensor` of shape `(batch,)`): the image row of each sequence. Needed by the
                contrastive loss: sequences `2k` and `2k+1` are a pair, two annotations of one painting with
                different emotions.
            encoder_hidden_states: precomputed `get_image_features(pixel_values)` (its output or its
                `last_hidden_state`), instead of `pixel_values`.
            vad_features (`torch.FloatTensor` of shape `(batch, seq, 3)`): precomputed VAD encoder outputs, used
                instead of the model's own (with a cache the encoder still runs, to keep its cached state in step).
            cache: the key/value cache of earlier steps (`past_key_values=` is accepted as its deprecated name). It
                also holds the VAD encoder's keys and values (after the decoder's layers), so a cached step runs the
                encoder over its new tokens only. Made here when `use_cache` and none is given.
            use_cache: return the cache; by default the text config's `use_cache`, except when `labels` are given
                (a training step needs no cache).
            output_attentions, output_hidden_states: also return the decoder's `attentions`, `cross_attentions` (over
                the image patches) and `hidden_states`, and the vision tower's in `image_outputs` when the images are
                encoded here. Attention weights are computed with the eager kernel for the call (SDPA does not
                return them).
            return_dict: `False` returns a tuple of the non-`None` fields of `SevlmOutput`, in order.
        """
        if input_ids is None:
            raise ValueError("SEVLM needs `input_ids` (use the SevlmProcessor to build them).")
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        encoder_hidden_states, image_outputs = self._encode_images(
            pixel_values, encoder_hidden_states, "SEVLM", output_attentions, output_hidden_states
        )
        image_embeds = encoder_hidden_states
        if image_index is not None:
            encoder_hidden_states = encoder_hidden_states[image_index]
        if encoder_hidden_states.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"Got {encoder_hidden_states.shape[0]} images for {input_ids.shape[0]} sequences; "
                "pass one image per sequence or an `image_index`."
            )
        if use_cache is None:
            use_cache = labels is None and self.config.text_config.use_cache
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config.text_config)
        if not torch.compiler.is_compiling():
            token_type_ids = self._checked_segments(input_ids, token_type_ids, vad_features, cache)
        if token_type_ids is None:
            token_type_ids = self.segment_ids(input_ids)
        # Folded once per generate() call for its eager cached steps (None outside generate: made per call). A compiled
        # step folds them in its graph, from the parameters: torch.compile takes tensors held by a module as inputs at
        # fixed addresses (for CUDA graphs), which the next call's new tensors would not keep.
        step_weights, fusion_operands = None, None
        if not torch.compiler.is_compiling():
            step_weights, fusion_operands = getattr(self, "_decoding_weights", None) or (None, None)
        if self.config.use_vad_embedding:
            vad_layers = self._vad_cache_layers(cache)
            if vad_layers is not None or vad_features is None:
                # With a cache the encoder runs over the new tokens only, even when features are given.
                vad_values = self.vad_table[input_ids]
                computed = self.vad_encoder(vad_values, attention_mask, position_ids, vad_layers, step_weights)
                vad_features = computed if vad_features is None else vad_features

        with _eager_attention(self.language_model, output_attentions):
            outputs = self.language_model.transformer(
                inputs_embeds=self._embed(input_ids, token_type_ids, vad_features, fusion_operands),
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                encoder_hidden_states=encoder_hidden_states,
                cache=cache,
                use_cache=use_cache,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                return_dict=True,
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
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
            image_embeds=image_embeds,
            image_outputs=image_outputs,
        )

    def _checked_segments(self, input_ids, token_type_ids, vad_features, cache):
        """Segment ids for this call: given ones for a cached step (the model cannot see the earlier tokens), derived
        ones otherwise, after checking that given ones agree with them."""
        layers = None if cache is None else (cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache).layers
        if layers and _holds_tokens(layers[0]):
            first_vad = self.config.text_config.n_layer
            vad_cached = self.config.vad_encoder_causal and len(layers) > first_vad and _holds_tokens(layers[first_vad])
            missing = token_type_ids is None or (self.config.use_vad_embedding and vad_features is None and not vad_cached)
            # A static cache allocated before its first tokens (as for a chunked prefill) is empty after all.
            if missing and _holds_tokens(layers[0], exact=True):
                raise ValueError(
                    "With a filled `cache` pass the new tokens' `token_type_ids` (and `vad_features` when the cache "
                    "does not hold the VAD encoder's state), or use `generate()`."
                )
            if not missing:
                return token_type_ids
        derived = self.segment_ids(input_ids)
        if token_type_ids is not None and not torch.equal(token_type_ids.to(derived.device), derived):
            raise ValueError(
                "The given `token_type_ids` differ from the segments this model derives from `input_ids`: the inputs "
                "were built with another sequence format (emotions, prompt, connector or tokenizer) than the model's. "
                "Use the processor saved with the model (AutoProcessor.from_pretrained(model_folder))."
            )
        return derived

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
        ids = torch.tensor(self.sequence_format.prompt(), device=self.device)
        return ids.unsqueeze(0).expand(batch_size, -1).contiguous()

    @torch.no_grad()
    def generate(self, pixel_values=None, input_ids=None, attention_mask=None, encoder_hidden_states=None, **kwargs):
        """Encode the images once and generate `{emotion} because {explanation}<eos>` with the HF machinery.

        Without `input_ids` the prompt is `<bos> the emotion is`; pass the processor's output to condition on a
        given emotion. All `generate` options work (greedy, beam search, sampling, assisted decoding,
        `cache_implementation="static"`, `return_dict_in_generate` with `output_attentions` / `output_hidden_states`).
        """
        memory = self._image_memory(pixel_values, encoder_hidden_states, "SEVLM generation")
        if input_ids is None:
            input_ids = self.prompt(memory.shape[0])
            attention_mask = torch.ones_like(input_ids)
        kwargs.pop("token_type_ids", None)  # re-derived from the ids at every step
        chunked = kwargs.get("prefill_chunk_size") or getattr(kwargs.get("generation_config") or self.generation_config, "prefill_chunk_size", None)
        if chunked:
            # A chunked prefill sees one chunk of the prompt at a time: the prompt's segments go along (generate
            # slices them to each chunk's end).
            kwargs["token_type_ids"] = self.segment_ids(input_ids)
        if not self.config.vad_encoder_causal and kwargs.get("use_cache", True):
            logger.warning_once("The bidirectional VAD encoder changes past positions at every step: generating without a KV cache.")
            kwargs["use_cache"] = False
        # Read once per call rather than at every step (checking the config's format fields costs more than the step's
        # segment lookup, and folding the VAD weights more than the step itself); restored afterwards, as an assistant
        # model may be this same model.
        outer = getattr(self, "_decoding_format", None), getattr(self, "_decoding_weights", None)
        self._decoding_format = self.sequence_format
        self._decoding_weights = None
        if self.config.use_vad_embedding:
            step_weights = self.vad_encoder.step_weights() if self.config.vad_encoder_causal else None
            self._decoding_weights = step_weights, self.vad_fusion.operands()
        try:
            return super().generate(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=memory, **kwargs)
        finally:
            self._decoding_format, self._decoding_weights = outer

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
        model_inputs = super().prepare_inputs_for_generation(input_ids, attention_mask=attention_mask, **kwargs)
        # The segments of the new tokens follow from the whole sequence so far (a cached step only sees its new
        # token): a token is explanation once the connector has completed. `input_ids` is what generate keeps right
        # through beam reordering and assisted-decoding rollbacks, and a decoding step asks about one token only.
        # A chunked prefill passes one chunk of the prompt at a time, with the prompt's segments up to its end.
        sequences = getattr(self, "_decoding_format", None) or self.sequence_format
        new_tokens = model_inputs["input_ids"].shape[1]
        if new_tokens == 1 and input_ids.shape[1] > 1:
            segments = sequences.last_segment_ids(input_ids)
        elif token_type_ids is not None:
            segments = token_type_ids[:, -new_tokens:]
        else:
            segments = sequences.segment_ids(input_ids)[:, -new_tokens:]
        model_inputs["token_type_ids"] = segments.clone(memory_format=torch.contiguous_format) if new_tokens > 1 else segments
        return model_inputs

    @torch.no_grad()
    def emotion_scores(self, pixel_values=None, encoder_hidden_states=None):
        """Probability of every class in `config.emotions`, per image: `[images, classes]`, rows sum to 1.

        Each class is scored by the model's log-likelihood of `{emotion} {connector}` after the prompt (all tokens
        of multi-token names such as "something else", and the connector that ends the name).
        """
        memory = self._image_memory(pixel_values, encoder_hidden_states, "emotion_scores")
        images = memory.shape[0]
        sequences = self.sequence_format
        classes = len(sequences.emotions)
        rows = sequences.batch([sequences.prompt(index) for index in range(classes)], padding_side="right")
        input_ids = rows["input_ids"].to(memory.device).repeat(images, 1)
        attention_mask = rows["attention_mask"].to(memory.device).repeat(images, 1)
        image_index = torch.arange(images, device=memory.device).repeat_interleave(classes)
        # Only the positions that predict a scored token (the emotion and the connector, after the given prompt) need
        # the vocabulary-wide LM head: at real size it would otherwise cost as much as the vision tower.
        given = len(sequences.prompt())
        logits = self(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=memory,
            image_index=image_index,
            use_cache=False,
            logits_to_keep=input_ids.shape[1] - given + 1,
        ).logits.float()
        targets = input_ids[:, given:]
        log_probs = logits[:, :-1].log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
        scored = attention_mask[:, given:].bool()
        totals = (log_probs * scored).sum(-1).view(images, classes)
        return totals.softmax(-1)


def _masked_mean(hidden, mask):
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


SevlmForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")

__all__ = [
    "SevlmForConditionalGeneration",
    "SevlmOutput",
    "SevlmPreTrainedModel",
]
