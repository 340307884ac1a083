"""Complete encoders. Audio encoders follow one contract:
`forward(waveform[B, T], padding_mask[B, T] | None) -> (features[B, N, D], padding_mask[B, N] | None)`,
an `embed_dim` attribute, and optionally `pool(features, padding_mask) -> [B, D]` (mean by default).
"""

from ssl_lightning.backbones.beats import BEATsClassifier, BEATsConfig, BEATsEncoder, BEATsEncoderConfig
from ssl_lightning.backbones.byol_a import AudioNTT2020, ByolAEncoder
from ssl_lightning.backbones.cifar_resnet import CifarResNet, CifarResNetModel
from ssl_lightning.backbones.image import TimmImageEncoder
from ssl_lightning.backbones.slowfast_nfnet import SlowfastNFNet

__all__ = [
    "AudioNTT2020",
    "BEATsClassifier",
    "BEATsConfig",
    "BEATsEncoder",
    "BEATsEncoderConfig",
    "ByolAEncoder",
    "CifarResNet",
    "CifarResNetModel",
    "SlowfastNFNet",
    "TimmImageEncoder",
]
