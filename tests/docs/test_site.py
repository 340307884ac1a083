"""The documentation site (`mkdocs.yml`, `docs/`): it builds with warnings as errors, it mentions every
recipe, every CLI subcommand and every public class and function, and those all have docstrings.

What is public is computed from the package itself: the `__all__` of every `ssl_lightning` package (every
folder with an `__init__.py`), so classes exported later are covered without editing this test.
"""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ssl_lightning"
BUILD_SECONDS = 60
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Build:
    """One `mkdocs build --strict` of the site: its exit status, its output, its folder and its duration."""

    returncode: int
    output: str
    site: Path
    seconds: float


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    site = tmp_path_factory.mktemp("site")
    began = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Build(run.returncode, run.stdout + run.stderr, site, time.perf_counter() - began)


@pytest.fixture(scope="module")
def built(build: Build) -> Build:
    """The build, which must have succeeded for the content checks to mean anything."""
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.output[-6000:]}"
    return build


class CodeAndIds(HTMLParser):
    """The text inside `<code>` elements and the `id` attributes of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.code: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)
        if tag == "code":
            self.depth += 1
            self.code.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "code" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.code[-1] += data


def parse(page: Path) -> CodeAndIds:
    parser = CodeAndIds()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def site_pages(site: Path) -> list[Path]:
    """The built pages (not the search page or the 404 page)."""
    return [
        page
        for page in sorted(site.rglob("*.html"))
        if page.name != "404.html" and "search" not in page.parts
    ]


@pytest.fixture(scope="module")
def mentions(built: Build) -> tuple[list[str], set[str], set[str]]:
    """Every code text of the site, the identifiers in them, and every element id."""
    code: list[str] = []
    ids: set[str] = set()
    for page in site_pages(built.site):
        parsed = parse(page)
        code += parsed.code
        ids |= parsed.ids
    words = {word for text in code for word in IDENTIFIER.findall(text)}
    return code, words, ids


def exported() -> list[tuple[str, str, object]]:
    """(package, name, object) of every class and function in the `__all__` of an `ssl_lightning` package."""
    found = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        package = ".".join(init.parent.relative_to(REPO).parts)
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.append((package, name, obj))
    return found


def test_the_site_builds_with_warnings_as_errors_within_a_minute(build: Build):
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.output[-6000:]}"
    assert (build.site / "index.html").is_file()
    assert (build.site / "api" / "methods" / "index.html").is_file()
    assert build.seconds < BUILD_SECONDS, f"the build took {build.seconds:.0f} s (limit {BUILD_SECONDS} s)"


def test_every_recipe_is_listed(built: Build):
    recipes = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "recipes").rglob("*.yaml"))
    assert len(recipes) > 50
    index = parse(built.site / "reference" / "recipes" / "index.html").code
    missing = [recipe for recipe in recipes if recipe not in index]
    assert not missing, f"recipes missing from the recipes index (docs/reference/recipes.md): {missing}"


def test_every_cli_subcommand_is_documented(built: Build):
    from lightning.pytorch.cli import LightningCLI

    from ssl_lightning.cli import EXTRA_COMMANDS

    commands = [*LightningCLI.subcommands(), *EXTRA_COMMANDS]
    assert {"fit", "evaluate", "beats-loop", "beats-quickstart", "shard-audio"} <= set(commands)
    code = parse(built.site / "reference" / "cli" / "index.html").code
    missing = [name for name in commands if not any(f"lightning {name}" in text for text in code)]
    assert not missing, f"CLI subcommands missing from docs/reference/cli.md: {missing}"


def test_every_exported_class_and_function_is_documented(mentions: tuple[list[str], set[str], set[str]]):
    _, words, ids = mentions
    names = exported()
    assert {"BYOL", "Data2Vec", "HaresMiniDataModule", "evaluate_contrastive_quant"} <= {
        n for _, n, _ in names
    }
    missing = [
        f"{package}.{name}"
        for package, name, _ in names
        if f"{package}.{name}" not in ids and name not in words
    ]
    assert not missing, (
        f"public names the docs never mention (render them in an API page of docs/api/ or name them in code "
        f"on a page): {missing}"
    )


def own_docstring(obj: object) -> str:
    """The object's own docstring: not inherited, and not the signature that dataclasses and named tuples
    write when a class has none."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    doc = (doc or "").strip()
    if inspect.isclass(obj) and re.fullmatch(rf"{re.escape(obj.__name__)}\(.*\)", doc, flags=re.DOTALL):
        return ""
    return doc


def test_every_exported_class_and_function_has_a_docstring():
    names = exported()
    assert len(names) > 100
    missing = [f"{package}.{name}" for package, name, obj in names if not own_docstring(obj)]
    assert not missing, f"public classes and functions without a docstring: {missing}"


def test_own_docstring_sees_through_generated_and_inherited_docstrings():
    from dataclasses import dataclass as make_dataclass
    from typing import NamedTuple

    @make_dataclass
    class Bare:
        x: int

    class Point(NamedTuple):
        x: int

    class Child(Point):
        pass

    class Documented(NamedTuple):
        """A point."""

        x: int

    assert Bare.__doc__ == "Bare(x: 'int')"  # the generated one (annotations are strings here)
    assert [own_docstring(cls) for cls in (Bare, Point, Child)] == ["", "", ""]
    assert own_docstring(Documented) == "A point."
