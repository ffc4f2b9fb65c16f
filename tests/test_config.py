import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ssl_bench.config import ConfigError, config_dir, validate

CONF = Path(config_dir())
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and any(p.glob("*.yaml")))
# groups of the primary defaults list; the others (study blocks, a study's paired settings) are pulled in
# by experiments, so a lone option is added with +group=option
PRIMARY = {
    next(iter(d)) for d in OmegaConf.to_container(OmegaConf.load(CONF / "config.yaml").defaults) if isinstance(d, dict)
}
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((CONF / g).glob("*.yaml"))]


def _compose(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_config_file_composes_and_validates(group, option):
    # text corpora need the text method (method=mlm brings data=text_embedded by itself)
    extra = ["method=mlm"] if group == "data" and option.startswith("text_") else []
    extra += ["data.root=/data/images"] if (group, option) == ("data", "imagefolder") else []  # required key
    cfg = _compose(*extra, f"{group}={option}" if group in PRIMARY else f"+{group}={option}")
    validate(cfg)


def test_groups_mirror_the_code():
    assert {"method", "backbone", "data", "augment", "optim", "trainer", "logger", "eval"} <= set(GROUPS)


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["+method.tempreature=0.1"], "unknown key 'method.tempreature'. Did you mean 'method.temperature'?"),
        (["method.name=moco"], "method.name='moco' is not allowed; allowed: simclr, byol, simsiam"),
        (["optim.base_lr=-0.1"], "optim.base_lr=-0.1 is out of range; allowed: > 0"),
        (["data.batch_size=0"], "data.batch_size=0 is out of range; allowed: >= 1"),
        (["data.batch_size=512", "data.train_size=100"], "data.batch_size=512 is larger than data.train_size=100"),
        (["method=byol", "method.tau_base=1.5"], "method.tau_base=1.5 is out of range; allowed: >= 0 and <= 1"),
        (["optim.name=adam"], "optim.name='adam' is not allowed; allowed: sgd, lars, adamw"),
        (["augment.blur_p=[1.0,0.1,0.2]"], "augment.blur_p=[1.0, 0.1, 0.2] has 3 entries"),
        (["method.temperature=abc"], "method.temperature"),
        (["method=simsiam", "method.predictor_head.out_dim=7"], "must equal method.projector.out_dim"),
    ],
)
def test_bad_config_gives_one_clear_message(overrides, needle):
    with pytest.raises(ConfigError) as err:
        validate(_compose(*overrides))
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_rejects_bad_value_before_any_work(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_bench.app", "optim.base_lr=-1", f"hydra.run.dir={tmp_path}/run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "config error: optim.base_lr=-1 is out of range; allowed: > 0" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "record.json").exists()


def test_cli_prints_composed_config():
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_bench.app", "--cfg", "job", "method=byol"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "tau_base: 0.8" in proc.stdout and "name: byol" in proc.stdout


def test_unknown_method_option_lists_the_choices():
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_bench.app", "method=moco"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "Available options in 'method'" in proc.stderr and "simsiam" in proc.stderr
