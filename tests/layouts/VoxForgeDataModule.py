"""Tiny copy of the VoxForge layout TFDS reads (`voxforge/`): submission archives
`<lang>/Trunk/Audio/Main/16kHz_16bit/<user>-<yyyymmdd>-<id>.tgz`, each holding `<user>-<yyyymmdd>-<id>/`
with `etc/README`, `etc/PROMPTS` and `wav/a0001.wav`, `wav/a0002.wav` (`prefix` puts the language folders
under `www.repository.voxforge1.org/downloads/`, as `wget -x` saves them).

20 speakers in the release (TFDS's rule cuts 20 speakers 14 / 1 / 5): `anonymous` submits in de and en,
19 others once each, languages in turn. `FLAC_ONLY` holds `flac/a0001.flac` only (a speaker with no wav
clip); `EXTRACTED` is there as its extracted folder only (no archive); `LATE` is dated 2020 (not in the
release). Wav 1 lasts 0.5 s; wav 2 lasts 0.5, 3, 4 or 7 s in turn (1, 1, 2 or 3 sub-clips of 3 s). Audio is
16 kHz mono tones (the real files: 16 kHz speech).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
LANGUAGES = ("de", "en", "es", "fr", "it", "ru")
USERS = ("Aaron", "bkerr", "camilo", "delibes", "elena", "fabio", "gerd", "hans", "ivan", "julia")
USERS += ("kolya", "laure", "marco", "nadia", "olga", "pablo", "quentin", "rosa", "sven")
SUBMISSIONS = (
    ("de", "anonymous-20080504-qvg"),
    ("en", "anonymous-20100621-ycx"),
    *(
        (LANGUAGES[i % 6], f"{user}-{2007 + i % 13}{1 + i % 12:02d}{1 + i:02d}-abc")
        for i, user in enumerate(USERS)
    ),
)
"""(language, name) of the release's submissions."""
LATE = ("fr", "zoe-20200102-xyz")
FLAC_ONLY = SUBMISSIONS[6][1]
"""elena-20110505-abc: flac only."""
EXTRACTED = SUBMISSIONS[9][1]
"""hans-20140808-abc: extracted, no archive."""
WAV_SECONDS = (0.5, 3.0, 4.0, 7.0)
ARCHIVE_FOLDER = Path("Trunk/Audio/Main/16kHz_16bit")


def _wav(seconds: float, frequency: float) -> bytes:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    buffer = io.BytesIO()
    soundfile.write(
        buffer, 0.3 * np.sin(2 * np.pi * frequency * t), SAMPLE_RATE, format="WAV", subtype="PCM_16"
    )
    return buffer.getvalue()


def submission_files(name: str, index: int) -> dict[str, bytes]:
    """The files of submission `name` (the `index`-th), by path inside its archive."""
    files = {f"{name}/etc/README": b"User Name:anonymous\n", f"{name}/etc/PROMPTS": b"a0001 HELLO\n"}
    if name == FLAC_ONLY:
        return {**files, f"{name}/flac/a0001.flac": b"fLaC"}
    wavs = {"a0001.wav": 0.5, "a0002.wav": WAV_SECONDS[index % len(WAV_SECONDS)]}
    return {**files, **{f"{name}/wav/{wav}": _wav(s, 200 + 20 * index) for wav, s in wavs.items()}}


def write_archive(path: Path, files: dict[str, bytes]) -> None:
    """A gzip'd tar at `path` holding `files` (member path -> bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def write_voxforge(root: Path, prefix: str = "") -> Path:
    """Write the layout under `root` (language folders under `root / prefix`) and return `root`."""
    root = Path(root)
    for index, (language, name) in enumerate([*SUBMISSIONS, LATE]):
        folder = root / prefix / language / ARCHIVE_FOLDER
        files = submission_files(name, index)
        if name != EXTRACTED:
            write_archive(folder / f"{name}.tgz", files)
            continue
        for member, data in files.items():
            (folder / member).parent.mkdir(parents=True, exist_ok=True)
            (folder / member).write_bytes(data)
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_voxforge(Path(root) / "voxforge")), "batch_size": 4, "num_workers": 0}
