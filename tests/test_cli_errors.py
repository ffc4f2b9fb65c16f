"""Bad input through ``ssl-bench`` (run in this process): one line ``ssl-bench: <kind>: ...``, exit code
2, before any work (no W&B run, no random-init evaluation); booleans where a choice lists them."""

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from ssl_bench import app
from ssl_bench.config import ConfigError, config_dir, validate
from tests.conftest import TINY, isolate_wandb, make_cfg

METHOD_OPTIONS = sorted(p.stem for p in (Path(config_dir()) / "method").glob("*.yaml"))  # what Hydra lists

FAST = [o for o in TINY if not o.startswith("logger")] + ["logger=wandb", "logger.mode=offline"]


def ssl_bench(capsys, tmp_path, *args):
    """``ssl-bench ARGS`` in this process: (exit code, stderr lines that are ours, stdout)."""
    with pytest.MonkeyPatch.context() as mp:
        isolate_wandb(mp, tmp_path / "home")
        mp.chdir(tmp_path)
        mp.setattr(sys, "argv", ["ssl-bench", *args, "hydra.run.dir=run"])
        try:
            app.main()
            code = 0
        except SystemExit as exc:
            code = exc.code
    out = capsys.readouterr()
    return code, [ln for ln in out.err.splitlines() if ln.startswith("ssl-bench:")], out.out


def _no_work(tmp_path):
    """No W&B run opened, no checkpoint, no random-init evaluation."""
    from ssl_bench.tracking.record import load_record

    run = tmp_path / "run"
    assert not (run / "wandb").exists() and not list(run.glob("checkpoints/*"))
    if (run / "record.json").exists():
        assert load_record(run)["init"] == {}


def _corpus(tmp_path, case):
    p = tmp_path / "corpus.txt"
    if case == "missing":
        return tmp_path / "nope.txt", "no such file or folder"
    content = {
        "empty": b"\n\n  \n",
        "binary": b"abc\x00def\n\nxyz\n",
        "not_utf8": b"caf\xe9\n\nmore text\n",
        "one_document": b"one line\nanother line\n",
    }[case]
    p.write_bytes(content)
    return p, {
        "empty": "hold no text",
        "binary": "is binary",
        "not_utf8": "is not UTF-8",
        "one_document": "needs at least 2",
    }[case]


@pytest.mark.parametrize("case", ["missing", "empty", "binary", "not_utf8", "one_document"])
def test_corpus_errors_are_one_line_before_any_work(capsys, tmp_path, case):
    path, needle = _corpus(tmp_path, case)
    code, lines, out = ssl_bench(
        capsys,
        tmp_path,
        "method=mlm",
        "data=text_files",
        f"data.paths=[{path}]",
        "trainer.max_epochs=1",
        "logger=wandb",
        "logger.mode=offline",
    )
    assert code == 2 and len(lines) == 1 and lines[0].startswith("ssl-bench: data error: "), lines
    assert needle in lines[0]
    _no_work(tmp_path)


def test_every_image_corrupt_is_one_line(capsys, tmp_path):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            folder = tmp_path / "imgs" / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}.jpg").write_bytes(b"not a jpeg")
    image_args = [o for o in FAST if not o.startswith("data.")]
    code, lines, _ = ssl_bench(
        capsys,
        tmp_path,
        *image_args,
        "data=imagefolder",
        f"data.root={tmp_path / 'imgs'}",
        "data.cache_dir=null",
        "data.decode_workers=0",
        "data.batch_size=2",
    )
    assert code == 2 and len(lines) == 1 and "data error: none of the" in lines[0] and "could be read" in lines[0]
    _no_work(tmp_path)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["trainer.max_epoch=1"], "config error: unknown key 'trainer.max_epoch'. Did you mean 'trainer.max_epochs'?"),
        (["method=byol", "method.tau_bse=0.9"], "Did you mean 'method.tau_base'?"),
        (["trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 trains nothing"),
        (["trainer.devices=0"], "trainer.devices=0 is not allowed"),
        (["trainer=gpu"], "no CUDA GPU is visible here"),
        (["method=moco"], "Could not find 'method/moco'; Available options in 'method': " + ", ".join(METHOD_OPTIONS)),
    ],
)
def test_config_errors_are_one_line(capsys, tmp_path, args, needle):
    if "trainer=gpu" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is visible here")
    code, lines, _ = ssl_bench(capsys, tmp_path, *FAST, *args)
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines
    _no_work(tmp_path)


def test_booleans_are_accepted_where_a_choice_lists_them(tmp_path):
    for value, expected in (("true", "true"), ("false", "false"), ("auto", "auto")):
        cfg = make_cfg("data=imagefolder", f"data.root={tmp_path}", f"data.labels={value}", tiny=False)
        assert cfg.data.labels == expected  # the string the loader compares
    with pytest.raises(ConfigError, match="data.labels='maybe' is not allowed"):
        make_cfg("data=imagefolder", f"data.root={tmp_path}", "data.labels=maybe", tiny=False)


def test_limit_train_batches_must_train_something():
    for bad in ("0", "0.0", "1.5", "-3"):
        with pytest.raises(ConfigError, match="trains nothing"):
            make_cfg(f"trainer.limit_train_batches={bad}")
    assert validate(make_cfg("trainer.limit_train_batches=0.5")) is None
    assert validate(make_cfg("trainer.limit_train_batches=3")) is None


def test_run_summary_prints_brackets_as_text():
    from ssl_bench.ui import run_summary

    record = {
        "name": "mlm-data.paths=[corpus.txt]-[/]-[bold]x",
        "method": "mlm",
        "status": "finished",
        "error": None,
        "init": {"ppl": 900.0},
        "final": {"ppl": 250.0, "unigram_ppl": 500.0},
        "best": {},
        "timings": {"wall_s": 1.0, "seq_per_s": 10.0},
        "checkpoint": None,
        "export": None,
        "wandb": None,
    }
    buf = io.StringIO()
    Console(file=buf, width=200).print(run_summary(record, Path("runs/x")))
    assert "mlm-data.paths=[corpus.txt]-[/]-[bold]x" in buf.getvalue()


def test_path_overrides_with_equals_and_commas_are_quoted():
    from ssl_bench.cli import quote_paths, swept_keys

    assert quote_paths(["source=multirun/s/method=byol,seed=1", "seed=0,1", "resume=a'b=c"]) == [
        "source='multirun/s/method=byol,seed=1'",
        "seed=0,1",
        "resume='a\\'b=c'",
    ]
    assert quote_paths(["source='already'", "hydra.run.dir=runs/x"]) == ["source='already'", "hydra.run.dir=runs/x"]
    assert swept_keys(
        ["-m", "seed=0,1", "method.temperature=range(1,3)", "data.paths=[a,b]", "x=1", "hydra.sweep.dir=a,b"]
    ) == {"seed", "method.temperature"}


@pytest.mark.parametrize("value", ["-1", "abc", "99999999999"])
def test_a_seed_outside_0_to_2_32_is_a_config_error_before_any_work(capsys, tmp_path, value):
    """numpy and torch take seeds in [0, 2**32 - 1]: anything else is refused up front."""
    code, lines, out = ssl_bench(capsys, tmp_path, *FAST, f"seed={value}")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("ssl-bench: config error: "), lines
    assert "seed" in lines[0] and value in lines[0], lines
    assert not (tmp_path / "run" / "record.json").exists()  # no record: nothing started
    _no_work(tmp_path)
