"""The evaluation recipes (`recipes/eval/*.yaml`) parse with `ssl-lightning evaluate`'s parser and name only
tasks of their suite."""

from pathlib import Path

import pytest

from ssl_lightning.eval.evaluate import build_parser
from ssl_lightning.eval.registry import get_suite

EVAL = Path(__file__).resolve().parents[2] / "recipes" / "eval"
DOMAIN_RECIPES = sorted(EVAL.glob("hares_*.yaml"))


def parse(*files: Path):
    return build_parser().parse_args([arg for f in files for arg in ("--config", str(f))])


def test_hares_eval_is_the_papers_protocol():
    cfg = parse(EVAL / "hares_eval.yaml")
    assert cfg.suite == "hares" and cfg.protocol == "random_crop" and not cfg.tasks
    probe = cfg.probe
    assert (probe.lr, probe.warmup_steps, probe.batch_size, probe.max_steps) == (2e-4, 5000, 64, 400000)
    assert probe.select_on_valid is False


@pytest.mark.parametrize(
    "recipe", [r for r in DOMAIN_RECIPES if r.stem != "hares_eval"], ids=lambda r: r.stem
)
def test_domain_recipes_select_their_domain(recipe):
    cfg = parse(EVAL / "hares_eval.yaml", recipe)
    domain = recipe.stem.removeprefix("hares_")
    suite = get_suite(cfg.suite)
    assert cfg.tasks == [name for name, task in suite.tasks.items() if task.domain == domain]
    assert cfg.probe.max_steps == 400000  # the protocol of hares_eval.yaml is kept
