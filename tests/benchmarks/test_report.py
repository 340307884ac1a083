"""`benchmarks/report.py`: the committed README.md is what the results give, every results file names its
command (a benchmark script or a CLI that exists) and machine, plots are real PNGs of the stored values,
`--check` catches a hand edit, the DABS means are labelled by the modalities they cover, and `--rerun`
stores a script's `--out` JSON."""

import datetime
import importlib.util
import json
import re
import shlex
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from matplotlib.image import imread

from ssl_lightning.cli import EXTRA_COMMANDS

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
RESULTS = sorted((BENCHMARKS / "results").glob("*.json"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_spec = importlib.util.spec_from_file_location("benchmark_report", BENCHMARKS / "report.py")
report = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = report  # dataclasses look their module up there
_spec.loader.exec_module(report)


def test_the_committed_readme_is_what_the_results_and_template_give():
    experiments = report.load_results(BENCHMARKS / "results")
    template = (BENCHMARKS / "results" / "template.md").read_text(encoding="utf-8")
    assert (BENCHMARKS / "README.md").read_text(encoding="utf-8") == report.render(experiments, template)
    plots = re.findall(r"\]\(plots/([\w.-]+\.png)\)", (BENCHMARKS / "README.md").read_text(encoding="utf-8"))
    assert "throughput_ratios.png" in plots and "dabs_small_experiment.png" in plots
    for name in plots:
        assert (BENCHMARKS / "plots" / name).read_bytes()[:8] == PNG_SIGNATURE, name


def test_check_passes_on_the_generated_readme_and_fails_on_a_hand_edit(tmp_path, capsys):
    shutil.copytree(BENCHMARKS / "plots", tmp_path / "plots")
    readme = tmp_path / "README.md"
    readme.write_text((BENCHMARKS / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    paths = ["--readme", str(readme), "--plots", str(tmp_path / "plots")]
    report.main(["--check", *paths])
    assert "up to date" in capsys.readouterr().out
    readme.write_text(readme.read_text(encoding="utf-8").replace("| 5.72x |", "| 6.72x |"), encoding="utf-8")
    with pytest.raises(SystemExit, match="out of date"):
        report.main(["--check", *paths])
    assert "+| data2vec 2.0 vs 1.0, masked student views/s (4 x 384) | 5.72x |" in capsys.readouterr().out


@pytest.mark.parametrize("path", RESULTS, ids=[path.stem for path in RESULTS])
def test_every_results_file_has_its_command_machine_provenance_and_values(path):
    experiment = json.loads(path.read_text(encoding="utf-8"))
    for key in ("title", "command", "machine", "source"):
        assert isinstance(experiment[key], str) and experiment[key].strip(), f"{path.name}: {key}"
    assert experiment["date"] is None or re.fullmatch(r"2\d{3}-\d\d-\d\d", experiment["date"])
    assert experiment["commit"] is None or re.fullmatch(r"[0-9a-f]{7,40}", experiment["commit"])
    if experiment["status"] == "measured":
        assert experiment["date"], path.name
        assert experiment["table"]["rows"] if experiment["format"] == "table" else experiment["runs"]
    else:
        assert experiment["status"] == "pending" and experiment["runs"] == []


def benchmark_options() -> set[str]:
    """Every `--option` that a script in benchmarks/ declares."""
    sources = "".join(path.read_text(encoding="utf-8") for path in BENCHMARKS.glob("*.py"))
    return set(re.findall(r'add_argument\(\s*"(--[\w-]+)"', sources))


def command_problems(command: str) -> list[str]:
    """Why `command` does not run a benchmark script (with options it declares), pytest on test files, or
    an `ssl-lightning` / `lightning` subcommand, on recipes that exist; [] when it does."""
    argv = shlex.split(command)
    while argv and re.fullmatch(r"[A-Z_]+=\S+", argv[0]):  # environment assignments
        argv.pop(0)
    problems = [
        f"{arg} does not exist" for arg in argv if arg.startswith("recipes/") and not (REPO / arg).is_file()
    ]
    if argv[:3] == ["python", "-m", "pytest"]:
        tests = [arg for arg in argv[3:] if arg.startswith("tests/")]
        problems += [f"{test} does not exist" for test in tests if not (REPO / test).is_file()]
        return problems + ([] if tests else ["pytest names no test file"])
    if argv[0] == "python":
        script = REPO / argv[1]
        if script.parent != BENCHMARKS or not script.is_file():
            return [*problems, f"{argv[1]} is not a script in benchmarks/"]
        options = argv[2 : argv.index("--")] if "--" in argv else argv[2:]
        known = benchmark_options()
        return problems + [
            f"{option} is no benchmark option"
            for option in options
            if option.startswith("--") and option not in known
        ]
    if argv[0] in ("ssl-lightning", "lightning"):
        known = {*EXTRA_COMMANDS, "fit", "validate", "test", "predict"}
        return problems + ([] if argv[1] in known else [f"{argv[0]} has no subcommand {argv[1]}"])
    return [*problems, f"{argv[0]} is neither python nor the ssl-lightning CLI"]


@pytest.mark.parametrize("path", RESULTS, ids=[path.stem for path in RESULTS])
def test_every_command_names_a_benchmark_script_or_a_cli_that_exists(path):
    experiment = json.loads(path.read_text(encoding="utf-8"))
    commands = [
        experiment["command"],
        *(run["command"] for run in experiment.get("runs", []) if "command" in run),
    ]
    for command in commands:
        assert command_problems(command) == [], command


def test_the_command_check_rejects_what_does_not_exist():
    assert command_problems("python benchmarks/no_such_script.py") != []
    assert command_problems("python benchmarks/cq_overhead.py --no-such-option 1") != []
    assert command_problems("ssl-lightning no-such-subcommand") != []
    assert command_problems("python -m pytest tests/no_such_test.py") != []
    assert command_problems("lightning fit --config recipes/no_such_recipe.yaml") != []
    assert command_problems("python benchmarks/cq_overhead.py --threads 1 --stem imagenet") == []


def test_a_plot_from_a_results_file_is_a_png_of_the_stored_values(tmp_path):
    experiment = report.read_experiment(BENCHMARKS / "results" / "beats_quickstart.json")
    figure = report.experiment_figure(experiment)
    random_init, iter1, iter2 = ([bar.get_height() for bar in bars] for bars in figure.axes[0].containers)
    assert iter2 == [64.0, 54.5, 26.2, 27.1, 61.7, 58.3, 48.6]  # the README's quickstart table
    assert random_init[-1] == 36.9 and iter1[-1] == 44.7
    report.save(figure, tmp_path / "quickstart.png")
    assert (tmp_path / "quickstart.png").read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(tmp_path / "quickstart.png")
    assert pixels.shape[:2] == (360, 840)  # 3.6 in high, 0.3 in x 7 groups x (3 series + 1) wide, 100 dpi
    assert pixels[..., :3].std() > 0.1  # not blank


def test_every_plot_and_the_summary_are_written(tmp_path):
    written = report.write_plots(report.load_results(BENCHMARKS / "results"), tmp_path)
    assert {path.name for path in written} == {path.name for path in (BENCHMARKS / "plots").glob("*.png")}
    assert all(path.read_bytes()[:8] == PNG_SIGNATURE for path in written)


def dabs(*tables: dict) -> dict:
    return {
        "labels": {},
        "runs": [{"label": f"run {i}", "result": {"table": t}} for i, t in enumerate(tables)],
    }


def test_dabs_means_cover_each_earlier_run_and_then_every_modality():
    first = {
        "a": {"random-init": 10.0, "emix": 20.0, "rq": 30.0},
        "b": {"random-init": 20.0, "emix": 40.0, "rq": 50.0},
    }
    second = {"c": {"random-init": 30.0, "emix": 60.0, "rq": 10.0}}
    rows = report.dabs_small_experiment(dabs(first, second)).rows
    assert [row[0] for row in rows[:3]] == ["a", "b", "c"]
    assert rows[3] == ["**mean of the 2 (a, b; one run)**", "15.0", "30.0", "40.0", ""]
    assert rows[4] == ["**mean of all 3 (a, b, c)**", "20.0", "40.0", "30.0", ""]
    assert len(rows) == 5
    assert report.dabs_small_experiment(dabs(first)).rows[-1] == ["**mean**", "15.0", "30.0", "40.0", ""]


FAKE_SCRIPT = """
import json, sys
out = sys.argv[sys.argv.index("--out") + 1]
result = {"task": "t", "layers": ["front-end"], "random-init": [50.0], "trained": [60.0]}
open(out, "w").write(json.dumps({**result, "argv": sys.argv[1:]}))
"""


def test_rerun_runs_the_command_and_stores_the_scripts_result(tmp_path):
    (tmp_path / "fake.py").write_text(textwrap.dedent(FAKE_SCRIPT))
    results = tmp_path / "results"
    results.mkdir()
    (results / "template.md").write_text("# Report\n\n{{ fake }}\n")
    experiment = {
        "title": "Fake",
        "command": f"python {tmp_path / 'fake.py'} --run-dir <dir> -- --extra 1",
        "machine": "before",
        "date": None,
        "commit": None,
        "source": "a test",
        "status": "pending",
        "format": "data2vec_layer_probe",
        "runs": [],
    }
    (results / "fake.json").write_text(json.dumps(experiment))
    readme = tmp_path / "README.md"
    report.main(
        [
            "--rerun",
            "fake",
            "--machine",
            "a test machine",
            "--results",
            str(results),
            "--readme",
            str(readme),
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    stored = json.loads((results / "fake.json").read_text())
    assert stored["status"] == "measured" and stored["machine"] == "a test machine"
    assert stored["date"] == datetime.date.today().isoformat() and re.fullmatch(
        r"[0-9a-f]{7,}", stored["commit"]
    )
    result = stored["runs"][0]["result"]
    assert result["trained"] == [60.0]
    argv = result["argv"]
    assert argv[0] == "--run-dir" and Path(argv[1]).name == "run" and "<dir>" not in argv[1]
    assert argv[2] == "--out" and argv[3].endswith("result.json") and argv[4:] == ["--", "--extra", "1"]
    assert "| front-end | 50.0 | 60.0 |" in readme.read_text()


def test_rerun_refuses_a_table_experiment_and_an_unfillable_placeholder(tmp_path):
    with pytest.raises(SystemExit, match="by hand"):
        report.rerun(BENCHMARKS / "results" / "hear_validator.json", "any")
    with pytest.raises(SystemExit, match="<ckpt>"):
        report.fill("python benchmarks/data2vec_layer_probe.py <ckpt> --task music_pitch", tmp_path)


def test_a_results_file_without_a_machine_is_named_with_the_key(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"title": "x", "command": "python benchmarks/rq_overhead.py"}))
    with pytest.raises(SystemExit, match=r"broken\.json: missing key\(s\) machine, date, commit, source"):
        report.read_experiment(path)
