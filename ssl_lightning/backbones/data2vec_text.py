"""data2vec text encoder: transformers' `Data2VecTextModel` (RoBERTa: learned positions, post-LN BERT
blocks, a tanh pooler on the first token), with the hooks data2vec 1.0 and 2.0 pre-training need.

Modules and parameters carry transformers' names (`embeddings.word_embeddings`,
`encoder.layer.{i}.attention.self.query`, `pooler.dense`, ...), so `state_dict()` is the transformers
base model's; transformers' non-persistent `position_ids` / `token_type_ids` buffers are not kept
(positions come from the ids, the token type is always 0). Released checkpoints
(`facebook/data2vec-text-base`, converted from fairseq) have no pooler: see `load_hf_state_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.backbones.data2vec_common import (
    Data2VecEncoding,
    HuggingFaceEncoder,
    Intermediate,
    check_activations,
    check_divide_hidden_size,
)
from ssl_lightning.nn.pooling import masked_mean


@dataclass
class Data2VecTextConfig:
    """transformers' `Data2VecTextConfig` keys (names and defaults) that the encoder uses.

    The defaults are transformers' (BERT-base sized); `base()` / `large()` are the released data2vec
    text models (RoBERTa sized: vocabulary 50265, 514 positions, one token type, LayerNorm eps 1e-5 as
    transformers' conversion of the fairseq checkpoints sets them).
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2

    def __post_init__(self) -> None:
        check_divide_hidden_size(self, "num_attention_heads")
        check_activations(self, "hidden_act")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id={self.pad_token_id} must be a token id below vocab_size={self.vocab_size}"
            )

    @classmethod
    def base(cls) -> Data2VecTextConfig:
        """data2vec text Base (12 x 768, 12 heads, FFN 3072; `facebook/data2vec-text-base`)."""
        return cls(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)

    @classmethod
    def large(cls) -> Data2VecTextConfig:
        """data2vec text Large (24 x 1024, 16 heads, FFN 4096), otherwise as `base()`."""
        return cls(
            vocab_size=50265,
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            max_position_embeddings=514,
            type_vocab_size=1,
            layer_norm_eps=1e-5,
        )


class Data2VecTextEmbeddings(nn.Module):
    """`LayerNorm(word + position + token type 0)`, then dropout: `ids[B, L] -> [B, L, D]`.

    Position ids follow fairseq's `make_positions`: `cumsum(ids != pad) * (ids != pad) + pad`, so real
    tokens count from `pad + 1` and `<pad>` tokens take position `pad`.
    """

    def __init__(self, config: Data2VecTextConfig) -> None:
        super().__init__()
        self.padding_idx = config.pad_token_id
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=config.pad_token_id
        )

    def position_ids(self, ids: Tensor) -> Tensor:
        """`[B, L]` position ids of the token ids `[B, L]`."""
        real = ids.ne(self.padding_idx).long()
        return real.cumsum(dim=1) * real + self.padding_idx

    def forward(self, ids: Tensor) -> Tensor:
        embeddings = self.word_embeddings(ids) + self.token_type_embeddings.weight[0]
        embeddings = embeddings + self.position_embeddings(self.position_ids(ids))
        return self.dropout(self.LayerNorm(embeddings))


class Data2VecTextSelfAttention(nn.Module):
    """Multi-head self-attention `[B, N, D] -> [B, N, D]` (before the output projection); padded keys
    (`padding_mask[B, N]` True) get the dtype's minimum added to their scores, as in transformers."""

    def __init__(self, config: Data2VecTextConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, x: Tensor, padding_mask: Tensor | None) -> Tensor:
        batch, length, dim = x.shape
        query, key, value = (
            projection(x).view(batch, length, self.num_heads, -1).transpose(1, 2)
            for projection in (self.query, self.key, self.value)
        )
        bias = None
        if padding_mask is not None:  # in the query's dtype, also under autocast
            bias = padding_mask[:, None, None, :].to(query.dtype) * torch.finfo(query.dtype).min
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=bias, dropout_p=self.dropout.p if self.training else 0.0
        )
        return out.transpose(1, 2).reshape(batch, length, dim)


class Data2VecTextResidualOutput(nn.Module):
    """BERT's post-LN sub-layer output: `LayerNorm(dropout(dense(x)) + residual)`; also returns
    `dense(x)` (data2vec's per-block target when it is the FFN's second linear)."""

    def __init__(self, in_features: int, config: Data2VecTextConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, residual: Tensor) -> tuple[Tensor, Tensor]:
        projected = self.dense(x)
        return self.LayerNorm(self.dropout(projected) + residual), projected


class Data2VecTextAttention(nn.Module):
    """Self-attention sub-layer: `attention.self` then `attention.output` (post-LN residual)."""

    def __init__(self, config: Data2VecTextConfig) -> None:
        super().__init__()
        self.self = Data2VecTextSelfAttention(config)
        self.output = Data2VecTextResidualOutput(config.hidden_size, config)

    def forward(self, x: Tensor, padding_mask: Tensor | None) -> Tensor:
        return self.output(self.self(x, padding_mask), x)[0]


class Data2VecTextLayer(nn.Module):
    """Post-LN BERT block; returns `(block output, FFN output before dropout/residual/LayerNorm)`,
    both `[B, N, D]` (fairseq's `TransformerEncoderLayer` output and `fc_result`)."""

    def __init__(self, config: Data2VecTextConfig) -> None:
        super().__init__()
        self.attention = Data2VecTextAttention(config)
        self.intermediate = Intermediate(config.hidden_size, config.intermediate_size, config.hidden_act)
        self.output = Data2VecTextResidualOutput(config.intermediate_size, config)

    def forward(self, x: Tensor, padding_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        attended = self.attention(x, padding_mask)
        return self.output(self.intermediate(attended), attended)


class Data2VecTextBlocks(nn.Module):
    """The stack of blocks (`encoder.layer.{i}` in transformers)."""

    def __init__(self, config: Data2VecTextConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Data2VecTextLayer(config) for _ in range(config.num_hidden_layers))


class Data2VecTextPooler(nn.Module):
    """`tanh(dense(features[:, 0]))`: `[B, N, D] -> [B, D]` (transformers' `pooler_output`)."""

    def __init__(self, config: Data2VecTextConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, features: Tensor) -> Tensor:
        return torch.tanh(self.dense(features[:, 0]))


class Data2VecTextEncoder(HuggingFaceEncoder):
    """data2vec text (RoBERTa) encoder: token ids `[B, L]` -> features `[B, L, D]`.

    `forward(ids, padding_mask)` equals transformers' `Data2VecTextModel(...).last_hidden_state` with
    `attention_mask = ~padding_mask` (padded positions carry values too, as there). Positions come from
    the ids (`<pad>` tokens), independent of `padding_mask`. `pool` is the masked mean over the
    non-padded tokens (for linear probes); `pooler_output` is transformers' CLS pooler
    (`tanh(W h[:, 0] + b)`), which pre-training never trains.

    data2vec hooks: `embed_tokens` (the embeddings, positions included) and `encode_tokens` (the blocks).
    Text is masked on the ids (replace masked ids by the `<mask>` id before `embed_tokens`, data2vec
    1.0), so `encode_tokens` takes no `mask`; `keep_index` encodes the kept tokens only (data2vec 2.0).

    Args:
        config: transformers' config keys; None = `Data2VecTextConfig.base()`.
    """

    config_class = Data2VecTextConfig
    hf_model_type = "data2vec-text"
    hf_prefix = "data2vec_text."
    hf_architecture = "Data2VecTextModel"
    modality = "text"
    # fairseq data2vec_text.py `ema_transformer_layers_only`: token and position embeddings and the
    # embedding LayerNorm are copied from the student, the blocks averaged.
    ema_skip_keys: tuple[str, ...] = ("embeddings",)
    teacher_shares_front_end = False
    mask_embedding: str | None = None
    pretraining_unused: tuple[str, ...] = ("pooler",)

    def __init__(self, config: Data2VecTextConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else Data2VecTextConfig.base()
        self.embed_dim = self.config.hidden_size
        self.num_layers = self.config.num_hidden_layers
        self.embeddings = Data2VecTextEmbeddings(self.config)
        self.encoder = Data2VecTextBlocks(self.config)
        self.pooler = Data2VecTextPooler(self.config)
        self.init_weights()

    def init_weights(self) -> None:
        """Fresh transformers-style weights for every module (also the random-init baseline's)."""
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' init: Linear/Embedding weights N(0, initializer_range), biases and the padding
        embedding rows 0 (LayerNorm keeps ones/zeros)."""
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])

    def _check_ids(self, ids: Tensor, padding_mask: Tensor | None) -> None:
        config = self.config
        if ids.ndim != 2 or ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"x must be integer token ids [B, L]; got {ids.dtype} of shape {tuple(ids.shape)}"
            )
        length = ids.shape[1]
        if length + config.pad_token_id + 1 > config.max_position_embeddings:
            raise ValueError(
                f"sequence length L={length} needs position ids up to L + pad_token_id = "
                f"{length + config.pad_token_id}, beyond max_position_embeddings="
                f"{config.max_position_embeddings}; use sequences of at most "
                f"{config.max_position_embeddings - config.pad_token_id - 1} tokens"
            )
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= config.vocab_size):
            raise ValueError(
                f"token ids must lie in [0, vocab_size={config.vocab_size}); "
                f"got {int(ids.min())}..{int(ids.max())}"
            )
        if padding_mask is not None and (padding_mask.dtype != torch.bool or padding_mask.shape != ids.shape):
            raise ValueError(
                f"padding_mask must be bool of the ids' shape {tuple(ids.shape)} (True where padded, "
                f"i.e. ~attention_mask); got {padding_mask.dtype} of shape {tuple(padding_mask.shape)}"
            )

    def embed_tokens(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The embeddings output `[B, L, D]` (= transformers' `hidden_states[0]`) and `padding_mask`
        unchanged (`[B, L]` True where padded, or None).

        Raises:
            ValueError: `x` is not integer ids `[B, L]`, an id is outside the vocabulary, `L` needs more
                than `max_position_embeddings` positions, or `padding_mask` does not fit `x`.
        """
        self._check_ids(x, padding_mask)
        return self.embeddings(x), padding_mask

    def encode_tokens(
        self,
        tokens: Tensor,
        padding_mask: Tensor | None = None,
        mask: Tensor | None = None,
        keep_index: Tensor | None = None,
    ) -> Data2VecEncoding:
        """Run the blocks on `tokens[B, N, D]` (from `embed_tokens`), or only on `tokens[:, keep_index]`
        (`keep_index[B, K]`, data2vec 2.0: the kept tokens keep their position embeddings).

        Raises:
            ValueError: `mask` is given (text is masked on the ids), or `keep_index` is not `[B, K]` ids.
        """
        if mask is not None:
            raise ValueError(
                "Data2VecTextEncoder masks token ids, not embeddings: replace the masked ids by the <mask> "
                "id before embed_tokens and pass mask=None"
            )
        if keep_index is not None:
            if keep_index.ndim != 2 or keep_index.shape[0] != tokens.shape[0]:
                raise ValueError(
                    f"keep_index must be token indices [B={tokens.shape[0]}, K]; "
                    f"got shape {tuple(keep_index.shape)}"
                )
            tokens = tokens.gather(1, keep_index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
            if padding_mask is not None:
                padding_mask = padding_mask.gather(1, keep_index)
        x, ffn_outputs, block_outputs = tokens, [], []
        for layer in self.encoder.layer:
            x, ffn_output = layer(x, padding_mask)
            ffn_outputs.append(ffn_output)
            block_outputs.append(x)
        return Data2VecEncoding(x, ffn_outputs, block_outputs, padding_mask)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Token ids `[B, L]` -> (features `[B, L, D]`, `padding_mask` as given)."""
        encoding = self.encode_tokens(*self.embed_tokens(x, padding_mask))
        return encoding.output, encoding.padding_mask

    def hidden_states(self, x: Tensor, padding_mask: Tensor | None = None) -> list[Tensor]:
        """transformers' `hidden_states`: the embeddings output, then every block's output (L + 1 of
        `[B, L, D]`)."""
        tokens, padding_mask = self.embed_tokens(x, padding_mask)
        return [tokens, *self.encode_tokens(tokens, padding_mask).block_outputs]

    def pool(self, features: Tensor, padding_mask: Tensor | None) -> Tensor:
        """Mean of `features[B, L, D]` over the non-padded tokens -> `[B, D]` (see `pooler_output` for
        the CLS pooler)."""
        return masked_mean(features, padding_mask)

    def pooler_output(self, features: Tensor) -> Tensor:
        """transformers' `pooler_output` `[B, D]`: `tanh(pooler.dense(features[:, 0]))`."""
        return self.pooler(features)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm-style layer groups for layer-wise LR decay (`coarse` gives the same): the embeddings,
        then block i, then the pooler alone (unmatched, hence last, as a head is in BEiT's decay)."""
        return {"stem": r"^embeddings\.", "blocks": [(r"^encoder\.layer\.(\d+)\.", None)]}
