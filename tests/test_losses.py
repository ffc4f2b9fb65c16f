import math

import torch
import torch.nn.functional as F

from ssl_bench.methods.losses import byol_loss, negative_cosine, nt_xent


def test_nt_xent_matches_hand_computed_value():
    # two samples, 2-d unit vectors: z1 = [e1, e2], z2 = [e1, e2] rotated by 90 degrees
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    t = 0.5
    # anchor z1[0] = (1,0): positive z2[0] = (0,1) sim 0; negatives z1[1] (0,1) sim 0, z2[1] (-1,0) sim -1
    l0 = -math.log(math.exp(0 / t) / (math.exp(0 / t) + math.exp(0 / t) + math.exp(-1 / t)))
    # anchor z1[1] = (0,1): positive z2[1] (-1,0) sim 0; negatives z1[0] sim 0, z2[0] (0,1) sim 1
    l1 = -math.log(math.exp(0) / (math.exp(0) + math.exp(0) + math.exp(1 / t)))
    # anchor z2[0] = (0,1): positive z1[0] sim 0; negatives z1[1] sim 1, z2[1] sim 0
    l2 = -math.log(1 / (1 + math.exp(1 / t) + 1))
    # anchor z2[1] = (-1,0): positive z1[1] sim 0; negatives z1[0] sim -1, z2[0] sim 0
    l3 = -math.log(1 / (1 + math.exp(-1 / t) + 1))
    expected = (l0 + l1 + l2 + l3) / 4
    assert torch.isclose(nt_xent(z1, z2, temperature=t), torch.tensor(expected), atol=1e-6)


def test_nt_xent_normalize_switch():
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    scaled = nt_xent(3 * z1, 3 * z2, 0.5, normalize=True)
    assert torch.isclose(scaled, nt_xent(z1, z2, 0.5, normalize=True), atol=1e-5)  # scale-free with l2
    assert not torch.isclose(nt_xent(3 * z1, 3 * z2, 0.5, normalize=False), nt_xent(z1, z2, 0.5, normalize=False))


def test_nt_xent_perfect_alignment_is_low_and_temperature_matters():
    z = F.normalize(torch.eye(4), dim=1)
    aligned = nt_xent(z, z.clone(), temperature=0.1)
    assert aligned < 0.01
    rand = nt_xent(torch.randn(4, 4), torch.randn(4, 4), temperature=0.1)
    assert rand > aligned


def test_nt_xent_global_batch_equals_concatenated_batch():
    """Rank r's loss over gathered embeddings averages to the loss on the concatenated batch."""
    z1, z2 = torch.randn(8, 5), torch.randn(8, 5)
    full = nt_xent(z1, z2, 0.3)
    parts = [nt_xent(z1[i : i + 4], z2[i : i + 4], 0.3, z1_all=z1, z2_all=z2, offset=i) for i in (0, 4)]
    assert torch.isclose(sum(parts) / 2, full, atol=1e-6)


def test_negative_cosine_hand_computed():
    p = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    expected = -(1.0 + 1 / math.sqrt(2)) / 2
    assert torch.isclose(negative_cosine(p, z), torch.tensor(expected))


def test_byol_loss_is_two_minus_two_cosine():
    p = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    z = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    assert torch.isclose(byol_loss(p, z), torch.tensor((0.0 + 2.0) / 2))


def test_nt_xent_runs_in_float64_and_under_bf16_autocast():
    """The self-similarity mask takes the logits' dtype (bf16-mixed precision, float64 checks)."""
    z1, z2 = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    assert nt_xent(z1, z2, 0.3).dtype == torch.float64
    w = torch.randn(5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nt_xent(z1.float() @ w, z2.float() @ w, 0.3)
    assert torch.isfinite(loss)
    assert torch.isclose(loss.float(), nt_xent(z1.float() @ w, z2.float() @ w, 0.3), rtol=0.05)
