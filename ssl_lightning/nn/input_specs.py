"""DABS input specs (Tamkin et al. 2021): what one input of a domain-agnostic model looks like, so that an
embedding module can be built from it alone. A batch holds each input under the spec's `name`.

- `tokens`: int64 ids `[B, size]` from a vocabulary of `vocab_size`; one token each.
- `1d`: float `[B, size, in_channels]` (time, channels); segments of `patch_size` steps, one token each.
- `2d`: float `[B, in_channels, H, W]` with `size = (H, W)`; non-overlapping `patch_size` x `patch_size`
  patches, one token each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["tokens", "1d", "2d"]


@dataclass(frozen=True)
class InputSpec:
    """One input of a domain: its batch key `name`, `kind`, `size` (tokens: length; 1d: time steps; 2d:
    (H, W)), `patch_size` (1d: segment length; 2d: patch side), `in_channels`, and `vocab_size` for tokens."""

    name: str
    kind: Kind
    size: int | tuple[int, int]
    patch_size: int = 1
    in_channels: int = 1
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        where = f"InputSpec {self.name!r}"
        if self.kind not in ("tokens", "1d", "2d"):
            raise ValueError(f"{where}: kind must be 'tokens', '1d' or '2d', got {self.kind!r}")
        if (self.kind == "tokens") != (self.vocab_size is not None):
            raise ValueError(f"{where}: vocab_size is for (and required by) kind 'tokens'")
        if self.kind == "2d":
            if not (isinstance(self.size, tuple | list) and len(self.size) == 2):
                raise ValueError(f"{where}: a 2d input's size is (H, W), got {self.size!r}")
            object.__setattr__(self, "size", tuple(self.size))
        elif not isinstance(self.size, int):
            raise ValueError(f"{where}: a {self.kind} input's size is an int, got {self.size!r}")
        sides = self.size if isinstance(self.size, tuple) else (self.size,)
        if self.kind != "tokens" and any(side % self.patch_size for side in sides):
            raise ValueError(f"{where}: size {self.size} is not a multiple of patch_size {self.patch_size}")

    @property
    def num_tokens(self) -> int:
        """Tokens this input contributes: length, segments, or patches."""
        if self.kind == "tokens":
            return self.size
        if self.kind == "1d":
            return self.size // self.patch_size
        return (self.size[0] // self.patch_size) * (self.size[1] // self.patch_size)
