"""`VoxForgeDataModule`: VoxForge spoken language identification (de, en, es, fr, it, ru), as TFDS builds it.

Layout (`voxforge/`: the submission archives of TFDS's URL list, fetched with `wget -i voxforge_urls.txt -x`,
so under `www.repository.voxforge1.org/downloads/` or straight under root):

    <root>/.../<lang>/Trunk/Audio/Main/16kHz_16bit/<user>-<yyyymmdd>-<id>.tgz   one submission: a folder
                                                   `<user>-<yyyymmdd>-<id>/` holding wav/*.wav and etc/
    <root>/.../<lang>/Trunk/Audio/Main/16kHz_16bit/<user>-<yyyymmdd>-<id>/     the same, extracted

`prepare_data()` extracts every archive not yet extracted into the folder of its name next to it (once;
unsafe member paths are refused). Each `*.wav` of a submission is a clip labelled with its language
folder; submissions dated 2020-01-01 or later are left out, as the TFDS release (voxforge 1.0.0) only
holds earlier ones (a name without a `-<yyyymmdd>-` date is kept).

Split (TFDS's, which HARES uses): the speaker of a submission is its name up to the first "-" (across
languages: `anonymous` is one speaker); the sorted speakers are shuffled by
`numpy.random.RandomState(split_seed)` and cut 70 / 10 / 20 % into train / valid / test with TFDS's
boundaries (`int(cumulative fraction * n)`, float sums included). With split_seed 0 and every archive of
the URL list under root this is HARES's split; the rule depends on the whole speaker list, so a partial
download gives another split. `split_file` reads a recorded split list file instead (`group_split.py`'s
format, which `write_split_file` writes).

Hugging Face: no public copy (`deepdml/voxforge` is per-language ASR data with other splits), so `HUB` is
None. `hub=` reads a copy of your own (in memory, a `save_to_disk` folder or a private hub id): columns
`language` (de, en, es, fr, it, ru), `speaker` (TFDS's: the submission name up to the first "-") and
`audio`, a row per wav of the release. With splits `train`, `valid` (or `validation`) and `test` those are
used (not canonical); otherwise every table is read as one and split by TFDS's rule over the speakers of its
rows (a submission without wavs, which the folder path still counts, is not there). Built from the download:

    import datasets
    from ssl_lightning.data.audio.voxforge import find_submissions
    wavs = [(s, w) for s in find_submissions(root) if s.in_release for w in sorted(s.folder.rglob("*.wav"))]
    table = datasets.Dataset.from_dict({"language": [s.language for s, _ in wavs], "speaker": [s.speaker for
        s, _ in wavs], "audio": [str(w) for _, w in wavs]}).cast_column("audio", datasets.Audio())
"""

from __future__ import annotations

import gzip
import re
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm.auto import tqdm

from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule, Clip, check_splits
from ssl_lightning.data.audio.group_split import SPLITS, SplitListWriter, assigned_clips, read_split_list
from ssl_lightning.data.audio.hub import (
    HubInput,
    HubSplit,
    hub_column,
    hub_split_tables,
    hub_splits_of,
    merged_table,
)
from ssl_lightning.data.manifest import OnError

LANGUAGES = ("de", "en", "es", "fr", "it", "ru")
"""TFDS's label order."""
ARCHIVE_FOLDER = "Trunk/Audio/Main/16kHz_16bit"
ARCHIVE_SUFFIX = ".tgz"
LAST_DATE = "20200101"
"""Submissions dated on or after this day are not in TFDS voxforge 1.0.0."""
SPLIT_FRACTIONS = (("train", 0.7), ("valid", 0.1), ("test", 0.2))
URL_LIST = "https://storage.googleapis.com/tfds-data/downloads/voxforge/voxforge_urls.txt"
DATE = re.compile(r"-(\d{8})(?:-|$)")


@dataclass(frozen=True)
class Submission:
    """One VoxForge submission: its folder (where its archive is extracted) and its language."""

    folder: Path
    language: str

    @property
    def speaker(self) -> str:
        """TFDS's speaker id: the submission name up to the first "-"."""
        return self.folder.name.split("-")[0]

    @property
    def archive(self) -> Path:
        return self.folder.parent / f"{self.folder.name}{ARCHIVE_SUFFIX}"

    @property
    def in_release(self) -> bool:
        """Whether the TFDS release holds it: dated before 2020-01-01, or undated."""
        date = DATE.search(self.folder.name)
        return date is None or date.group(1) < LAST_DATE


def language_of(path: PurePosixPath, where: str) -> str:
    """The language of a path relative to root: the folder just above `Trunk`.

    Raises:
        ValueError: the path has no `<lang>/Trunk` part or the language is not one of the six.
    """
    parts = path.parts
    trunk = parts.index("Trunk") if "Trunk" in parts else 0
    language = parts[trunk - 1] if trunk > 0 else None
    if language not in LANGUAGES:
        raise ValueError(
            f"{where}: expected a path <lang>/{ARCHIVE_FOLDER}/... with <lang> one of {list(LANGUAGES)} "
            f"(TFDS voxforge's languages), got {path}; move other languages' archives out of root"
        )
    return language


def find_submissions(root: Path) -> list[Submission]:
    """The submissions under `root` (archives and extracted folders, each once), sorted by path.

    Raises:
        FileNotFoundError: `root` holds no `<lang>/Trunk/Audio/Main/16kHz_16bit` folder.
        ValueError: such a folder is not one of the six languages.
    """
    folders = sorted(root.glob(f"**/{ARCHIVE_FOLDER}"))
    if not folders:
        raise FileNotFoundError(
            f"no <lang>/{ARCHIVE_FOLDER}/ folder under VoxForge root {root}. Download the archives of "
            f"{URL_LIST} with `wget -i voxforge_urls.txt -x` into it"
        )
    submissions = []
    for folder in folders:
        language = language_of(PurePosixPath(folder.relative_to(root).as_posix()), str(folder))
        names = {path.name.removesuffix(ARCHIVE_SUFFIX) for path in folder.glob(f"*{ARCHIVE_SUFFIX}")}
        names |= {path.name for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")}
        submissions += [Submission(folder / name, language) for name in sorted(names)]
    return submissions


def extract_submission(submission: Submission) -> None:
    """Extract `submission.archive` into `submission.folder`: through a hidden partial folder renamed at the
    end (an interrupted run leaves no half folder), keeping the archive's single top folder as the
    submission folder. The "data" filter refuses absolute paths, `..` and links out of the folder.

    Raises:
        ValueError: the archive is unreadable or holds an unsafe member (nothing is left behind).
    """
    partial = submission.folder.with_name(f".{submission.folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with tarfile.open(submission.archive) as archive:
            archive.extractall(partial, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(
            f"cannot extract VoxForge archive {submission.archive} ({error}); download it again (its URL "
            f"is in {URL_LIST}) or remove it"
        ) from error
    entries = list(partial.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else partial
    top.rename(submission.folder)
    if top != partial:
        partial.rmdir()


def tfds_speaker_splits(speakers: list[str], seed: int) -> dict[str, str]:
    """TFDS voxforge's split of the speakers (speaker -> split): sorted, shuffled by `RandomState(seed)`,
    split `i` taking positions int(c_{i-1} * n) .. int(c_i * n) with c_i the running float sum of the
    fractions (0.7, 0.7999999999999999, then n itself for the last)."""
    groups = sorted(set(speakers))
    np.random.RandomState(seed).shuffle(groups)
    assignment, total = {}, 0.0
    for index, (split, fraction) in enumerate(SPLIT_FRACTIONS):
        start = int(total * len(groups))
        total += fraction
        end = len(groups) if index == len(SPLIT_FRACTIONS) - 1 else int(total * len(groups))
        assignment |= dict.fromkeys(groups[start:end], split)
    return assignment


def hub_languages(table, where: str) -> list[str]:
    """The `language` column of a hub table, or a ValueError naming the values that are not TFDS's six."""
    languages = [str(language) for language in hub_column(table, "language", where)]
    unknown = sorted(set(languages) - set(LANGUAGES))
    if unknown:
        raise ValueError(f"{where}: language(s) {unknown[:5]} are none of TFDS voxforge's {list(LANGUAGES)}")
    return languages


class VoxForgeDataModule(SplitListWriter, AudioClassificationDataModule):
    """VoxForge 6-language identification with TFDS's speaker split (see the module docstring).

    Clips are single-label (the language), served at `sample_rate`. Training crops last `train_seconds`
    (HARES: 3 s); evaluation cuts each clip into contiguous sub-clips of `clip_seconds` (3 s), the last one
    zero-padded.

    Args:
        root: the folder holding the `<lang>/Trunk/Audio/Main/16kHz_16bit/` archive folders.
        split_file: a list file `<split>\\t<item id>` (item id: the wav path relative to root) to read the
            split from instead of TFDS's rule; it may name only wavs of the release under root, and wavs
            it does not list are left out.
        split_seed: seeds TFDS's speaker shuffle only (TFDS and HARES: 0); `seed` seeds the training
            shuffle, so changing it moves no clip between splits.
        hub: a copy of your own in `datasets` form instead of `root` (columns and splits in the module
            docstring; no public copy exists); see `AudioClassificationDataModule`.
    """

    classes = LANGUAGES
    """The six language codes, in TFDS's label order."""
    label_type = "single"

    def __init__(
        self,
        root: str | None = None,
        split_file: str | None = None,
        split_seed: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        train_seconds: float | None = 3.0,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds, hub
        )
        self.root = self.source_root(root, hub, f"the archives of {URL_LIST}")
        self.keep_split_source(split_file, split_seed)
        self.save_hyperparameters(ignore=["hub"])
        self._hub_own_splits = False

    @property
    def canonical(self) -> bool:
        """True for TFDS's rule with split_seed 0 (HARES's split when root or the hub copy holds the whole URL
        list)."""
        if self.hub is not None:
            self.setup()
        return self.split_file is None and self.split_seed == 0 and not self._hub_own_splits

    @property
    def split_note(self) -> str:
        if self.hub is not None:
            self.setup()
        if self._hub_own_splits:
            return "the train / valid / test splits of a hub copy; not checked against TFDS voxforge's split"
        if self.split_file is not None:
            return f"read from {self.split_file}; not checked against TFDS voxforge's split"
        return (
            f"TFDS voxforge 1.0.0 rule: speakers of the submissions before 2020-01-01, sorted, shuffled by "
            f"RandomState({self.split_seed}), 70/10/20{'' if self.hub is None else ' of a hub copy'}; "
            "HARES's split only with split_seed 0 and every archive of voxforge_urls.txt"
        )

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The copy's own train / valid / test tables, else its rows split by TFDS's speaker rule."""
        where = self.hub_where("VoxForge")
        named = hub_split_tables(tables, where)
        self._hub_own_splits = named is not None
        if named is None:
            table = merged_table(tables)
            languages = hub_languages(table, where)
            speakers = [str(speaker) for speaker in hub_column(table, "speaker", f"{where} (one table)")]
            speaker_splits = tfds_speaker_splits(speakers, self.split_seed)
            rows = {
                s: [row for row, speaker in enumerate(speakers) if speaker_splits[speaker] == s]
                for s in SPLITS
            }
            parts = {
                split: (table, rows[split], [(languages[row],) for row in rows[split]]) for split in SPLITS
            }
        else:
            parts = {
                split: (
                    table,
                    range(len(table)),
                    [(language,) for language in hub_languages(table, f"{where}[{split}]")],
                )
                for split, table in named.items()
            }
        return hub_splits_of(parts, audio_column, where)

    def _submissions(self) -> list[Submission]:
        """The submissions of the TFDS release under root."""
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"VoxForge root not found: {self.root}. Download the archives of {URL_LIST} with "
                "`wget -i voxforge_urls.txt -x` into it"
            )
        return [submission for submission in find_submissions(self.root) if submission.in_release]

    def prepare_data(self) -> None:
        """Extract every archive that is not extracted yet (once; a progress bar while it runs)."""
        if self.hub is not None:
            return
        pending = [s for s in self._submissions() if not s.folder.is_dir()]
        for submission in tqdm(
            pending, desc="extracting VoxForge archives", unit="archive", disable=not pending
        ):
            extract_submission(submission)

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split, from TFDS's rule or `split_file`; see the module docstring."""
        submissions = self._submissions()
        pending = [str(s.archive) for s in submissions if not s.folder.is_dir()]
        if pending:
            raise FileNotFoundError(
                f"{len(pending)} VoxForge archive(s) under {self.root} are not extracted, e.g. "
                f"{pending[:3]}: call prepare_data() first (Trainer.fit, validate and test do)"
            )
        submission_of = {
            wav.relative_to(self.root).as_posix(): submission
            for submission in submissions
            for wav in sorted(submission.folder.rglob("*.wav"))
        }
        if self.split_file is None:
            speaker_splits = tfds_speaker_splits([s.speaker for s in submissions], self.split_seed)
            assignment = {item: speaker_splits[s.speaker] for item, s in submission_of.items()}
            sources = {split: f"the speakers TFDS's rule puts in {split}" for split in SPLITS}
        else:
            assignment = read_split_list(self.split_file, submission_of)
            sources = dict.fromkeys(SPLITS, str(self.split_file))
        labels = {item: submission.language for item, submission in submission_of.items()}
        splits = assigned_clips(assignment, labels, self.root, self.on_error, f"VoxForge (root {self.root})")
        check_splits(splits, sources, f"VoxForge (root {self.root})")
        return splits
