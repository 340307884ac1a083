"""Complete encoders. Audio encoders follow one contract:
`forward(waveform[B, T], padding_mask[B, T] | None) -> (features[B, N, D], padding_mask[B, N] | None)`,
an `embed_dim` attribute, and optionally `pool(features, padding_mask) -> [B, D]` (mean by default).
Image encoders take `[B, C, H, W]` and text encoders token ids `[B, L]` in place of the waveform.
The data2vec encoders also read and write Hugging Face transformers directories.
"""

from ssl_lightning.backbones.beats import BEATsClassifier, BEATsConfig, BEATsEncoder, BEATsEncoderConfig
from ssl_lightning.backbones.byol_a import AudioNTT2020, ByolAEncoder
from ssl_lightning.backbones.cifar_resnet import CifarResNet, CifarResNetModel
from ssl_lightning.backbones.dabs import DabsTransformer
from ssl_lightning.backbones.data2vec_audio import Data2VecAudioConfig, Data2VecAudioEncoder
from ssl_lightning.backbones.data2vec_spectrogram import Data2VecSpectrogramConfig, Data2VecSpectrogramEncoder
from ssl_lightning.backbones.data2vec_text import Data2VecTextConfig, Data2VecTextEncoder
from ssl_lightning.backbones.data2vec_vision import Data2VecVisionConfig, Data2VecVisionEncoder
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
    "DabsTransformer",
    "Data2VecAudioConfig",
    "Data2VecAudioEncoder",
    "Data2VecSpectrogramConfig",
    "Data2VecSpectrogramEncoder",
    "Data2VecTextConfig",
    "Data2VecTextEncoder",
    "Data2VecVisionConfig",
    "Data2VecVisionEncoder",
    "SlowfastNFNet",
    "TimmImageEncoder",
]
