"""MkDocs hook: the recipes index (`reference/recipes.md`) generated from the recipes' own header comments.

Every `recipes/**/*.yaml` starts with a comment that says what it runs; the index lists each file with the
first sentence of that comment, grouped by folder (and, for the top-level recipes, by method family), so a
recipe added later is listed without editing the docs. A recipe without a header comment is a warning,
which `mkdocs build --strict` turns into a failed build.
"""

from __future__ import annotations

import logging
from pathlib import Path

MARKER = "<!-- recipes-index -->"
LOG = logging.getLogger("mkdocs.hooks.recipes_index")

FAMILIES = (
    ("beats_", "BEATs", "../methods/beats.md"),
    ("data2vec", "data2vec 1.0 and 2.0", "../methods/data2vec.md"),
    ("simclr_", "Contrastive family: SimCLR", "../methods/contrastive.md"),
    ("byol_a", "Contrastive family: BYOL-A", "../methods/contrastive.md"),
    ("cq_", "Contrastive family: Contrastive Quant", "../methods/contrastive.md"),
    ("dabs_", "DABS objectives", "../methods/dabs.md"),
    ("supervised_", "Supervised baseline", "../index.md"),
)
FOLDERS = (
    ("eval", "Evaluation configs (`ssl-lightning evaluate --config`)", "../hares.md"),
    (
        "quickstart",
        "Quickstart overlays (`ssl-lightning beats-quickstart`)",
        "cli.md#ssl-lightning-beats-quickstart",
    ),
    ("overlays", "Overlays", "#overlays"),
    ("overlays/tiny", "Tiny overlays for CPU smoke runs (picked by class name)", "#overlays"),
)


def header(path: Path) -> str:
    """The first paragraph of the recipe's leading comment, joined into one line ("" when there is none)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line[1:]
        if not text.strip() or text.startswith("   "):  # a blank comment line or an indented command
            if lines:
                break
            continue
        lines.append(text.strip())
    return " ".join(lines)


def first_sentence(text: str) -> str:
    """`text` up to its first ". " or "; " outside parentheses (the recipes' purpose lines)."""
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in ".;" and text[index + 1 : index + 2] in (" ", ""):
            return text[:index]
    return text.rstrip(".:")


def table(paths: list[Path], root: Path) -> list[str]:
    rows = ["| recipe | what it runs |", "|:--|:--|"]
    for path in paths:
        purpose = first_sentence(header(path))
        if not purpose:
            LOG.warning("recipe %s has no header comment saying what it runs", path.relative_to(root))
        rows.append(f"| `{path.relative_to(root).as_posix()}` | {purpose.replace('|', '/')} |")
    return rows


def index(root: Path) -> str:
    """The markdown of every recipe under `root/recipes`, grouped."""
    recipes = root / "recipes"
    top = sorted(recipes.glob("*.yaml"))
    out: list[str] = []
    placed: set[Path] = set()
    for prefix, title, link in FAMILIES:
        paths = [path for path in top if path.name.startswith(prefix) and path not in placed]
        if paths:
            placed.update(paths)
            out += [f"### {title}", "", f"See [{title.split(': ')[0]}]({link}).", "", *table(paths, root), ""]
    rest = [path for path in top if path not in placed]
    if rest:
        out += ["### Other recipes", "", *table(rest, root), ""]
    for folder, title, link in FOLDERS:
        paths = sorted((recipes / folder).glob("*.yaml"))
        if paths:
            out += [f"### {title}", "", f"See [{title.split(' (')[0]}]({link}).", "", *table(paths, root), ""]
    known = {recipes / folder for folder, _, _ in FOLDERS} | {recipes}
    for path in sorted(recipes.rglob("*.yaml")):
        if path.parent not in known:
            LOG.warning(
                "recipe folder %s is not in the recipes index (docs/_hooks/recipes_index.py: FOLDERS)",
                path.parent.relative_to(root),
            )
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs hook signature)
    """Replace the marker of the recipes page with the generated index."""
    if MARKER not in markdown:
        return markdown
    root = Path(config["config_file_path"]).parent
    return markdown.replace(MARKER, index(root))
