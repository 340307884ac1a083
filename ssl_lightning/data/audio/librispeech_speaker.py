"""`LibriSpeechSpeakerDataModule`: DABS 1.0's LibriSpeech speaker task (`LibriSpeechTransfer`, DABS name
`librispeech_transfer`): which of the 40 speakers of LibriSpeech dev-clean speaks an utterance.

Layout: LibriSpeech's (see `LibriSpeechDataModule`; `root` is the `LibriSpeech` folder holding
`dev-clean/<speaker>/<chapter>/<speaker>-<chapter>-<utterance>.flac`, 16 kHz mono, 2,703 utterances).

From `src/datasets/speech/librispeech.py` at commit 7ee9a71:
- utterances in torchaudio `LIBRISPEECH` order (its `_walker`: the sorted file stems
  `<speaker>-<chapter>-<utterance>`);
- classes: the speaker ids (int of the stem's first field) sorted as numbers; the label is the index of
  the utterance's speaker among them (DABS asserts 40; here the speakers found are the classes, and
  `canonical` says whether they are dev-clean's 40);
- split (`train_test_split`): one `np.random.RandomState(42)`; for each speaker in that sorted order, the
  walker indices of its utterances are shuffled with it, the first `int(0.8 * n)` go to train and the rest
  to test; each split lists them speaker by speaker, as DABS.

DABS has no valid split: valid serves the test clips (`valid_is_test`). Through `DabsSpeechDataModule` use
`train_on_valid=False` (it refuses True for this source: training would read the test clips).
DABS's loader, on an unreadable file, silently serves the next utterance instead; here `on_error` applies.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule, Clip, check_splits
from ssl_lightning.data.audio.librispeech import LibriSpeechDataModule
from ssl_lightning.data.manifest import OnError

SPLIT_SEED = 42
TRAIN_FRACTION = 0.8
DEV_CLEAN_SPEAKERS = 40
"""`LibriSpeechTransfer.NUM_CLASSES`: the speakers of dev-clean."""
STEM = re.compile(r"(\d+)-(\d+)-(\d+)")
"""A LibriSpeech utterance id `<speaker>-<chapter>-<utterance>`."""


def speaker_split(speakers: np.ndarray) -> dict[str, list[int]]:
    """DABS's per-speaker 80/20 split of utterances whose speaker ids (walker order) are `speakers` [N]:
    the utterance indices of "train" and "test", speaker by speaker in sorted id order."""
    rs = np.random.RandomState(SPLIT_SEED)
    split: dict[str, list[int]] = {"train": [], "test": []}
    for speaker in np.unique(speakers):
        indices = np.flatnonzero(speakers == speaker)
        rs.shuffle(indices)
        cut = int(TRAIN_FRACTION * indices.size)
        split["train"] += indices[:cut].tolist()
        split["test"] += indices[cut:].tolist()
    return split


class LibriSpeechSpeakerDataModule(AudioClassificationDataModule):
    """Speaker identification on a LibriSpeech subset with DABS's split (see the module docstring).

    Clips are single-label (the speaker id), served at `sample_rate`. Training crops and evaluation
    sub-clips last `train_seconds` / `clip_seconds` (3 s, as the VoxCeleb1 task); `DabsSpeechDataModule`
    reads whole clips instead.

    Args:
        root: the `LibriSpeech` folder holding `subset`.
        subset: DABS: dev-clean.
        batch_size: clips (training) or sub-clips (evaluation) per batch (DABS: 64).
        num_workers, sample_rate, clip_seconds, train_seconds, on_error, seed: see
            `AudioClassificationDataModule`.
    """

    label_type = "single"
    valid_is_test = True
    """The valid split serves the test clips (DABS has none): never train or select on it."""

    def __init__(
        self,
        root: str,
        subset: str = "dev-clean",
        batch_size: int = 64,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        train_seconds: float | None = 3.0,
        on_error: OnError = "raise",
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds)
        self.save_hyperparameters()
        self.root, self.subset = Path(root).expanduser(), subset
        self._speakers: tuple[str, ...] | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """The speaker ids found, sorted as numbers (dev-clean: 40, from 84 to 8842)."""
        if self._speakers is None:
            self.setup()
        return self._speakers

    @property
    def canonical(self) -> bool:
        """DABS's task: the 40 speakers of dev-clean."""
        return self.subset == "dev-clean" and len(self.classes) == DEV_CLEAN_SPEAKERS

    @property
    def split_note(self) -> str:
        return (
            f"LibriSpeech {self.subset} ({len(self.classes)} speakers): DABS's per-speaker 80/20 split "
            f"(RandomState({SPLIT_SEED})); valid serves the test clips (DABS has no valid split)"
        )

    def read_splits(self) -> dict[str, list[Clip]]:
        """Train and test by DABS's split; valid is the test list.

        Raises:
            FileNotFoundError: no root or subset folder (the messages say where LibriSpeech comes from).
            ValueError: a `.flac` stem is not `<speaker>-<chapter>-<utterance>`, or a split has no clip.
        """
        listing = LibriSpeechDataModule(str(self.root), train_subsets=(self.subset,), valid_subset=None)
        files, sources = listing.list_splits()
        walker = sorted(files["train"], key=lambda path: path.stem)
        speakers = []
        for path in walker:
            match = STEM.fullmatch(path.stem)
            if match is None:
                raise ValueError(
                    f"{path}: LibriSpeech utterances are named <speaker>-<chapter>-<utterance>.flac "
                    "(e.g. 84-121123-0000.flac); move or remove this file"
                )
            speakers.append(int(match[1]))
        ids = np.array(speakers, dtype=np.int64)
        self._speakers = tuple(str(speaker) for speaker in np.unique(ids))
        split = speaker_split(ids)
        clips = {name: [(walker[i], (str(speakers[i]),)) for i in indices] for name, indices in split.items()}
        splits = {"train": clips["train"], "valid": clips["test"], "test": clips["test"]}
        held_out = f"the rest of each speaker's utterances in {sources['train']}"
        where = {"train": f"int(0.8 n) of each speaker's n utterances in {sources['train']}"}
        where |= {"valid": held_out, "test": held_out}
        check_splits(splits, where, f"LibriSpeech speaker task ({self.subset})")
        return splits
