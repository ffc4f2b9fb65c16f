"""MkDocs hooks: the pages that are built from the repository rather than written twice.

- ``experiments/<name>.md``: each ``experiments/<name>/README.md`` with its figure and published
  numbers (``quick.png``, ``reference.csv``) beside it, so a study's page never drifts from the
  table its report wrote; ``experiments/index.md`` is ``experiments/README.md``. Links into the
  repository (``../../conf/study/<study>.yaml``) become the path in code, since the site has no such
  page. The Studies section of the navigation lists them.
- ``<!-- methods-table -->`` in a page: the method registry's table (``methods_table()``);
  ``<!-- studies-table -->``: the README's studies table (between its ``studies-table`` markers),
  so the two never disagree.

MkDocs has no built-in way to take pages from outside ``docs/`` (plugins such as gen-files do, at the
cost of another dependency for these few lines).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
ASSETS = (".png", ".csv", ".json")


def _studies() -> list[str]:
    return sorted(p.parent.name for p in EXPERIMENTS.glob("*/README.md"))


def _title(readme: Path) -> str:
    for line in readme.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return readme.parent.name


def _page(name: str, text: str) -> str:
    """An experiment README as a page at ``experiments/<name>.md``: its assets under ``<name>/``."""
    if name == "index":  # experiments/README.md: links to experiments/<x>/README.md
        return re.sub(r"\]\(([\w-]+)/README\.md\)", r"](\1.md)", text)
    text = re.sub(r"\[([^\]]+)\]\((?:\.\./)+([^)]+)\)", r"\1 (`\2`)", text)  # into the repository
    return re.sub(r"\]\(([\w.-]+\.(?:png|csv|json))\)", rf"]({name}/\1)", text)


def on_config(config: Any) -> Any:
    nav = config.get("nav") or []
    for entry in nav:
        if isinstance(entry, dict) and "Studies" in entry:
            pages = entry["Studies"]
            pages.append({"All studies and their verdicts": "experiments/index.md"})
            for name in _studies():
                pages.append({_title(EXPERIMENTS / name / "README.md"): f"experiments/{name}.md"})
    return config


def on_files(files: Files, config: Any) -> Files:
    index = _page("index", (EXPERIMENTS / "README.md").read_text())
    files.append(File.generated(config, "experiments/index.md", content=index))
    for name in _studies():
        folder = EXPERIMENTS / name
        page = _page(name, (folder / "README.md").read_text())
        files.append(File.generated(config, f"experiments/{name}.md", content=page))
        for asset in sorted(folder.iterdir()):
            if asset.suffix in ASSETS:
                files.append(File.generated(config, f"experiments/{name}/{asset.name}", abs_src_path=str(asset)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if "<!-- methods-table -->" in markdown:
        from ssl_bench.methods.registry import methods_table

        markdown = markdown.replace("<!-- methods-table -->", methods_table())
    if "<!-- studies-table -->" in markdown:
        readme = (ROOT / "README.md").read_text()
        block = re.search(r"<!-- studies-table:start -->\n(.*?)\n<!-- studies-table:end -->", readme, re.S)
        markdown = markdown.replace("<!-- studies-table -->", block.group(1) if block else "")
    return markdown
