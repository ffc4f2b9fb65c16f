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


# --- MoCo v3, Barlow Twins, VICReg, DINO: hand-computed values and a cross-check against lightly's losses


def test_info_nce_hand_computed_and_scaled_by_two_tau():
    from ssl_bench.methods.losses import info_nce

    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised inside: the scale of q does not matter
    k = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    # logits = [[2, 0], [0, 2]] at tau = 0.5; CE = log(1 + e^-2) per row; x 2 tau = 1
    assert math.isclose(info_nce(q, k, 0.5).item(), math.log(1 + math.exp(-2)), rel_tol=1e-6)
    assert math.isclose(info_nce(q, k, 0.1).item(), math.log(1 + math.exp(-10)) * 0.2, rel_tol=1e-3)  # float32


def test_info_nce_over_gathered_keys_equals_the_global_batch():
    from ssl_bench.methods.losses import info_nce

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    per_rank = [info_nce(q[r * 4 : (r + 1) * 4], k, 0.2, offset=r * 4) for r in range(2)]
    assert torch.allclose(sum(per_rank) / 2, info_nce(q, k, 0.2), atol=1e-6)


def test_barlow_twins_matches_lightly_and_is_zero_at_the_identity():
    from lightly.loss import BarlowTwinsLoss

    from ssl_bench.methods.losses import barlow_twins_loss

    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(64, 32, generator=g), torch.randn(64, 32, generator=g)
    ours = barlow_twins_loss(z1, z2, 5e-3)
    theirs = BarlowTwinsLoss(lambda_param=5e-3)(z1, z2)
    assert torch.allclose(ours, theirs, rtol=2e-3), (ours, theirs)
    # orthogonal +-1 columns (a Hadamard design): C = I exactly, the loss is 0
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    h = torch.kron(torch.kron(h, h), h)  # 8 x 8, columns orthogonal, zero mean except the first
    x = h[:, 1:]
    assert barlow_twins_loss(x, x).item() < 1e-4
    assert barlow_twins_loss(x, -x).item() > 27  # C = -I: every (1 - C_ii)^2 = 4, 7 dims


def test_vicreg_terms_match_lightly_with_the_paper_weights():
    from lightly.loss import VICRegLoss

    from ssl_bench.methods.losses import vicreg_terms

    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(64, 32, generator=g) * 0.5, torch.randn(64, 32, generator=g) * 0.5
    inv, var, cov = vicreg_terms(z1, z2)
    ours = 25 * inv + 25 * var + 1 * cov
    theirs = VICRegLoss(lambda_param=25, mu_param=25, nu_param=1)(z1, z2)
    assert torch.allclose(ours, theirs, rtol=1e-4), (ours, theirs)
    # a collapsed embedding (every sample the same) pays the full hinge: relu(1 - sqrt(eps)) per dim
    same = torch.ones(16, 8)
    _, var_c, cov_c = vicreg_terms(same, same)
    assert math.isclose(var_c.item(), 1 - math.sqrt(1e-4), rel_tol=1e-5) and cov_c.item() == 0


def test_dino_loss_matches_lightly_with_multi_crop_and_skips_same_view_pairs():
    from lightly.loss import DINOLoss

    from ssl_bench.methods.losses import dino_loss

    g = torch.Generator().manual_seed(3)
    teacher = [torch.randn(16, 64, generator=g) for _ in range(2)]
    student = [torch.randn(16, 64, generator=g) for _ in range(6)]  # 2 global + 4 local views
    center = torch.zeros(1, 64)
    ours = dino_loss(student, teacher, center, student_temp=0.1, teacher_temp=0.04)
    ref = DINOLoss(output_dim=64, warmup_teacher_temp=0.04, teacher_temp=0.04, student_temp=0.1)
    theirs = ref(teacher, student, teacher_temp=0.04)
    assert torch.allclose(ours, theirs, rtol=1e-5), (ours, theirs)
    # a student that copies the teacher of the same view gains nothing: those pairs are skipped
    copy = dino_loss([t * 0.04 / 0.1 for t in teacher], teacher, center)
    swap = dino_loss([teacher[1] * 0.4, teacher[0] * 0.4], teacher, center)
    assert swap < copy
    # centering: a center equal to a constant shift of every logit changes nothing (softmax is shift-free)
    shifted = dino_loss(student, [t + 5 for t in teacher], torch.full((1, 64), 5.0))
    assert torch.allclose(shifted, ours, atol=1e-5)


def test_dino_loss_gives_the_teacher_no_gradient():
    from ssl_bench.methods.losses import dino_loss

    t = torch.randn(4, 8, requires_grad=True)
    s = torch.randn(4, 8, requires_grad=True)
    dino_loss([s, s * 2], [t, t * 3], torch.zeros(1, 8)).backward()
    assert t.grad is None and s.grad is not None and s.grad.abs().sum() > 0
