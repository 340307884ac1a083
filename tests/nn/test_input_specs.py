"""DABS input specs: token counts per kind and clear errors for inconsistent specs."""

import pytest

from ssl_lightning.nn.input_specs import InputSpec


def test_token_counts_per_kind():
    assert InputSpec("image", "2d", (224, 224), 16, 3).num_tokens == 14 * 14  # DABS natural images
    assert InputSpec("image", "2d", (32, 32), 4, 3).num_tokens == 8 * 8  # the `_small` variants
    assert InputSpec("sensor", "1d", 320, 5, 52).num_tokens == 64  # PAMAP2 windows in segments of 5
    assert InputSpec("input_ids", "tokens", 128, vocab_size=30522).num_tokens == 128
    assert InputSpec("image", "2d", [64, 32], 16).size == (64, 32)  # a YAML list becomes a tuple


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "3d", "size": 8}, "kind must be"),
        ({"kind": "tokens", "size": 8}, "vocab_size"),
        ({"kind": "1d", "size": 8, "vocab_size": 5}, "vocab_size"),
        ({"kind": "2d", "size": 32, "patch_size": 4}, r"size is \(H, W\)"),
        ({"kind": "1d", "size": 321, "patch_size": 5}, "not a multiple of patch_size 5"),
        ({"kind": "2d", "size": (30, 32), "patch_size": 4}, "not a multiple"),
    ],
)
def test_inconsistent_specs_name_the_input(kwargs, message):
    with pytest.raises(ValueError, match=f"InputSpec 'x'.*{message}"):
        InputSpec("x", **kwargs)
