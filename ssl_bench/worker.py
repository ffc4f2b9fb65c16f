"""A local rank that ``ssl-bench trainer.devices=N`` started: ``python -m ssl_bench.worker SPEC``.

It runs the job rank 0 described in ``SPEC`` (its resolved config, folder, overrides and name) as one
rank of the process group; rank 0 writes the record, the checkpoints and the W&B run, reports errors
and prints the summary, so this process stays quiet.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(spec_path: str) -> int:
    from omegaconf import OmegaConf

    from ssl_bench.errors import UserError
    from ssl_bench.tracking.lifecycle import Interrupted
    from ssl_bench.train import execute

    spec = json.loads(Path(spec_path).read_text())
    cfg = OmegaConf.create(spec["config"])
    try:
        execute(cfg, spec["out_dir"], spec["overrides"], spec["name"], spec["sweep_job"])
    except Interrupted as err:
        return err.exit_code
    except UserError:
        return 2  # rank 0 reports it
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
