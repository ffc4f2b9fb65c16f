"""The method registry: the one place a method is named.

Adding a method is one module under ``ssl_bench/methods/`` (its LightningModule), one loss in
``ssl_bench/methods/losses.py``, one ``conf/method/<name>.yaml`` and one entry here: its config schema
(defined beside the entry), its class as an import path and its modality. Config validation, checkpoint
loading, the training entry point, the README's and the site's method table and the tests read this registry.

Nothing here imports torch: ``ssl-bench`` validates a config (and reports a typo in one line) before
torch is loaded; ``MethodSpec.load`` imports the class when a run starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ssl_bench.errors import ConfigError
from ssl_bench.schema import Head, choice, num


# --- config schemas (one per method; every key the paper ablates, with the paper's value in the yaml) ----
@dataclass
class SimCLR:
    name: str = "simclr"
    temperature: float = num(0.5, lo=0, lo_open=True)
    normalize: bool = True
    gather_distributed: bool = True
    projector: Head = field(default_factory=Head)


@dataclass
class BYOL:
    name: str = "byol"
    tau_base: float = num(0.99, lo=0, hi=1)
    tau_schedule: str = choice("cosine", "cosine", "constant")
    predictor: str = choice("mlp", "mlp", "none", "frozen_random")
    symmetric: bool = True
    projector: Head = field(default_factory=Head)
    predictor_head: Head = field(default_factory=Head)


@dataclass
class SimSiam:
    name: str = "simsiam"
    stop_grad: bool = True
    predictor: str = choice("mlp", "mlp", "none", "frozen_random")
    predictor_fixed_lr: bool = True
    symmetric: bool = True
    projector: Head = field(default_factory=Head)
    predictor_head: Head = field(default_factory=Head)


@dataclass
class MoCoV3:
    name: str = "mocov3"
    temperature: float = num(0.2, lo=0, lo_open=True)
    tau_base: float = num(0.99, lo=0, hi=1)
    tau_schedule: str = choice("cosine", "cosine", "constant")
    momentum_encoder: bool = True
    predictor: str = choice("mlp", "mlp", "none", "frozen_random")
    gather_distributed: bool = True
    projector: Head = field(default_factory=Head)
    predictor_head: Head = field(default_factory=Head)


@dataclass
class BarlowTwins:
    name: str = "barlow_twins"
    lambda_offdiag: float = num(5e-3, lo=0)
    scale_loss: float = num(1.0, lo=0, lo_open=True)
    gather_distributed: bool = True
    projector: Head = field(default_factory=Head)


@dataclass
class VICReg:
    name: str = "vicreg"
    sim_weight: float = num(25.0, lo=0)
    var_weight: float = num(25.0, lo=0)
    cov_weight: float = num(1.0, lo=0)
    var_target: float = num(1.0, lo=0, lo_open=True)
    var_eps: float = num(1e-4, lo=0, lo_open=True)
    gather_distributed: bool = True
    projector: Head = field(default_factory=Head)


@dataclass
class DINOHead:
    """DINO's head: an MLP to a bottleneck, l2-normalised, then a weight-normalised linear layer."""

    num_layers: int = num(3, lo=1)
    hidden_dim: int = num(2048, lo=1)
    bottleneck_dim: int = num(256, lo=1)
    use_bn: bool = False
    norm_last_layer: bool = True


@dataclass
class DINO:
    name: str = "dino"
    out_dim: int = num(65536, lo=2)
    centering: bool = True
    center_momentum: float = num(0.9, lo=0, hi=1)
    sharpening: bool = True
    student_temp: float = num(0.1, lo=0, lo_open=True)
    teacher_temp: float = num(0.07, lo=0, lo_open=True)
    warmup_teacher_temp: float = num(0.04, lo=0, lo_open=True)
    warmup_teacher_temp_epochs: int = num(30, lo=0)
    tau_base: float = num(0.996, lo=0, hi=1)
    tau_schedule: str = choice("cosine", "cosine", "constant")
    freeze_last_layer_epochs: int = num(1, lo=0)
    uniform_entropy: float = num(0.99, lo=0, hi=1)
    dominant_entropy: float = num(0.2, lo=0, hi=1)
    head: DINOHead = field(default_factory=DINOHead)


@dataclass
class MLM:
    """RoBERTa-style masked LM (``method=mlm`` tiny / ``method=mlm_base``); the corpus, tokenizer and
    packing are ``data.*`` (``data=text_embedded`` / ``text_files``)."""

    name: str = "mlm"
    hidden_size: int = num(128, lo=1)
    num_layers: int = num(2, lo=1)
    num_heads: int = num(4, lo=1)
    intermediate_size: int = num(512, lo=1)
    hidden_dropout: float = num(0.0, lo=0, hi=1)
    attention_dropout: float = num(0.0, lo=0, hi=1)
    initializer_range: float = num(0.02, lo=0, lo_open=True)
    mask_prob: float = num(0.15, lo=0, hi=1, lo_open=True)
    mask_token_prob: float = num(0.8, lo=0, hi=1)
    random_token_prob: float = num(0.1, lo=0, hi=1)
    masking: str = choice("dynamic", "dynamic", "static")
    static_copies: int = num(10, lo=1)
    export: bool = True


# --- cross-key checks (a key's own range is in its schema) ------------------------------------------------
def _predictor_matches_projector(m: Any) -> None:
    proj, pred = m.projector, m.predictor_head
    if m.predictor != "none" and pred.out_dim != proj.out_dim:
        raise ConfigError(
            f"method.predictor_head.out_dim={pred.out_dim} must equal method.projector.out_dim={proj.out_dim}"
        )


def _has_projector(m: Any) -> None:
    if m.projector.type == "none":
        raise ConfigError(f"method.projector.type=none is not allowed for method={m.name}: its loss needs a projector")


def _mlm_checks(m: Any) -> None:
    if (total := m.mask_token_prob + m.random_token_prob) > 1:
        raise ConfigError(f"method.mask_token_prob + method.random_token_prob = {total:g} must be <= 1")
    if m.hidden_size % m.num_heads:
        raise ConfigError(f"method.hidden_size={m.hidden_size} must be a multiple of method.num_heads={m.num_heads}")


@dataclass(frozen=True)
class MethodSpec:
    """One method: what validates it, what runs it, and what the README's methods table says of it."""

    name: str
    schema: type
    cls: str  # "module:Class", imported when a run starts
    modality: str  # image | text
    family: str
    paper: str
    loss: str
    collapse_switch: str  # the override that makes the paper's collapse happen ("" when none)
    ablated: tuple[str, ...]  # the keys the paper ablates
    recipe: str = ""  # the recipe with published numbers
    published: str = ""  # the published number of that recipe
    multicrop: bool = False  # its loss pairs augment.local_crops small views with the global ones (multicrop.py)
    check: Callable[[Any], None] | None = None
    smoke: tuple[str, ...] = ()  # overrides that shrink its heads for a seconds-long run (tests, docs)

    def load(self) -> type:
        module, _, attr = self.cls.partition(":")
        return getattr(importlib.import_module(module), attr)


_SMALL_PROJECTOR = ("method.projector.hidden_dim=64", "method.projector.out_dim=32")
_SMALL_PREDICTOR = (*_SMALL_PROJECTOR, "method.predictor_head.hidden_dim=64")

REGISTRY: dict[str, MethodSpec] = {
    s.name: s
    for s in (
        MethodSpec(
            "simclr", SimCLR, "ssl_bench.methods.simclr:SimCLR", "image",
            family="contrastive", paper="Chen et al. 2020", loss="NT-Xent over the global batch",
            collapse_switch="", ablated=("temperature", "normalize", "projector.type"),
            recipe="cifar10_simclr", published="90.7 (solo-learn, 1000 ep)", multicrop=True,
            smoke=_SMALL_PROJECTOR,
        ),
        MethodSpec(
            "byol", BYOL, "ssl_bench.methods.byol:BYOL", "image",
            family="self-distillation (EMA target)", paper="Grill et al. 2020", loss="2 - 2 cos(p, z_target)",
            collapse_switch="method.tau_base=0", ablated=("tau_base", "predictor", "symmetric"),
            recipe="cifar10_byol", published="92.6 (solo-learn, 1000 ep)", multicrop=True,
            check=_predictor_matches_projector, smoke=_SMALL_PREDICTOR,
        ),
        MethodSpec(
            "simsiam", SimSiam, "ssl_bench.methods.simsiam:SimSiam", "image",
            family="self-distillation (stop-gradient)", paper="Chen & He 2021", loss="-cos(p, sg(z))",
            collapse_switch="method.stop_grad=false", ablated=("stop_grad", "predictor", "predictor_fixed_lr"),
            recipe="cifar10_simsiam", published="90.5 (solo-learn, 1000 ep)", multicrop=True,
            check=_predictor_matches_projector, smoke=_SMALL_PREDICTOR,
        ),
        MethodSpec(
            "mocov3", MoCoV3, "ssl_bench.methods.mocov3:MoCoV3", "image",
            family="contrastive (momentum encoder)", paper="Chen, Xie & He 2021",
            loss="symmetrised InfoNCE, keys gathered over ranks",
            collapse_switch="", ablated=("tau_base", "momentum_encoder", "temperature", "predictor"),
            recipe="cifar10_mocov3", published="93.1 (solo-learn, 1000 ep)", multicrop=True,
            check=_predictor_matches_projector, smoke=_SMALL_PREDICTOR,
        ),
        MethodSpec(
            "barlow_twins", BarlowTwins, "ssl_bench.methods.barlow_twins:BarlowTwins", "image",
            family="redundancy reduction", paper="Zbontar et al. 2021",
            loss="cross-correlation to identity over the global batch",
            collapse_switch="", ablated=("lambda_offdiag", "projector.hidden_dim", "projector.out_dim"),
            recipe="cifar10_barlow_twins", published="92.1 (solo-learn, 1000 ep)", multicrop=True, check=_has_projector,
            smoke=_SMALL_PROJECTOR,
        ),
        MethodSpec(
            "vicreg", VICReg, "ssl_bench.methods.vicreg:VICReg", "image",
            family="variance-invariance-covariance", paper="Bardes, Ponce & LeCun 2022",
            loss="25 MSE + 25 variance hinge + 1 covariance",
            collapse_switch="method.var_weight=0", ablated=("sim_weight", "var_weight", "cov_weight"),
            recipe="cifar10_vicreg", published="92.1 (solo-learn, 1000 ep)", multicrop=True, check=_has_projector,
            smoke=_SMALL_PROJECTOR,
        ),
        MethodSpec(
            "dino", DINO, "ssl_bench.methods.dino:DINO", "image",
            family="self-distillation (centering + sharpening)", paper="Caron et al. 2021",
            loss="cross-entropy to a centred, sharpened EMA teacher",
            collapse_switch="method.centering=false",
            ablated=("centering", "sharpening", "teacher_temp", "center_momentum", "out_dim"),
            recipe="cifar10_dino", published="89.5 (solo-learn, 1000 ep)", multicrop=True,
            smoke=("method.out_dim=64", "method.head.hidden_dim=64", "method.head.bottleneck_dim=32"),
        ),
        MethodSpec(
            "mlm", MLM, "ssl_bench.methods.mlm:MLM", "text",
            family="masked language model", paper="Liu et al. 2019 (RoBERTa)", loss="masked-token cross-entropy",
            collapse_switch="", ablated=("mask_prob", "masking", "data.batch_size"), check=_mlm_checks,
            smoke=(
                "method.hidden_size=32", "method.num_layers=1", "method.num_heads=2", "method.intermediate_size=64",
                "data.vocab_size=512", "data.max_length=64", "data.batch_size=16", "data.eval_batch_size=64",
            ),
        ),
    )
}  # fmt: skip


def method_schemas() -> dict[str, type]:
    """``method.name`` -> its config schema."""
    return {name: spec.schema for name, spec in REGISTRY.items()}


def image_methods() -> list[str]:
    return [n for n, s in REGISTRY.items() if s.modality == "image"]


def check_method(method: Any) -> None:
    """The registry entry's cross-key checks for a (schema-checked) ``method`` config node."""
    spec = REGISTRY[method.name]
    if spec.check is not None:
        spec.check(method)


def methods_table() -> str:
    """The README's methods table (markdown), from the registry."""
    rows = [
        "| method | modality | family | paper | loss | collapse switch | ablated (`method.*` unless named) | recipe "
        "| published |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in REGISTRY.values():
        cells = [
            f"`{s.name}`",
            s.modality,
            s.family,
            s.paper,
            s.loss,
            f"`{s.collapse_switch}`" if s.collapse_switch else "-",
            ", ".join(f"`{k}`" for k in s.ablated),
            f"`recipe={s.recipe}`" if s.recipe else "-",
            s.published or "-",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
