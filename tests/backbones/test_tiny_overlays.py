"""The tiny overlays of the new encoders build small models through jsonargparse, as recipe tests do."""

from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from torch import nn

TINY = Path(__file__).resolve().parents[2] / "recipes" / "overlays" / "tiny"


def build(class_path: str) -> nn.Module:
    overlay = yaml.safe_load((TINY / f"{class_path.rpartition('.')[2]}.yaml").read_text())
    init_args = overlay["model"]["init_args"]["encoder"]["init_args"]
    parser = ArgumentParser()
    parser.add_argument("--encoder", type=nn.Module)
    config = parser.parse_object({"encoder": {"class_path": class_path, "init_args": init_args}})
    return parser.instantiate(config).encoder


@pytest.mark.parametrize(
    ("class_path", "inputs", "max_params"),
    [
        ("ssl_lightning.backbones.CifarResNet", torch.randn(2, 3, 32, 32), 20_000),
        ("ssl_lightning.backbones.SlowfastNFNet", torch.randn(2, 8000), 400_000),
    ],
    ids=["CifarResNet", "SlowfastNFNet"],
)
def test_tiny_overlay_builds_a_small_working_encoder(class_path, inputs, max_params):
    encoder = build(class_path).eval()
    assert sum(p.numel() for p in encoder.parameters()) < max_params
    features, _ = encoder(inputs, None)
    assert features.shape[0] == 2 and features.shape[-1] == encoder.embed_dim
