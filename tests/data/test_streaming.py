"""Tests for LitData sharding (`shard_audio`) and `StreamingAudioDataModule`: round trip, bad files,
splitting across 2 ranks x 2 workers, and mid-epoch resumption (loader state and `Trainer.fit`)."""

from __future__ import annotations

import csv
import multiprocessing
import socket
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile
import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp
from lightning.pytorch.callbacks import ModelCheckpoint

from ssl_lightning.audio import AudioDecodeError, load_audio
from ssl_lightning.data.sharding import main, shard_audio
from ssl_lightning.data.streaming import ShardItemToClip, StreamingAudioDataModule

SR = 16000
NUM_UNIFORM = 16  # equal clips of 800 samples, 2 per chunk: 8 chunks split evenly over 2 ranks x 2 workers
UNIFORM_CHUNK_BYTES = 4000


def ramp(num_samples: int, offset: int = 0) -> np.ndarray:
    """Sample i is ((i + offset) mod 1000) / 2000: every window of a clip is easy to locate."""
    return (((np.arange(num_samples) + offset) % 1000) / 2000.0).astype(np.float32)


def clip_paths(shard_dir: Path) -> dict[int, Path]:
    """clip_id -> source path, from the clips.csv that shard_audio writes."""
    with open(shard_dir / "clips.csv", newline="") as handle:
        return {int(row["clip_id"]): Path(row["path"]) for row in csv.DictReader(handle)}


def streamed_clips(dataset) -> dict[int, dict]:
    """clip_id -> item, iterating a StreamingDataset in this process."""
    return {int(item["clip_id"]): item for item in dataset}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, Path]:
    """Six clips in nested folders (wav, flac, ogg; 16 kHz, 44.1 kHz, stereo, a too-long and a too-loud one),
    sharded with max_seconds=0.4: returns (input folder, shard folder)."""
    root = tmp_path_factory.mktemp("mixed")
    source = root / "in"
    (source / "sub").mkdir(parents=True)
    soundfile.write(source / "a.wav", ramp(4800), SR, subtype="PCM_16")
    soundfile.write(source / "sub" / "b.flac", ramp(800, 300), SR, subtype="PCM_16")
    soundfile.write(source / "c.wav", ramp(8820, 500), 44100, subtype="PCM_16")
    soundfile.write(source / "d.ogg", np.stack([ramp(3200), ramp(3200, 100)], axis=1), SR)
    soundfile.write(source / "long.wav", ramp(8000, 700), SR, subtype="PCM_16")
    soundfile.write(source / "loud.wav", 3.0 * ramp(2000), SR, subtype="FLOAT")
    report = shard_audio(source, root / "shards", max_seconds=0.4, chunk_bytes="8KB")
    assert (report.num_listed, report.num_written, report.num_truncated, report.num_clipped) == (6, 6, 1, 1)
    assert report.skipped == ()
    return source, root / "shards"


@pytest.fixture(scope="module")
def uniform(tmp_path_factory) -> Path:
    """NUM_UNIFORM clips of 800 samples (clip k is the int16 constant 100 k) in 8 chunks of 2: the shards."""
    root = tmp_path_factory.mktemp("uniform")
    (root / "in").mkdir()
    for k in range(NUM_UNIFORM):
        soundfile.write(root / "in" / f"{k:02d}.wav", np.full(800, 100 * k, np.int16), SR)
    shard_audio(root / "in", root / "shards", max_seconds=None, chunk_bytes=UNIFORM_CHUNK_BYTES)
    return root / "shards"


def test_whole_clips_round_trip_to_the_decoded_source(mixed):
    source, shards = mixed
    dm = StreamingAudioDataModule(str(shards), val_dir=str(shards), clip_seconds=None, num_workers=0)
    dm.setup("validate")
    items = streamed_clips(dm.val_dataset)
    paths = clip_paths(shards)
    assert sorted(p.relative_to(source).as_posix() for p in paths.values()) == [
        "a.wav",
        "c.wav",
        "d.ogg",
        "long.wav",
        "loud.wav",
        "sub/b.flac",
    ]
    assert sorted(items) == list(range(6))
    for clip_id, item in items.items():
        expected = load_audio(paths[clip_id], SR)[: int(0.4 * SR)].clamp(-1.0, 32767 / 32768)
        assert item["audio"].dtype == torch.float32 and not item["padding_mask"].any()
        torch.testing.assert_close(item["audio"], expected, atol=0.5 / 32768, rtol=0)
    by_name = {paths[clip_id].name: item["audio"] for clip_id, item in items.items()}
    assert torch.equal(by_name["a.wav"], load_audio(source / "a.wav"))  # 16-bit at 16 kHz: bit-exact
    assert by_name["c.wav"].shape == (3200,)  # 8820 samples at 44.1 kHz -> 3200 at 16 kHz
    assert by_name["long.wav"].shape == (6400,)  # truncated to max_seconds
    assert by_name["loud.wav"].max() == 32767 / 32768  # clipped, and counted in the report


def test_training_items_are_random_windows_of_the_source_or_padded(mixed):
    source, shards = mixed
    dm = StreamingAudioDataModule(str(shards), batch_size=3, clip_seconds=0.1, num_workers=0, drop_last=False)
    dm.setup("fit")
    paths = clip_paths(shards)
    offsets = []
    for _ in range(3):
        for batch in dm.train_dataloader():
            assert batch["audio"].shape == batch["padding_mask"].shape == (len(batch["clip_id"]), 1600)
            assert batch["audio"].dtype == torch.float32 and batch["clip_id"].dtype == torch.int64
            for audio, mask, clip_id in zip(
                batch["audio"], batch["padding_mask"], batch["clip_id"], strict=True
            ):
                full = load_audio(paths[int(clip_id)], SR)[:6400].clamp(-1.0, 32767 / 32768)
                if full.shape[0] < 1600:
                    length = full.shape[0]
                    torch.testing.assert_close(audio[:length], full, atol=0.5 / 32768, rtol=0)
                    assert not mask[:length].any() and mask[length:].all() and not audio[length:].any()
                    continue
                assert not mask.any()
                windows = full.unfold(0, 1600, 1)
                matches = ((windows - audio).abs() <= 0.5 / 32768).all(dim=1).nonzero()
                assert len(matches) >= 1, f"item of clip {int(clip_id)} is no window of its source"
                offsets.append(int(matches[0]))
    assert any(offsets), "every crop started at offset 0: the crops are not random"


def test_epochs_cover_every_clip_once_in_a_new_order(uniform):
    dm = StreamingAudioDataModule(str(uniform), batch_size=4, clip_seconds=0.05, num_workers=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    orders = [torch.cat([batch["clip_id"] for batch in loader]).tolist() for _ in range(2)]
    assert [sorted(order) for order in orders] == [list(range(NUM_UNIFORM))] * 2
    assert orders[0] != orders[1]
    first = next(iter(loader))
    expected = (first["clip_id"][:, None] * 100 / 32768).expand(-1, 800)  # clip k: int16 constant 100 k
    assert torch.equal(first["audio"], expected.float())


def test_manifest_split_labels_and_clip_ids(tmp_path):
    for name in ("x", "y", "z", "t"):
        soundfile.write(tmp_path / f"{name}.wav", ramp(400), SR, subtype="PCM_16")
    (tmp_path / "manifest.csv").write_text(
        "path,split,label\nx.wav,train,a;c\nt.wav,test,b\ny.wav,train,b\nz.wav,train,\n"
    )
    report = shard_audio(tmp_path / "manifest.csv", tmp_path / "shards", split="train")
    assert (report.num_listed, report.num_written) == (3, 3)
    with open(tmp_path / "shards" / "clips.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["clip_id", "path", "label"],
            ["0", str(tmp_path / "x.wav"), "a;c"],
            ["1", str(tmp_path / "y.wav"), "b"],
            ["2", str(tmp_path / "z.wav"), ""],
        ]
    dm = StreamingAudioDataModule(
        str(tmp_path / "shards"), val_dir=str(tmp_path / "shards"), classes=["a", "b", "c"], num_workers=0
    )
    dm.setup("validate")
    labels = {clip_id: item["label"].tolist() for clip_id, item in streamed_clips(dm.val_dataset).items()}
    assert labels == {0: [1.0, 0.0, 1.0], 1: [0.0, 1.0, 0.0], 2: [0.0, 0.0, 0.0]}


def test_single_labels_and_label_errors():
    item = {"audio": np.array([16384, -32768, 0], dtype=np.int16), "clip_id": 7, "label": "b"}
    clip = ShardItemToClip(None, "start", ["a", "b"], "single")(item)
    assert clip["label"].item() == 1 and clip["label"].dtype == torch.int64
    assert clip["audio"].tolist() == [0.5, -1.0, 0.0] and clip["clip_id"].item() == 7
    with pytest.raises(ValueError, match=r"clip 7 .*exactly one"):
        ShardItemToClip(None, "start", ["a", "b"], "single")(item | {"label": "a;b"})
    with pytest.raises(ValueError, match=r"clip 7 .*unknown \['q'\]"):
        ShardItemToClip(None, "start", ["a", "b"], "multi")(item | {"label": "q"})
    with pytest.raises(KeyError, match="clip 7 has no label"):
        ShardItemToClip(None, "start", ["a", "b"], "multi")({"audio": item["audio"], "clip_id": 7})


@pytest.fixture
def with_corrupt_file(tmp_path) -> Path:
    """Three readable wavs and `bad.wav`, which is not audio."""
    for k in range(3):
        soundfile.write(tmp_path / f"{k}.wav", ramp(400, k), SR, subtype="PCM_16")
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not audio")
    return tmp_path


def test_corrupt_file_raises_naming_it(with_corrupt_file, tmp_path_factory):
    with pytest.raises(AudioDecodeError, match=r"bad\.wav.*on_error='skip'"):
        shard_audio(with_corrupt_file, tmp_path_factory.mktemp("out") / "shards")


def test_corrupt_file_is_skipped_and_listed(with_corrupt_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "shards"
    report = shard_audio(with_corrupt_file, out, on_error="skip")
    assert (report.num_listed, report.num_written) == (4, 3)
    assert [path for path, _ in report.skipped] == [with_corrupt_file / "bad.wav"]
    assert (out / "skipped.txt").read_text().startswith(f"{with_corrupt_file / 'bad.wav'}\tcannot decode")
    dm = StreamingAudioDataModule(str(out), val_dir=str(out), num_workers=0)
    dm.setup("validate")
    paths = clip_paths(out)
    assert sorted(paths[clip_id].name for clip_id in streamed_clips(dm.val_dataset)) == [
        "0.wav",
        "1.wav",
        "2.wav",
    ]


def test_only_unreadable_files_raise_and_leave_no_shards(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.flac").write_bytes(b"fLaC....")
    with pytest.raises(ValueError, match=r"all 1 files .* unreadable, e\.g\. .*bad\.flac"):
        shard_audio(tmp_path / "in", tmp_path / "shards", on_error="skip")
    assert not (tmp_path / "shards" / "index.json").exists()


def test_missing_manifest_file_raises_naming_it(tmp_path):
    (tmp_path / "manifest.tsv").write_text("path\tlabel\ngone.wav\ta\n")
    with pytest.raises(FileNotFoundError, match=r"gone\.wav"):
        shard_audio(tmp_path / "manifest.tsv", tmp_path / "shards")


def test_bad_inputs_and_existing_output(tmp_path, uniform):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        shard_audio(tmp_path / "nowhere", tmp_path / "shards")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .wav/.flac/.ogg files"):
        shard_audio(tmp_path / "empty", tmp_path / "shards")
    (tmp_path / "m.csv").write_text("file,label\nx.wav,a\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['path'\]"):
        shard_audio(tmp_path / "m.csv", tmp_path / "shards")
    with pytest.raises(FileExistsError, match="overwrite"):
        shard_audio(tmp_path, uniform)
    with pytest.raises(ValueError, match="local folder, got s3://bucket/shards"):
        shard_audio(tmp_path, "s3://bucket/shards")


def test_overwrite_replaces_shards_and_leaves_the_caller_process_as_it_was(tmp_path):
    soundfile.write(tmp_path / "one.wav", ramp(400), SR, subtype="PCM_16")
    before = multiprocessing.get_start_method(allow_none=True), torch.get_num_threads()
    shard_audio(tmp_path, tmp_path / "shards")
    soundfile.write(tmp_path / "two.wav", ramp(400), SR, subtype="PCM_16")
    report = shard_audio(tmp_path, tmp_path / "shards", overwrite=True)
    assert report.num_written == 2
    assert (multiprocessing.get_start_method(allow_none=True), torch.get_num_threads()) == before


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_datamodule_without_shards_names_the_folder_and_the_command(tmp_path, make):
    shard_dir = tmp_path / "shards"
    if make == "empty":
        shard_dir.mkdir()
    dm = StreamingAudioDataModule(str(shard_dir))
    with pytest.raises(FileNotFoundError, match=rf"{shard_dir}.*ssl-lightning shard-audio INPUT {shard_dir}"):
        dm.setup("fit")


def test_datamodule_rejects_shards_without_clips(tmp_path):
    (tmp_path / "index.json").write_text('{"chunks": []}')
    (tmp_path / "shards.json").write_text('{"sample_rate": 16000, "has_label": false}')
    with pytest.raises(ValueError, match=rf"{tmp_path} hold no clip.*ssl-lightning shard-audio"):
        StreamingAudioDataModule(str(tmp_path)).setup("fit")


def test_datamodule_checks_sample_rate_and_labels(uniform):
    with pytest.raises(ValueError, match="16000 Hz audio but sample_rate=22050.*--sample-rate 22050"):
        StreamingAudioDataModule(str(uniform), sample_rate=22050).setup("fit")
    with pytest.raises(ValueError, match="hold no labels"):
        StreamingAudioDataModule(str(uniform), classes=["a"]).setup("fit")


@pytest.fixture(scope="module")
def ramps(tmp_path_factory) -> Path:
    """NUM_UNIFORM clips of 800 samples (clip k: `ramp(800, 50 k)`) in 8 chunks of 2, so that every crop
    shows where it was cut: the shards."""
    root = tmp_path_factory.mktemp("ramps")
    (root / "in").mkdir()
    for k in range(NUM_UNIFORM):
        soundfile.write(root / "in" / f"{k:02d}.wav", ramp(800, 50 * k), SR, subtype="PCM_16")
    shard_audio(root / "in", root / "shards", max_seconds=None, chunk_bytes=UNIFORM_CHUNK_BYTES)
    return root / "shards"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_restored_loader_yields_the_next_batches_with_the_same_random_crops(ramps, num_workers):
    """A loader restored from the state saved after 3 batches (mid-epoch) or after the epoch yields the
    uninterrupted loader's next batches: same clips, same random crops (before the fix the crops came from
    the global generator and differed)."""

    def loader():
        dm = StreamingAudioDataModule(str(ramps), batch_size=2, clip_seconds=0.025, num_workers=num_workers)
        dm.setup("fit")
        return dm.train_dataloader()

    uninterrupted = loader()
    first_epoch = iter(uninterrupted)
    batches = [next(first_epoch) for _ in range(3)]
    mid_epoch = uninterrupted.state_dict()
    batches += list(first_epoch)
    end_of_epoch = uninterrupted.state_dict()
    batches += list(uninterrupted)
    assert len(batches) == NUM_UNIFORM  # two epochs of 8 batches
    for state, expected in ((mid_epoch, batches[3:8]), (end_of_epoch, batches[8:])):
        resumed = loader()
        resumed.load_state_dict(state)
        rest = list(resumed)
        assert len(rest) == len(expected)
        for got, want in zip(rest, expected, strict=True):
            assert torch.equal(got["clip_id"], want["clip_id"]) and torch.equal(got["audio"], want["audio"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stream_on_rank(process: int, port: int, shard_dir: str, out_dir: str) -> None:
    """One of 2 gloo ranks: two epochs of clip_ids from a datamodule with 2 workers, saved to rank{r}.pt."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=process, world_size=2)
    try:
        dm = StreamingAudioDataModule(shard_dir, batch_size=2, clip_seconds=0.05, num_workers=2)
        dm.setup("fit")
        loader = dm.train_dataloader()
        epochs = [torch.cat([batch["clip_id"] for batch in loader]).tolist() for _ in range(2)]
        torch.save({"epochs": epochs, "len": len(loader)}, Path(out_dir) / f"rank{process}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_two_ranks_with_two_workers_each_see_every_clip_exactly_once(uniform, tmp_path):
    torch_mp.start_processes(
        stream_on_rank, args=(free_port(), str(uniform), str(tmp_path)), nprocs=2, start_method="fork"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for epoch in range(2):
        per_rank = [rank["epochs"][epoch] for rank in ranks]
        assert [len(ids) for ids in per_rank] == [NUM_UNIFORM // 2] * 2
        assert sorted(per_rank[0] + per_rank[1]) == list(range(NUM_UNIFORM))
    assert [rank["len"] for rank in ranks] == [NUM_UNIFORM // 4] * 2  # batches per rank and epoch
    assert ranks[0]["epochs"][0] != ranks[0]["epochs"][1]


class Crash(Exception):
    """Stands for a job killed mid-epoch."""


class ClipRecorder(L.LightningModule):
    """Records the clip_ids of every training batch; raises Crash at global step `crash_at`."""

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.crash_at = crash_at
        self.seen: list[list[int]] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.global_step == self.crash_at:
            raise Crash
        self.seen.append(batch["clip_id"].tolist())
        return self.weight.sum() * batch["audio"].mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_trainer_fit_resumes_mid_epoch_from_a_checkpoint(uniform, tmp_path):
    trainer_args = dict(
        accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )

    def datamodule():
        return StreamingAudioDataModule(str(uniform), batch_size=2, clip_seconds=0.05, num_workers=2)

    crashed = ClipRecorder(crash_at=5)
    every_3_steps = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3, save_top_k=-1, filename="{step}")
    with pytest.raises(Crash):
        L.Trainer(callbacks=[every_3_steps], default_root_dir=tmp_path, **trainer_args).fit(
            crashed, datamodule()
        )
    checkpoint = torch.load(tmp_path / "step=3.ckpt", weights_only=False)
    assert checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["num_samples_yielded"] == 6

    resumed = ClipRecorder()
    L.Trainer(default_root_dir=tmp_path, **trainer_args).fit(
        resumed, datamodule(), ckpt_path=tmp_path / "step=3.ckpt"
    )
    before = sum(crashed.seen[:3], [])
    after = sum(resumed.seen, [])
    assert len(resumed.seen) == NUM_UNIFORM // 2 - 3
    assert sorted(before + after) == list(range(NUM_UNIFORM))


def test_command_line_writes_shards_and_prints_a_summary(tmp_path, capsys):
    for k in range(2):
        soundfile.write(tmp_path / f"{k}.flac", ramp(400, k), 8000, subtype="PCM_16")
    main([str(tmp_path), str(tmp_path / "shards"), "--sample-rate", "8000", "--max-seconds", "0"])
    assert "wrote 2 of 2 clips" in capsys.readouterr().out
    shards = str(tmp_path / "shards")
    dm = StreamingAudioDataModule(shards, val_dir=shards, sample_rate=8000, clip_seconds=None)
    dm.setup("validate")
    assert [len(item["audio"]) for item in dm.val_dataset] == [400, 400]
