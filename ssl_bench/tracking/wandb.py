"""W&B wiring: offline automatically without credentials, online with them, never a prompt, never a
hang: when the server cannot be reached or refuses the key within ``logger.init_timeout`` seconds,
the run logs offline instead (one warning with the ``wandb sync`` command for later)."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("ssl_bench")
DEFAULT_INIT_TIMEOUT = 30.0


def has_credentials() -> bool:
    """True when W&B could authenticate without asking: an API key or identity token in the
    environment, or a netrc entry for the W&B host (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    path = os.environ.get("NETRC", str(Path.home() / ".netrc"))
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode(mode: str) -> str:
    """``auto`` -> ``WANDB_MODE`` if set, else ``online`` with credentials, else ``offline``."""
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled"):
        return env
    return "online" if has_credentials() else "offline"


def run_settings(init_timeout: float = DEFAULT_INIT_TIMEOUT) -> Any:
    """How every ssl-bench W&B run is opened: no console capture, quiet, no system stats, a bounded
    start (offline runs start at once)."""
    import wandb

    return wandb.Settings(console="off", silent=True, init_timeout=float(init_timeout), x_disable_stats=True)


def build_logger(cfg: DictConfig, save_dir: str, run_name: str, run_id: str | None = None) -> Any:
    """The Lightning logger chosen by ``logger.name``: wandb | csv | none (returns False)."""
    lc = cfg.logger
    if lc.name == "none":
        return False
    if lc.name == "csv":
        from pytorch_lightning.loggers import CSVLogger

        return CSVLogger(save_dir=save_dir, name="csv", version="")
    from pytorch_lightning.loggers import WandbLogger

    timeout = float(lc.get("init_timeout", DEFAULT_INIT_TIMEOUT))

    def make(mode: str) -> Any:
        return WandbLogger(
            name=run_name,
            save_dir=save_dir,
            project=lc.project,
            entity=lc.entity,
            group=lc.group,
            tags=list(lc.tags),
            job_type=lc.job_type,
            notes=lc.notes,
            id=run_id,
            resume="allow",  # with run_id: continue that run (resume=auto), else a new one
            mode=mode,
            config=OmegaConf.to_container(cfg, resolve=True),
            settings=run_settings(timeout),
        )

    mode = resolve_mode(lc.mode)
    logger = make(mode)
    if mode != "online":
        return logger
    try:
        _ = logger.experiment  # opens the run now (rank 0), so a dead server is found before training
    except Exception as err:  # no network, a refused key, a timeout: all end the same way
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        logger = make("offline")
        where = wandb_info(logger) or {}
        log.warning(
            "W&B: cannot log online (%s: %s); logging offline instead. Upload later with: wandb sync %s",
            type(err).__name__,
            first[:200],
            where.get("dir", save_dir),
        )
    return logger


def _run(logger: Any) -> Any:
    """The wandb run behind a WandbLogger; None for other loggers and on the non-zero ranks of a
    multi-process run (their experiment is Lightning's stand-in, rank 0 logs)."""
    if logger is False or type(logger).__name__ != "WandbLogger":
        return None
    run = logger.experiment
    return run if hasattr(run, "settings") and not callable(run.settings) else None


def wandb_info(logger: Any) -> dict[str, Any] | None:
    """Where the W&B run lives (for the record and the end-of-run summary)."""
    run = _run(logger)
    if run is None:
        return None
    offline = bool(getattr(run.settings, "_offline", False)) or run.settings.mode == "offline"
    return {
        "id": run.id,
        "mode": "offline" if offline else run.settings.mode,
        "project": run.project,
        "group": run.group or None,
        "dir": str(Path(run.dir).parent),
        "url": None if offline else run.url,
    }


def finish(logger: Any, summary: dict[str, Any], exit_code: int) -> None:
    """Write final/best metrics to the run summary and close the run (also after a failure). Other
    loggers (csv) get the summary's numbers as one last row."""
    if logger is False:
        return
    if type(logger).__name__ != "WandbLogger":
        numbers = {k: float(v) for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numbers and getattr(logger, "log_metrics", None):
            logger.log_metrics(numbers)
            logger.save()
        return
    run = _run(logger)
    if run is None:
        return
    run.summary.update(summary)
    run.finish(exit_code=exit_code)
