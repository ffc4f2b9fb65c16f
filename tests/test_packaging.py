"""The wheel carries the config tree, so ``ssl-bench`` finds ``conf/`` after a plain install."""

import subprocess
import sys
import zipfile


def test_wheel_contains_the_config_tree(tmp_path, repo_root):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(repo_root)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next(tmp_path.glob("ssl_bench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ssl_bench/conf/config.yaml" in names
    conf = sorted(p.relative_to(repo_root).as_posix() for p in (repo_root / "conf").rglob("*.yaml"))
    assert all(f"ssl_bench/{c}" in names for c in conf)
    refs = sorted(p.relative_to(repo_root).as_posix() for p in (repo_root / "experiments").rglob("reference.csv"))
    assert refs and all(f"ssl_bench/{r}" in names for r in refs)  # the published numbers of every study
    # installed layout: the package finds conf/ next to itself
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = "import ssl_bench.config as c; print(c.config_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(target), "PATH": ""},
        timeout=120,
    ).stdout.strip()
    assert out == str(target / "ssl_bench" / "conf")
    code = "from ssl_bench.report.study import find_reference as f; print(f('byol_tau'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(target), "PATH": ""},
        timeout=120,
    ).stdout.strip()
    assert out == str(target / "ssl_bench" / "experiments" / "byol_tau" / "reference.csv")
