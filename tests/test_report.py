"""The one-line-per-run table: a single run folder, or any folder with --runs."""

import json

from ssl_bench.report.cli import main
from ssl_bench.report.table import collect, to_csv, to_markdown


def _write(path, **kw):
    path.mkdir(parents=True)
    rec = {
        "method": "simclr",
        "status": "finished",
        "overrides": [],
        "epochs": [{"val/online_probe_acc": 0.5}],
        "init": {"knn_acc": 0.3, "linear_acc": 0.4, "z_std_ratio": 0.1, "rankme": 80.0},
        "final": {"knn_acc": 0.6, "linear_acc": 0.8, "z_std_ratio": 0.9, "rankme": 50.0},
        "best": {},
        "timings": {"train_s": 10.0, "img_per_s": 1000.0},
        "error": None,
    }
    rec.update(kw)
    (path / "record.json").write_text(json.dumps(rec))


def test_every_record_appears_whatever_its_status(tmp_path, capsys):
    _write(tmp_path / "0_method=simclr")
    _write(
        tmp_path / "1_method=byol",
        method="byol",
        status="failed",
        final={},
        epochs=[],
        error={"type": "RuntimeError", "message": "boom"},
    )
    _write(
        tmp_path / "2_method=simsiam",
        method="simsiam",
        status="collapsed",
        final={"knn_acc": 0.12, "linear_acc": 0.2, "z_std_ratio": 0.003, "rankme": 7.0},
    )
    rows = collect(tmp_path)
    assert [r["status"] for r in rows] == ["finished", "failed", "collapsed", "-"]
    assert rows[-1]["run"] == "random init" and rows[-1]["knn_acc"] == 0.3
    md = to_markdown(rows)
    assert "| 0_method=simclr | simclr | finished | 60.0 | 80.0 | 50.0 |" in md
    assert "| 1_method=byol | byol | failed | - |" in md
    assert "boom" in to_csv(rows)
    assert main([str(tmp_path), "--format", "md", "--runs"]) == 0  # one line per run of a sweep
    out = capsys.readouterr().out
    assert "| 2_method=simsiam | simsiam | collapsed | 12.0 |" in out and "| random init |" in out


def test_random_init_row_with_knn_only(tmp_path):
    """Records whose random-init evaluation has kNN only (eval.linear off) still get the row."""
    _write(tmp_path / "a", init={"knn_acc": 0.2})
    _write(tmp_path / "b", init={"knn_acc": 0.4})
    rows = collect(tmp_path)
    assert abs(rows[-1]["knn_acc"] - 0.3) < 1e-12
    assert rows[-1]["linear_acc"] is None and "| random init | - | - | 30.0 | - |" in to_markdown(rows)


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no record.json under" in capsys.readouterr().err
