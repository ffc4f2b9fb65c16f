"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing page or an
unresolved reference fails), its generated pages are there, and the commands the getting-started
page and the README's tour mark ``<!-- checked -->`` run as written, at tiny sizes: the test's data,
backbone and epoch overrides replace the page's (sizes only: every other key stays as written). The
commands run in this process through the same entry points as the console scripts, except a
multi-process run (``trainer.devices=2``), which runs as its own process, as a user's would."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_bench import app
from ssl_bench.eval import app as eval_app
from ssl_bench.methods.registry import REGISTRY
from ssl_bench.report import cli as report_cli
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL = [o for o in TINY if not o.startswith(("method.", "trainer.checkpoint"))]  # the tour exports and evaluates
STUDIES = [p.parent for p in (ROOT / "experiments").glob("*/reference.csv")]  # the paper studies
CHECKED = re.compile(r"<!-- checked -->\s*\n```bash\n(.*?)```", re.S)


def checked_commands(page: Path) -> list[str]:
    lines = []
    for block in CHECKED.findall(page.read_text()):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


MAINS = {"ssl-bench": app.main, "ssl-bench-eval": eval_app.main, "ssl-bench-report": report_cli.main}
SIZES = {o.split("=", 1)[0] for o in SMALL}


def smaller(command: str) -> list[str]:
    """The command with the tiny sizes in place of its own (any other key stays as written)."""
    argv = shlex.split(command)
    if argv[0] != "ssl-bench" or any(a in ("--help", "--cfg") for a in argv):
        return argv
    return [argv[0], *(a for a in argv[1:] if a.split("=", 1)[0] not in SIZES), *SMALL]


def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    if any(a.startswith("trainer.devices=") and a != "trainer.devices=1" for a in argv):
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
        return proc.returncode, proc.stdout[-2000:] + proc.stderr[-3000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setattr(sys, "argv", argv)
        for k in [k for k in os.environ if k.startswith("WANDB_")]:
            mp.delenv(k)
        for k in ("HOME", "WANDB_SILENT"):
            mp.setenv(k, env[k])
        try:
            MAINS[argv[0]]()
        except SystemExit as exc:
            return int(exc.code or 0), ""
    return 0, ""


def test_the_site_builds_strict_with_every_generated_page(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-3000:]
    for readme in (ROOT / "experiments").glob("*/README.md"):
        page = site / "experiments" / readme.parent.name / "index.html"
        assert page.is_file(), readme
        if (readme.parent / "quick.png").is_file():
            assert (page.parent / "quick.png").is_file()
    methods = (site / "guides" / "methods" / "index.html").read_text()
    for name in REGISTRY:
        assert f"<code>{name}</code>" in methods, name  # the registry's table, generated
    assert "nt_xent" in (site / "api" / "losses" / "index.html").read_text()  # the API from docstrings
    studies = (site / "guides" / "studies" / "index.html").read_text()
    assert "studies-table" not in studies and all(f"<code>{s.name}</code>" in studies for s in STUDIES)


@pytest.mark.parametrize("page", ["docs/getting-started.md", "README.md"])
def test_the_checked_commands_run_as_written(tmp_path, page):
    commands = checked_commands(ROOT / page)
    assert commands, f"{page} marks no command <!-- checked -->"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env['PATH']}", HOME=str(tmp_path / "home"), WANDB_SILENT="true")
    for command in commands:
        assert command.split()[0] in MAINS, f"{page}: {command!r} is not an ssl-bench command"
        code, out = run(smaller(command), env, tmp_path)
        assert code == 0, (command, out)
