"""Every recipe under recipes/ parses (`--print_config`) and smoke-runs on CPU on the embedded data.

New recipes are covered without touching this file: the CPU smoke overlay and the tiny overlays of
the recipe's encoder, model and datamodule (`recipes/overlays/tiny/<EncoderClass>.yaml`, then
`<ModelClass>.yaml`, then `<DataModuleClass>.yaml`, each when it exists) are appended. Encoder and
model overlays shrink the model only; smoke-run data settings (batch size, workers, image size) go
in the datamodule's overlay, which fits every recipe on that datamodule. A recipe on a real
data set (CIFAR-100, ESC-50, AudioSet, ...) runs its own datamodule on a tiny copy of that data
set's on-disk layout: `tests/layouts/<DataModuleClass>.py` defines `make(root: Path) -> dict`, which
writes the copy under `root` and returns the `data.init_args` overrides that point at it (applied
after the overlays).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from ssl_lightning.cli import main
from ssl_lightning.methods import load_method

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
OVERLAYS = REPO / "recipes" / "overlays"
LAYOUTS = REPO / "tests" / "layouts"
EMBEDDED_DATA = (
    "HaresMiniDataModule",
    "DigitsDataModule",
    "DabsDigitsDataModule",
    "SyntheticSensorsDataModule",
    "DabsSpeechDataModule",
    "DabsTextDataModule",
    "CaptionedDigitsDataModule",
)


def _tiny_overlays(recipe: Path) -> list[str]:
    config = yaml.safe_load(recipe.read_text())
    model = config["model"]
    encoder = (model.get("init_args") or {}).get("encoder") or {}
    args = []
    for class_path in (encoder.get("class_path", ""), model["class_path"], config["data"]["class_path"]):
        overlay = OVERLAYS / "tiny" / f"{str(class_path).rpartition('.')[2]}.yaml"
        if overlay.is_file():
            args += ["--config", str(overlay)]
    return args


def _data_overrides(recipe: Path, root: Path) -> list[str]:
    """`--data.init_args.<key>=<value>` overrides pointing a real-data recipe at a generated tiny layout."""
    data_class = yaml.safe_load(recipe.read_text())["data"]["class_path"].rpartition(".")[2]
    if data_class in EMBEDDED_DATA:
        return []
    layout = LAYOUTS / f"{data_class}.py"
    assert layout.is_file(), f"{recipe.name}: {data_class} is not embedded data; add {layout} (see docstring)"
    spec = importlib.util.spec_from_file_location(f"layout_{data_class}", layout)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    overrides = module.make(root / "data").items()
    return [f"--data.init_args.{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in overrides]


def test_recipes_exist():
    assert RECIPES, "no recipes found under recipes/"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(recipe), "--print_config"])
    assert exit_info.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"].startswith("ssl_lightning.")
    assert config["seed_everything"] == 0
    assert config["trainer"]["max_steps"] > 0 or config["trainer"]["max_epochs"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_smoke_runs_on_cpu(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(recipe), "--config", str(OVERLAYS / "cpu_smoke.yaml")]
    main(args + _tiny_overlays(recipe) + _data_overrides(recipe, tmp_path))
    last = sorted(tmp_path.glob("runs/**/last.ckpt"))
    assert last, f"{recipe.name}: no last.ckpt written under {tmp_path / 'runs'}"
    method = load_method(last[0])
    assert method.embed_dim > 0
    assert sorted(tmp_path.glob("runs/**/events.out.tfevents.*")), "no TensorBoard log"
    assert sorted(tmp_path.glob("runs/csv/**/metrics.csv")), "no CSV log"
