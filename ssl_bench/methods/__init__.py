"""Method registry: ``method.name`` -> LightningModule class."""

from ssl_bench.methods.base import DivergedError, SSLMethod, StepOutput
from ssl_bench.methods.byol import BYOL
from ssl_bench.methods.mlm import MLM
from ssl_bench.methods.simclr import SimCLR
from ssl_bench.methods.simsiam import SimSiam

METHODS: dict[str, type] = {"simclr": SimCLR, "byol": BYOL, "simsiam": SimSiam, "mlm": MLM}

__all__ = ["METHODS", "SSLMethod", "StepOutput", "DivergedError", "SimCLR", "BYOL", "SimSiam", "MLM"]
