"""benchmarks/run.py runs and writes its JSON (a smoke run of the augmentation section; no timing checks)."""

import json
import subprocess
import sys

import pytest


def test_benchmark_quick_augment_writes_json(tmp_path, repo_root):
    out = tmp_path / "bench.json"
    res = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "run.py"), "--quick", "--only", "augment", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "section" in res.stdout and "augment" in res.stdout  # the summary table
    data = json.loads(out.read_text())
    assert {"command", "quick", "sections", "machine", "date", "wall_s", "rows"} <= set(data)
    assert data["quick"] is True and data["sections"] == ["augment"]
    assert {"cpu", "cores", "torch"} <= set(data["machine"])
    rows = data["rows"]
    assert {r["case"] for r in rows} == {
        f"{p} 32px {t}"
        for p in ("simclr", "byol", "simsiam")
        for t in ("1 thread", "2 threads", "torchvision v2 per image, 1 worker")
    }
    assert all(r["ratio"] > 0 for r in rows if "torchvision" in r["case"])  # batched / per-image, same thread
    for r in rows:
        assert {"section", "case", "value", "unit", "ratio", "target", "met"} <= set(r)
        assert r["section"] == "augment" and r["unit"] == "img/s" and r["value"] > 0


@pytest.mark.slow  # ~30 s: the device script's every section on the CPU (make test-slow)
def test_gpu_check_smoke_runs_every_section_on_the_cpu(tmp_path, repo_root):
    """``gpu_check.py --smoke``: the same three sections through ``ssl-bench`` on tiny CPU settings."""
    out = tmp_path / "gpu.json"
    res = subprocess.run(
        [
            sys.executable,
            str(repo_root / "benchmarks" / "gpu_check.py"),
            "--smoke",
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["gpu"] is None and {"command", "torch", "platform", "rows"} <= set(data)
    sections = [r["section"] for r in data["rows"]]
    assert sections.count("epoch") == 4 and sections.count("augment") == 2 and sections.count("simsiam") == 1
    ours = [r for r in data["rows"] if r["section"] == "epoch" and not r["case"].startswith("anchor")]
    assert [r["case"] for r in ours] == ["SimCLR fp32", "SimCLR channels_last + bf16"]
    assert all(r["seconds"] > 0 and r["img_per_s"] > 0 for r in ours)
    curve = next(r for r in data["rows"] if r["section"] == "simsiam")
    assert len(curve["curve"]) == 2 and all(0 <= v <= 100 for v in curve["curve"])
    assert "ssl-bench GPU check" in res.stdout and "11.9 s/epoch" in res.stdout  # the table, anchors included


def test_data_pipeline_benchmark_smoke_run_writes_json(tmp_path, repo_root):
    """benchmarks/data_pipeline.py: every loader case runs on a few generated ImageNet-sized JPEGs."""
    out = tmp_path / "data.json"
    res = subprocess.run(
        [
            sys.executable,
            str(repo_root / "benchmarks" / "data_pipeline.py"),
            "--only",
            "throughput",
            "--workers",
            "1",
            "--images",
            "40",
            "--pass-images",
            "16",
            "--rounds",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert {"command", "machine", "loadavg", "rows"} <= set(data)
    cases = {r["case"] for r in data["rows"]}
    assert {
        "torchvision ImageFolder + PIL + v2 per image, 1 worker",
        "stream (ours), 1 worker",
        "shards (ours), 1 worker",
    } <= cases
    assert all(r["value"] > 0 and r["unit"] == "img/s" for r in data["rows"])
    assert all(r["ratio"] > 0 for r in data["rows"] if not r["case"].startswith("torchvision"))
