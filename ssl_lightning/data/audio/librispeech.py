"""`LibriSpeechDataModule`: unlabeled LibriSpeech speech for pre-training (wav2vec 2.0 / data2vec's 960 h).

Layout of the unpacked archives of openslr.org/12 (`<subset>.tar.gz` unpacks into `LibriSpeech/<subset>/`;
`root` is that `LibriSpeech` folder):

    <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utterance>.flac   16 kHz mono, up to ~35 s
    <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt           `<utterance id> <TEXT>` lines

Subsets: train-clean-100, train-clean-360, train-other-500 (together the 960 h of data2vec's audio
pre-training), dev-clean, dev-other, test-clean, test-other. Transcripts are not read: pre-training is
unlabeled. Crops and batches are `UnlabeledAudioDataModule`'s (folder.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssl_lightning.data.audio.folder import UnlabeledAudioDataModule

TRAIN_960H = ("train-clean-100", "train-clean-360", "train-other-500")
DOWNLOAD = "https://www.openslr.org/12"


class LibriSpeechDataModule(UnlabeledAudioDataModule):
    """The utterances of LibriSpeech subsets; see the module docstring and `UnlabeledAudioDataModule`.

    Args:
        root: the `LibriSpeech` folder holding the subset folders.
        train_subsets: subsets trained on (default the 960 h).
        valid_subset: subset validated on (None: no valid split; fairseq's data2vec recipe validates none).
        kwargs: the crop and loader arguments of `UnlabeledAudioDataModule`.
    """

    def __init__(
        self,
        root: str,
        train_subsets: Sequence[str] = TRAIN_960H,
        valid_subset: str | None = "dev-clean",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(train_subsets, str) or not train_subsets:
            raise ValueError(
                f"LibriSpeechDataModule: train_subsets must be a non-empty list of subset names, got "
                f"{train_subsets!r}"
            )
        self.root = Path(root).expanduser()
        self.train_subsets, self.valid_subset = tuple(train_subsets), valid_subset

    def subset_files(self, subset: str) -> list[Path]:
        """The `.flac` utterances of `subset`, sorted.

        Raises:
            FileNotFoundError: the subset folder is missing (the message says where to get it).
        """
        folder = self.root / subset
        if folder.is_dir():
            return sorted(folder.glob("*/*/*.flac"))
        hint = ""
        if (self.root / "LibriSpeech" / subset).is_dir():
            hint = f" ({self.root / 'LibriSpeech' / subset} exists: pass root={self.root / 'LibriSpeech'})"
        raise FileNotFoundError(
            f"LibriSpeech subset folder not found: {folder}{hint}. Download {subset}.tar.gz from {DOWNLOAD} "
            f"and unpack it; it unpacks into LibriSpeech/{subset}/, and root is that LibriSpeech folder"
        )

    def list_splits(self) -> tuple[dict[str, list[Path]], dict[str, str]]:
        """Train: the utterances of `train_subsets`; valid: those of `valid_subset`."""
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"LibriSpeech root not found: {self.root}. Download the subsets from {DOWNLOAD} and unpack "
                "them; root is the LibriSpeech folder they unpack into"
            )
        subsets = {"train": self.train_subsets}
        subsets |= {} if self.valid_subset is None else {"valid": (self.valid_subset,)}
        files = {
            split: [path for name in names for path in self.subset_files(name)]
            for split, names in subsets.items()
        }
        sources = {
            split: "the <speaker>/<chapter>/*.flac files of "
            + ", ".join(str(self.root / name) for name in names)
            for split, names in subsets.items()
        }
        return files, sources
