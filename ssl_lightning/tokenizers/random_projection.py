"""BEATs iteration-1 cold-start tokenizer (Chen et al., ICML 2023, section 3.2.1): random projection.

Each 16x16 patch `x_t` of the normalised Kaldi fbank (256 values) is projected by a frozen random
matrix W to `W x_t` (codebook dim Q) and labelled with the index of the nearest vector of a frozen
random codebook V = {v_i}, i < K (eq. 1, squared Euclidean distance, no l2 normalisation, which the
paper applies only to the self-distilled tokenizer's eq. 2):

    z_t = argmin_i ||v_i - W x_t||_2^2

The fbank is the BEATs encoder's (`KaldiFbank` with the same defaults) and the patches are cut the way
the encoder's patch convolution cuts them (kernel = stride = patch size, time-major order
`index = time_patch * (128 // P) + freq_patch`), so label t belongs to the encoder's patch t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ssl_lightning.audio import KaldiFbank
from ssl_lightning.backbones.beats import check_audio_batch


class RandomProjectionTokenizer(nn.Module):
    """`waveform[B, T]` -> patch labels `[B, N]` in [0, codebook_size), with frozen random W and V.

    W (`projection`, `[Q, P * P]`) is Xavier-normal, N(0, 2 / (P * P + Q)), so `W x` keeps the scale of
    the patch values; V (`codebook`, `[K, Q]`) is N(0, 1 / Q), codewords of norm about 1. The scales
    matter because eq. 1 does not normalise: with N(0, 1) codewords (norm 16) `||v_i||^2` outweighs
    `v_i . W x` and a few short codewords take every patch (24 of 1024 codes used on 128 hares-mini pool
    clips, label perplexity 3.6, against 551 codes and perplexity 75 with N(0, 1 / Q)). Both are drawn
    from a generator seeded with `seed` and stored as buffers: in the state dict, never trained.

    Args:
        codebook_size: K (the paper: 1024).
        codebook_dim: Q (the paper: 256).
        patch_size: P, the side of the square fbank patches (the encoder's `input_patch_size`, 16).
        seed: seed of W and V.
    """

    def __init__(
        self, codebook_size: int = 1024, codebook_dim: int = 256, patch_size: int = 16, seed: int = 0
    ) -> None:
        super().__init__()
        for name, value in (
            ("codebook_size", codebook_size),
            ("codebook_dim", codebook_dim),
            ("patch_size", patch_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RandomProjectionTokenizer.{name} must be a positive int, got {value!r}")
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.patch_size = patch_size
        self.seed = seed
        self.fbank = KaldiFbank()
        if self.fbank.num_mel_bins % patch_size:
            raise ValueError(
                f"patch_size={patch_size} must divide the {self.fbank.num_mel_bins} mel bins of the fbank"
            )
        generator = torch.Generator().manual_seed(seed)
        patch_dim = patch_size * patch_size
        projection = torch.randn(codebook_dim, patch_dim, generator=generator)
        self.register_buffer("projection", projection * (2.0 / (patch_dim + codebook_dim)) ** 0.5)
        codebook = torch.randn(codebook_size, codebook_dim, generator=generator)
        self.register_buffer("codebook", codebook / codebook_dim**0.5)

    def project(self, fbank: Tensor) -> Tensor:
        """`W x_t` for every patch of `fbank[B, frames, mel]`: `[B, N, Q]`, time-major patch order.

        Trailing frames that do not fill a whole patch are dropped, as by the encoder's patch conv.
        """
        if fbank.dim() != 3 or fbank.shape[2] != self.fbank.num_mel_bins:
            raise ValueError(
                f"fbank must be [B, frames, {self.fbank.num_mel_bins}]; got {tuple(fbank.shape)}"
            )
        if fbank.shape[1] < self.patch_size:
            raise ValueError(
                f"{fbank.shape[1]} fbank frames are fewer than one {self.patch_size}-frame patch; pad clips "
                f"to at least {400 + 160 * (self.patch_size - 1)} samples"
            )
        kernel = rearrange(self.projection, "q (p r) -> q 1 p r", p=self.patch_size)
        projected = F.conv2d(fbank[:, None].to(kernel.dtype), kernel, stride=self.patch_size)
        return rearrange(projected, "b q t f -> b (t f) q")

    def quantize(self, projected: Tensor) -> Tensor:
        """Eq. 1: index of the nearest codeword, `[..., Q]` -> int64 `[...]`.

        `||v_i - Wx||^2 = ||v_i||^2 - 2 v_i . Wx + ||Wx||^2`; the last term is the same for every i.
        """
        distance = self.codebook.pow(2).sum(dim=-1) - 2.0 * projected @ self.codebook.T
        return distance.argmin(dim=-1)

    def labels_from_fbank(self, fbank: Tensor) -> Tensor:
        """Labels int64 `[B, N]` of the patches of a normalised fbank `[B, frames, mel]`."""
        return self.quantize(self.project(fbank))

    @torch.no_grad()
    def extract_labels(self, waveform: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Labels int64 `[B, N]` of `waveform[B, T]` (16 kHz, in [-1, 1]), in the encoder's patch order.

        Every patch is labelled on its own, so `padding_mask` (bool `[B, T]`, checked) changes no label:
        padded patches get labels too, and the masked-prediction loss leaves them out.
        """
        check_audio_batch(waveform, padding_mask)
        with torch.autocast(waveform.device.type, enabled=False):
            return self.labels_from_fbank(self.fbank(waveform.float()))

    def extra_repr(self) -> str:
        return (
            f"codebook_size={self.codebook_size}, codebook_dim={self.codebook_dim}, "
            f"patch_size={self.patch_size}, seed={self.seed}"
        )
