"""MkDocs hook: the task tables of the DABS suite page (`suites/dabs.md`), generated from
`ssl_lightning.eval.dabs` (which datamodule serves each task, what it reads under the data root, its metric),
so the page stays true as datamodules are added. It imports the library (and so torch) when that page is
built."""

from __future__ import annotations

TASKS_MARKER = "<!-- dabs-tasks -->"
MINI_MARKER = "<!-- dabs-mini-tasks -->"


def short(path: str | None) -> str:
    """`dabs.images.DabsCIFAR10DataModule` -> `DabsCIFAR10DataModule` (in code)."""
    return f"`{path.rpartition('.')[2]}`" if path else ""


def tasks_table() -> str:
    from ssl_lightning.eval import dabs

    rows = ["| domain | task | metric | datamodule | reads under ROOT |", "|:--|:--|:--|:--|:--|"]
    for domain, names in dabs.DOMAIN_TASKS.items():
        for name in names:
            data = dabs.DABS_DATA[name]
            if data.cls is None:
                served, folder = f"none yet: needs {getattr(data, 'missing', '')}", ""
            else:
                served = short(data.cls) + (f" over {short(data.source)}" if data.source else "")
                folder = f"`{data.folder}/`"
            rows.append(f"| {domain} | `{name}` | {dabs.DABS_TASKS[name].metric} | {served} | {folder} |")
    return "\n".join(rows)


def mini_table() -> str:
    from ssl_lightning.eval import dabs

    rows = ["| domain | task | metric | datamodule |", "|:--|:--|:--|:--|"]
    for name, task in dabs.DABS_MINI_TASKS.items():
        rows.append(f"| {task.domain} | `{name}` | {task.metric} | {short(dabs.MINI_DATA[name])} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs hook signature)
    """Replace the markers of the DABS page with the generated tables."""
    if TASKS_MARKER in markdown:
        markdown = markdown.replace(TASKS_MARKER, tasks_table())
    if MINI_MARKER in markdown:
        markdown = markdown.replace(MINI_MARKER, mini_table())
    return markdown
