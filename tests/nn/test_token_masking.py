"""Token masking for data2vec text (fairseq MaskTokensDataset semantics): span counts and positions, the
80/10/10 corruption, specials and padding, seeds; expectations worked out by hand or by exact counting."""

from __future__ import annotations

from math import comb

import pytest
import torch

from ssl_lightning.nn.token_masking import token_mask

BOS, PAD, EOS, MASK = 0, 1, 2, 3
SPECIALS = (BOS, PAD, EOS, MASK)
VOCAB = 50


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sentences(rows: int, words: int, seed: int = 0, pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`<s> w_1 .. w_words </s>` then `pad` padding tokens per row (words uniform in 4..VOCAB-1)."""
    ids = torch.randint(4, VOCAB, (rows, words + 2 + pad), generator=gen(seed))
    ids[:, 0], ids[:, words + 1] = BOS, EOS
    ids[:, words + 2 :] = PAD
    padding = torch.zeros_like(ids, dtype=torch.bool)
    padding[:, words + 2 :] = True
    return ids, padding


def test_the_span_count_is_the_floored_share_plus_a_uniform():
    """20 words, p=0.2, spans of 1: n = int(4.0 + U) = 4 selected, never <s>, </s> or padding."""
    ids, padding = sentences(64, 20, pad=5)
    masked, mask = token_mask(ids, MASK, VOCAB, 0.2, 1, 0.0, 0.0, SPECIALS, padding, gen(1))
    assert mask.dtype == torch.bool and masked.dtype == torch.int64
    assert mask.sum(dim=1).tolist() == [4] * 64
    assert not mask[:, 0].any() and not mask[:, 21:].any()


def test_a_span_start_is_uniform_over_the_maskable_tokens_and_clipped_before_eos():
    """20 words, p=0.2, spans of 4: n = int(1.0 + U) = 1 start, uniform on positions 1..20; position t is
    selected when the start lies in [t-3, t]: 1/20, 2/20, 3/20, then 4/20; </s> (21) never."""
    ids, _ = sentences(6000, 20, seed=2)
    _, mask = token_mask(ids, MASK, VOCAB, 0.2, 4, 0.0, 0.0, SPECIALS, None, gen(3))
    expected = torch.tensor([0.0, 1, 2, 3] + [4] * 17 + [0]) / 20
    assert torch.allclose(mask.float().mean(dim=0), expected, atol=0.015)


def test_official_text_setting_replaces_every_selected_token_by_mask():
    """0.35, spans of 4, random 0, leave 0, 512 words: n = int(44.8 + U) is 44 (20%) or 45 (80%) starts
    among 512; a word stays unselected when none of the c_t starts covering it is drawn, with probability
    C(512 - c_t, n) / C(512, n)."""
    ids, _ = sentences(300, 512, seed=4)
    masked, mask = token_mask(ids, MASK, VOCAB, 0.35, 4, 0.0, 0.0, SPECIALS, None, gen(5))
    assert torch.equal(masked == MASK, mask)
    assert torch.equal(masked[~mask], ids[~mask])
    expected = 0.0
    for n, share in ((44, 0.2), (45, 0.8)):
        for t in range(1, 513):
            covering = len(range(max(1, t - 3), t + 1))
            expected += share * (1 - comb(512 - covering, n) / comb(512, n)) / 512
    assert mask[:, 1:513].float().mean().item() == pytest.approx(expected, abs=0.005)


def test_bert_corruption_is_80_10_10_among_the_selected():
    """Of the selected tokens 80% become <mask>, 10% a random non-special token (1/46 of which equals the
    original), 10% stay; unselected tokens never change."""
    ids, padding = sentences(400, 100, seed=6, pad=10)
    masked, mask = token_mask(ids, MASK, VOCAB, 0.15, 1, 0.1, 0.1, SPECIALS, padding, gen(7))
    selected, originals = masked[mask], ids[mask]
    assert torch.equal(masked[~mask], ids[~mask])
    to_mask = (selected == MASK).float().mean().item()
    unchanged = (selected == originals).float().mean().item()
    assert to_mask == pytest.approx(0.8, abs=0.01)
    assert unchanged == pytest.approx(0.1 + 0.1 / 46, abs=0.01)
    randomised = selected[(selected != MASK) & (selected != originals)]
    assert randomised.numel() > 0 and randomised.min() >= 4  # never <s>, <pad>, </s> or <mask>


def test_random_tokens_are_uniform_over_the_non_special_ids():
    ids, _ = sentences(200, 100, seed=8)
    masked, mask = token_mask(ids, MASK, VOCAB, 0.5, 1, 1.0, 0.0, SPECIALS, None, gen(9))
    drawn = masked[mask]
    assert drawn.min() >= 4
    frequency = torch.bincount(drawn, minlength=VOCAB)[4:].float() / drawn.numel()
    assert torch.allclose(frequency, torch.full((46,), 1 / 46), atol=0.006)


def test_leave_only_and_random_only_shares():
    ids, _ = sentences(200, 100, seed=8)
    masked, mask = token_mask(ids, MASK, VOCAB, 0.15, 1, 0.0, 0.3, SPECIALS, None, gen(9))
    assert not ((masked != ids) & (masked != MASK)).any()  # no random tokens
    assert (masked[mask] == ids[mask]).float().mean().item() == pytest.approx(0.3, abs=0.02)
    masked, mask = token_mask(ids, MASK, VOCAB, 0.15, 1, 0.3, 0.0, SPECIALS, None, gen(9))
    assert (masked[mask] == MASK).float().mean().item() == pytest.approx(0.7, abs=0.02)


def test_token_mask_is_reproducible_from_its_generator():
    ids, _ = sentences(4, 60, seed=10)
    torch.manual_seed(0)
    first = token_mask(ids, MASK, VOCAB, special_ids=SPECIALS, generator=gen(11))
    torch.manual_seed(1)
    again = token_mask(ids, MASK, VOCAB, special_ids=SPECIALS, generator=gen(11))
    other = token_mask(ids, MASK, VOCAB, special_ids=SPECIALS, generator=gen(12))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mask_prob": 0.0}, "need 0 < mask_prob < 1"),
        ({"random_token_prob": 0.6, "leave_unmasked_prob": 0.5}, "with a sum <= 1"),
        ({"mask_token_id": VOCAB}, r"mask_token_id=50 is outside the vocabulary \[0, 50\)"),
        ({"padding_mask": torch.zeros(2, 5, dtype=torch.bool)}, r"padding_mask must be a bool tensor"),
        ({"input_ids": torch.zeros(2, 12)}, r"input_ids must be int64 \[B, L\]"),
        ({"vocab_size": 4}, "needs a non-special token, but all 4 ids are special"),
    ],
)
def test_token_mask_rejects_bad_arguments(kwargs, match):
    ids, _ = sentences(2, 10)
    args = {"input_ids": ids, "mask_token_id": MASK, "vocab_size": VOCAB, "special_ids": SPECIALS} | kwargs
    with pytest.raises(ValueError, match=match):
        token_mask(**args)
