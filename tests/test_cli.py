import pytest

from ssl_lightning.cli import main

RECIPE = "recipes/supervised_hares_mini.yaml"


def test_help_lists_lightning_and_extra_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "predict", "evaluate"):
        assert command in out


def test_evaluate_help(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "--suite" in out and "--ckpt" in out and "--baselines" in out


def test_wrong_config_key_names_the_key(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", RECIPE, "--model.init_args.optim.lrr", "0.1", "--print_config"])
    assert exit_info.value.code != 0
    assert "lrr" in capsys.readouterr().err


def test_dotted_override_and_several_configs(capsys, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("trainer:\n  max_steps: 7\n")
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--config",
                RECIPE,
                "--config",
                str(extra),
                "--model.init_args.optim.lr",
                "0.123",
                "--print_config",
            ]
        )
    out = capsys.readouterr().out
    assert "max_steps: 7" in out and "lr: 0.123" in out
