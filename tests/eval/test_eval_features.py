"""extract_features on a dummy embedding function and a real DataLoader."""

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from ssl_lightning.eval.features import FeatureSet, extract_features


class _Clips(Dataset):
    """n items following the batch contract; sub-clips 2k and 2k+1 belong to clip k."""

    def __init__(self, n: int, multi_label: bool = False) -> None:
        g = torch.Generator().manual_seed(0)
        self.audio = torch.randn(n, 32, generator=g)
        self.multi_label = multi_label
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        clip = i // 2
        label = torch.tensor([clip % 2, 1.0, 0.0]) if self.multi_label else torch.tensor(clip % 3)
        return {
            "audio": self.audio[i],
            "padding_mask": torch.zeros(32, dtype=torch.bool),
            "label": label,
            "clip_id": torch.tensor(clip),
        }


def _embed(batch: dict) -> torch.Tensor:
    """[B, 32] audio -> [B, 4] means of 4 chunks; checks it runs frozen."""
    assert torch.is_inference_mode_enabled()
    return batch["audio"].reshape(-1, 4, 8).mean(dim=-1).double()


def test_extract_features_collects_every_batch_in_order():
    data = _Clips(7)
    features = extract_features(_embed, DataLoader(data, batch_size=3), device="cpu", desc="test")
    assert isinstance(features, FeatureSet)
    assert features.features.dtype == torch.float32 and features.features.shape == (7, 4)
    torch.testing.assert_close(features.features, data.audio.reshape(7, 4, 8).mean(-1))
    assert features.clip_id.tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert features.labels.tolist() == [0, 0, 1, 1, 2, 2, 0]
    assert len(features) == 7 and features.num_clips == 4
    # Outside inference mode the cached features are normal tensors a probe can train on.
    assert not features.features.is_inference()
    weight = torch.ones(4, requires_grad=True)
    (features.features @ weight).sum().backward()
    torch.testing.assert_close(weight.grad, features.features.sum(0))
    with_bar = extract_features(_embed, DataLoader(data, batch_size=3), progress=True, desc="valid")
    assert torch.equal(with_bar.features, features.features)


def test_extract_features_keeps_multi_hot_labels():
    features = extract_features(_embed, DataLoader(_Clips(4, multi_label=True), batch_size=2))
    assert features.labels.shape == (4, 3) and features.labels.dtype == torch.float32
    assert features.labels[:, 1].tolist() == [1.0] * 4


def test_non_finite_embedding_names_the_batch():
    def embed_with_nan(batch: dict) -> torch.Tensor:
        out = _embed(batch)
        if batch["clip_id"][0] == 2:  # the third batch of size 2 starts at clip 2
            out[1, 0] = float("nan")
        return out

    with pytest.raises(ValueError, match=r"non-finite.*batch 2, rows \[1\] \(clip_id \[2\]\)"):
        extract_features(embed_with_nan, DataLoader(_Clips(8), batch_size=2))


def test_wrong_embedding_shape_and_bad_batches_raise():
    loader = DataLoader(_Clips(4), batch_size=2)
    with pytest.raises(ValueError, match=r"\[B, D\] with B=2 for batch 0, got \(2,\)"):
        extract_features(lambda b: b["audio"].mean(-1), loader)
    with pytest.raises(KeyError, match=r"batch 0 lacks key\(s\) \['clip_id'\]"):
        extract_features(_embed, [{"audio": torch.zeros(2, 32), "label": torch.zeros(2, dtype=torch.long)}])
    with pytest.raises(TypeError, match="batch 0 is a list"):
        extract_features(_embed, [[torch.zeros(2, 32)]])
    with pytest.raises(ValueError, match="yielded no batches"):
        extract_features(_embed, [])


def test_feature_set_checks_row_counts():
    with pytest.raises(ValueError, match="one label and one clip_id per feature row"):
        FeatureSet(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), torch.arange(3))
