"""Distributed correctness on CPU: two gloo processes against one process on the whole batch.

One spawn (module fixture) runs every check on 2 ranks and saves each rank's tensors; the tests
compare them in the parent with the single-process reference:
  * SimCLR: ``SimCLR.step`` (negatives gathered across ranks with gradients, ``offset = rank * n``)
    under DDP gives, averaged over ranks, the loss and the gradients of the one-process run on the
    concatenated batch;
  * BYOL: after DDP steps + ``update_momentum`` the online and the target weights are identical on
    both ranks, although each rank built its module from a different seed;
  * MoCo v3 (keys gathered without gradient), Barlow Twins (the cross-correlation of the gathered
    batch), VICReg (variance and covariance of the gathered batch): the real ``step`` on 2 ranks, with
    the gradients averaged as DDP does, gives the loss and the gradients of one process on the whole
    batch; Barlow Twins without the gather does not (the per-rank correlation). DINO's center after an
    update (all-reduced teacher mean) is the one-process center;
  * the gather behind ``LightningModule.all_gather`` returns [world, n, ...] in rank order, so the
    kNN monitor's ``flatten(0, 1)`` is the global batch; Lightning's distributed eval sampler
    gives every rank the same n.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from ssl_bench.methods.barlow_twins import BarlowTwins
from ssl_bench.methods.dino import DINO
from ssl_bench.methods.losses import byol_loss
from ssl_bench.methods.mocov3 import MoCoV3
from ssl_bench.methods.simclr import SimCLR
from ssl_bench.methods.vicreg import VICReg
from ssl_bench.models.momentum import make_target, update_momentum

WORLD = 2
N, D_IN, D_OUT = 4, 6, 5  # per-rank batch, input and projector dims
TEMPERATURE = 0.3


def _inputs() -> tuple[torch.Tensor, torch.Tensor, nn.Linear]:
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(WORLD * N, D_IN, generator=g, dtype=torch.float64)
    x2 = torch.randn(WORLD * N, D_IN, generator=g, dtype=torch.float64)
    torch.manual_seed(1)
    proj = nn.Linear(D_IN, D_OUT).double()
    return x1, x2, proj


def _simclr_step(projector: nn.Module, x1: torch.Tensor, x2: torch.Tensor, gather: bool) -> torch.Tensor:
    """The real ``SimCLR.step`` with an identity backbone and a given projector."""
    stub = SimpleNamespace(
        backbone=nn.Identity(),
        projector=projector,
        mcfg=SimpleNamespace(gather_distributed=gather, temperature=TEMPERATURE, normalize=True),
        split_views=lambda views: (views, []),  # two global views, no small ones
        local_embeddings=lambda local: [],
    )
    return SimCLR.step(stub, [x1, x2]).loss


class _TinyBYOL(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.online = nn.Sequential(nn.Linear(D_IN, 8), nn.ReLU(), nn.Linear(8, D_OUT))
        self.predictor = nn.Linear(D_OUT, D_OUT)
        self.target = make_target(self.online)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t1, t2 = self.target(x1), self.target(x2)
        return byol_loss(self.predictor(self.online(x1)), t2) + byol_loss(self.predictor(self.online(x2)), t1)


def _stub(name: str, gather: bool = True) -> SimpleNamespace:
    """The method's attributes ``step`` reads: an identity backbone, linear heads (the same seed on
    every rank), double precision so that the one- and two-process numbers agree to rounding."""
    torch.manual_seed(2)
    proj = nn.Linear(D_IN, D_OUT).double()
    stub = SimpleNamespace(
        backbone=nn.Identity(),
        projector=proj,
        split_views=lambda views: (views, []),  # two global views, no small ones
        local_embeddings=lambda local: [],
    )
    if name == "mocov3":
        stub.predictor = nn.Linear(D_OUT, D_OUT).double()
        stub.target_backbone, stub.target_projector = nn.Identity(), copy.deepcopy(proj).requires_grad_(False)
        stub.mcfg = SimpleNamespace(momentum_encoder=True, gather_distributed=gather, temperature=0.2)
    elif name == "barlow_twins":
        stub.mcfg = SimpleNamespace(gather_distributed=gather, scale_loss=1.0, lambda_offdiag=5e-3)
    else:
        stub.mcfg = SimpleNamespace(
            gather_distributed=gather, sim_weight=25.0, var_weight=25.0, cov_weight=1.0, var_target=1.0, var_eps=1e-4
        )
    return stub


STEPS = {"mocov3": MoCoV3.step, "barlow_twins": BarlowTwins.step, "vicreg": VICReg.step}
NEWER = [("mocov3", True), ("barlow_twins", True), ("barlow_twins", False), ("vicreg", True)]


def _grads(stub: SimpleNamespace) -> list[torch.Tensor]:
    heads = [stub.projector] + ([stub.predictor] if hasattr(stub, "predictor") else [])
    return [p.grad.clone() for h in heads for p in h.parameters()]


def _flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def _worker(rank: int, init_method: str, out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=WORLD)
    try:
        res: dict[str, torch.Tensor] = {}
        rows = slice(rank * N, (rank + 1) * N)
        x1, x2, proj = _inputs()
        # SimCLR: global negatives, DDP-averaged gradients
        for gather in (True, False):
            p = proj if gather else _inputs()[2]
            ddp = DDP(p)
            a, b = x1[rows].clone().requires_grad_(), x2[rows].clone().requires_grad_()
            loss = _simclr_step(ddp, a, b, gather)
            loss.backward()
            tag = "gather" if gather else "local"
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            res[f"simclr_{tag}_loss"] = mean_loss / WORLD
            res[f"simclr_{tag}_wgrad"] = p.weight.grad.clone()
            res[f"simclr_{tag}_bgrad"] = p.bias.grad.clone()
            res[f"simclr_{tag}_x1grad"], res[f"simclr_{tag}_x2grad"] = a.grad.clone(), b.grad.clone()
        # MoCo v3, Barlow Twins, VICReg: the real step; gradients averaged over ranks as DDP does
        for name, gather in NEWER:
            stub = _stub(name, gather)
            loss = STEPS[name](stub, [x1[rows], x2[rows]]).loss
            loss.backward()
            grads = _grads(stub)
            for g_ in grads:
                dist.all_reduce(g_)
                g_ /= WORLD
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            res[f"{name}_{gather}_loss"] = mean_loss / WORLD
            res[f"{name}_{gather}_grads"] = torch.cat([g_.reshape(-1) for g_ in grads])
        # DINO: the center's EMA of the teacher's mean over every rank
        center = SimpleNamespace(
            center=torch.zeros(1, D_IN, dtype=torch.float64), mcfg=SimpleNamespace(center_momentum=0.9)
        )
        DINO._update_center(center, x1[rows])
        res["dino_center"] = center.center.clone()
        # BYOL: a different seed per rank; DDP broadcasts rank 0's weights (target included)
        torch.manual_seed(100 + rank)
        byol = _TinyBYOL().double()
        res["byol_target_before"] = _flat(byol.target)
        model = DDP(byol)
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
        g = torch.Generator().manual_seed(10 + rank)  # each rank its own data
        for _ in range(3):
            loss = model(
                torch.randn(N, D_IN, generator=g, dtype=torch.float64),
                torch.randn(N, D_IN, generator=g, dtype=torch.float64),
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            update_momentum(byol.online, byol.target, 0.9)
        for name, m in (("online", byol.online), ("predictor", byol.predictor), ("target", byol.target)):
            flat = _flat(m)
            gathered = [torch.empty_like(flat) for _ in range(WORLD)]
            dist.all_gather(gathered, flat)
            res[f"byol_{name}"] = torch.stack(gathered)
        # the gather behind LightningModule.all_gather (DDPStrategy -> _all_gather_ddp_if_available)
        from lightning_fabric.utilities.distributed import _all_gather_ddp_if_available

        feats = torch.arange(3 * 2, dtype=torch.float32).reshape(3, 2) + 100 * rank
        labels = torch.tensor([rank, rank, rank])
        res["gather_feats"] = _all_gather_ddp_if_available(feats)
        res["gather_labels"] = _all_gather_ddp_if_available(labels)
        torch.save(res, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(f"file://{out / 'store'}", str(out)), nprocs=WORLD, join=True)  # no port to race for
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


def test_simclr_gathered_loss_and_gradients_match_one_process(ranks):
    x1, x2, proj = _inputs()
    a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    ref_loss = _simclr_step(proj, a, b, gather=True)  # one process: no process group, whole batch
    ref_loss.backward()
    for rank, res in enumerate(ranks):
        rows = slice(rank * N, (rank + 1) * N)
        torch.testing.assert_close(res["simclr_gather_loss"], ref_loss.detach(), rtol=1e-10, atol=1e-12)
        # DDP averages parameter gradients over ranks: equal to the one-process gradient
        torch.testing.assert_close(res["simclr_gather_wgrad"], proj.weight.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(res["simclr_gather_bgrad"], proj.bias.grad, rtol=1e-10, atol=1e-12)
        # an input's gradient sums every rank's loss through the gather: WORLD x d(mean loss)/dx
        torch.testing.assert_close(res["simclr_gather_x1grad"] / WORLD, a.grad[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(res["simclr_gather_x2grad"] / WORLD, b.grad[rows], rtol=1e-10, atol=1e-12)


def test_simclr_without_gather_uses_local_negatives_only(ranks):
    """The control: ``gather_distributed=false`` is the mean of per-rank losses, not the global one."""
    x1, x2, proj = _inputs()
    local = (
        sum(_simclr_step(proj, x1[r * N : (r + 1) * N], x2[r * N : (r + 1) * N], gather=False) for r in range(WORLD))
        / WORLD
    )
    whole = _simclr_step(proj, x1, x2, gather=False)
    assert ranks[0]["simclr_local_loss"].item() == pytest.approx(local.item(), rel=1e-10)
    assert abs(local.item() - whole.item()) > 1e-3


@pytest.mark.parametrize(("name", "gather"), NEWER[:2] + NEWER[3:])
def test_newer_methods_gathered_loss_and_gradients_match_one_process(ranks, name, gather):
    x1, x2, _ = _inputs()
    stub = _stub(name)
    ref = STEPS[name](stub, [x1, x2]).loss  # one process: no process group, the whole batch
    ref.backward()
    want = torch.cat([g.reshape(-1) for g in _grads(stub)])
    for res in ranks:
        torch.testing.assert_close(res[f"{name}_{gather}_loss"], ref.detach(), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(res[f"{name}_{gather}_grads"], want, rtol=1e-9, atol=1e-12)


def test_barlow_twins_without_the_gather_is_the_per_rank_correlation(ranks):
    """The control (lightly #1977's bug): each rank's own correlation is not the global batch's."""
    x1, x2, _ = _inputs()
    whole = STEPS["barlow_twins"](_stub("barlow_twins"), [x1, x2]).loss
    local = (
        sum(
            STEPS["barlow_twins"](_stub("barlow_twins", False), [x1[r * N : (r + 1) * N], x2[r * N : (r + 1) * N]]).loss
            for r in range(WORLD)
        )
        / WORLD
    )
    assert ranks[0]["barlow_twins_False_loss"].item() == pytest.approx(local.item(), rel=1e-10)
    assert abs(local.item() - whole.item()) > 1e-3


def test_dino_center_is_the_mean_over_every_rank(ranks):
    x1, _, _ = _inputs()
    stub = SimpleNamespace(center=torch.zeros(1, D_IN, dtype=torch.float64), mcfg=SimpleNamespace(center_momentum=0.9))
    DINO._update_center(stub, x1)
    for res in ranks:
        torch.testing.assert_close(res["dino_center"], stub.center, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(stub.center, 0.1 * x1.mean(0, keepdim=True))


def test_byol_online_and_target_identical_on_every_rank(ranks):
    assert not torch.equal(ranks[0]["byol_target_before"], ranks[1]["byol_target_before"])  # built apart
    for name in ("online", "predictor", "target"):
        gathered = ranks[0][f"byol_{name}"]
        torch.testing.assert_close(gathered[0], gathered[1], rtol=0, atol=0)
        torch.testing.assert_close(ranks[1][f"byol_{name}"], gathered, rtol=0, atol=0)
    online, target = ranks[0]["byol_online"][0], ranks[0]["byol_target"][0]
    assert not torch.equal(online, target)  # tau < 1: the target lags
    assert not torch.equal(target, ranks[0]["byol_target_before"])  # ... but it moved


def test_all_gather_is_world_major_so_flatten_gives_the_global_batch(ranks):
    feats, labels = ranks[0]["gather_feats"], ranks[0]["gather_labels"]
    assert feats.shape == (WORLD, 3, 2) and labels.shape == (WORLD, 3)
    base = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    torch.testing.assert_close(feats.flatten(0, 1), torch.cat([base + 100 * r for r in range(WORLD)]))
    assert labels.flatten(0, 1).tolist() == [0, 0, 0, 1, 1, 1]


def test_distributed_eval_sampler_gives_every_rank_the_same_count():
    """What Lightning puts under the val loaders on several devices (a DistributedSampler without
    shuffling): it pads an uneven split by repeating samples, so every rank holds the same n and
    ``all_gather`` + ``flatten(0, 1)`` is well defined (at most world - 1 samples appear twice)."""
    from torch.utils.data import DistributedSampler

    data = list(range(7))
    parts = [list(DistributedSampler(data, num_replicas=WORLD, rank=r, shuffle=False)) for r in range(WORLD)]
    assert [len(p) for p in parts] == [4, 4]
    assert sorted(set(parts[0]) | set(parts[1])) == data
