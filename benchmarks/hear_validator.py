"""The official HEAR validator (`hearvalidator` 2021.0.2, from PyPI) on `ssl_lightning.hear` for the three
kinds of model file `load_model` takes: an official BEATs checkpoint, a method checkpoint and a Hugging Face
data2vec directory (tiny ones, built from the test fixtures).

    python benchmarks/hear_validator.py      # needs PyPI for `pip install --no-deps hearvalidator`

hearvalidator requires tensorflow, of which its PyTorch path uses only `isinstance(model, tf.Module)` (and
einops checks `tf.Tensor` once tensorflow is imported): a three-class stand-in module replaces it here, so
that nothing of tensorflow runs and nothing of it needs installing.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
STAND_IN = "class Module: pass\nclass Tensor: pass\nclass Variable: pass\n"


def model_files(folder: Path) -> list[Path]:
    """An official BEATs file, a one-step supervised method checkpoint and a transformers data2vec folder."""
    from ssl_lightning.backbones import ByolAEncoder, Data2VecAudioEncoder
    from ssl_lightning.methods import SupervisedClassifier

    beats = folder / "BEATs_tiny.pt"
    torch.save(torch.load(FIXTURES / "beats" / "encoder.pt", weights_only=True)["checkpoint"], beats)
    fixture = torch.load(FIXTURES / "data2vec" / "data2vec_audio_hf_small.pt", weights_only=True)
    encoder = Data2VecAudioEncoder(Data2VecAudioEncoder.config_from_huggingface(fixture["config"]))
    encoder.load_state_dict(fixture["state_dict"])
    data2vec = encoder.to_huggingface(folder / "data2vec-audio-tiny")
    method = SupervisedClassifier(ByolAEncoder(d=32, channels=4), num_classes=2, label_type="single")
    clips = [{"audio": 0.1 * torch.randn(8000), "label": torch.tensor(i % 2)} for i in range(4)]
    quiet = {"enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False}
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, default_root_dir=folder, **quiet)
    trainer.fit(method, train_dataloaders=DataLoader(clips, batch_size=2))
    trainer.save_checkpoint(folder / "supervised.ckpt")
    return [beats, folder / "supervised.ckpt", data2vec]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "pkgs")]
        subprocess.run([*pip, "hearvalidator==2021.0.2"], check=True)
        (tmp / "stand_in" / "tensorflow").mkdir(parents=True)
        (tmp / "stand_in" / "tensorflow" / "__init__.py").write_text(STAND_IN)
        path = f"{tmp / 'pkgs'}:{tmp / 'stand_in'}:{REPO}"
        results = {}
        for model in model_files(tmp):
            run = subprocess.run(
                [sys.executable, "-m", "hearvalidator.validate", "ssl_lightning.hear", "--model", str(model)],
                env={"PYTHONPATH": path, "PATH": ""},
                capture_output=True,
                text=True,
            )
            print(run.stdout + run.stderr, flush=True)
            results[model.name] = "Looks good!" in run.stdout and run.returncode == 0
        for name, passed in results.items():
            print(f"{name}: {'passed' if passed else 'FAILED'}")
        sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
