"""Adapters: identity at init, staged == dense Q (tree and butterfly), penalty and its gradient,
finite-difference gradient checks with a non-trivial gradient, device/dtype behaviour."""
import math
import os
import sys
import unittest

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from qgoft_torch import GivensLinear, apply_adapters, givens_plan  # noqa: E402


def dense_from_plan(plan, blocks, scale=None):
    """Q = diag(s) S_L ... S_1 built from explicit d x d stage matrices (float64), independent
    of the staged code."""
    d = plan.width
    q = torch.eye(d, dtype=torch.float64)
    starts = plan.stage_starts
    for s in range(plan.stage_count):
        st = torch.eye(d, dtype=torch.float64)
        for k in range(starts[s], starts[s + 1]):
            i, j = plan.first[k], plan.second[k]
            a, b, c, e = blocks[k].reshape(-1).tolist()
            st[i, i], st[i, j], st[j, i], st[j, j] = a, b, c, e
        q = st @ q
    if scale is not None:
        q = torch.diag(scale.double()) @ q
    return q


def randomize(layer, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in layer.adapter_parameters().items():
            p.add_(scale * torch.randn(p.shape, generator=g))


class Tiny(nn.Module):
    def __init__(self, d=12, h=10, classes=3):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([nn.Module() for _ in range(2)])
        for lay in self.encoder.layer:
            lay.query = nn.Linear(d, d)
            lay.output = nn.Module()
            lay.output.dense = nn.Linear(d, h)
            lay.back = nn.Linear(h, d)
        self.classifier = nn.Linear(d, classes)

    def forward(self, x):
        for lay in self.encoder.layer:
            x = torch.tanh(lay.back(torch.tanh(lay.output.dense(lay.query(x)))))
        return self.classifier(x)


class LayoutTests(unittest.TestCase):
    def test_tree_stage_sizes(self):
        self.assertEqual(givens_plan("tree", 384).stage_sizes, (192, 96, 48, 24, 12, 6, 3, 1, 1))
        p = givens_plan("tree", 1536)
        self.assertEqual((p.block_count, p.stage_count), (1535, 11))

    def test_butterfly_sizes(self):
        p = givens_plan("butterfly", 384)
        self.assertEqual(p.stage_sizes, (192,) * 7 + (128, 128))
        self.assertEqual(p.block_count, 1600)

    def test_pairs_in_a_stage_are_disjoint(self):
        for kind in ("tree", "butterfly"):
            for d in (2, 7, 12, 33, 384):
                p = givens_plan(kind, d)
                for s in range(p.stage_count):
                    coords = [c for pair in p.pairs(s) for c in pair]
                    self.assertEqual(len(coords), len(set(coords)), f"{kind} d={d} stage {s}")

    def test_unknown_layout_is_refused(self):
        with self.assertRaisesRegex(ValueError, "layout 'diagonal'"):
            givens_plan("diagonal", 8)


class AdapterTests(unittest.TestCase):
    def test_identity_at_init(self):
        torch.manual_seed(0)
        for method in ("qgoft", "goft"):
            for layout in ("tree", "butterfly"):
                m = Tiny()
                x = torch.randn(5, 12)
                before = m(x)
                ad = apply_adapters(m, ["query", "output.dense"], method=method, layout=layout)
                self.assertEqual(len(ad.layers), 4)
                self.assertTrue(torch.equal(m(x), before), f"{method}/{layout}")
                self.assertEqual(ad.penalty().item(), 0.0)

    def test_staged_equals_dense_q(self):
        torch.manual_seed(1)
        for layout in ("tree", "butterfly"):
            for d in (2, 9, 16, 37):
                for method, scaling in (("qgoft", False), ("goft", False), ("goft", True)):
                    lin = GivensLinear(nn.Linear(d, 5), method=method, layout=layout, scaling=scaling)
                    randomize(lin, seed=d)
                    q_ref = dense_from_plan(lin.plan, lin.blocks(torch.float64).detach(),
                                            lin.givens_scaler.detach() if lin.scaling else None)
                    x = torch.randn(7, d, dtype=torch.float64)
                    staged = lin.apply_q(x)
                    self.assertLess((staged - x @ q_ref.t()).abs().max().item(), 1e-12, f"{layout} d={d} {method}")
                    self.assertLess((lin.dense_q() - q_ref).abs().max().item(), 1e-6)
                    # the layer: y = W (Q x) + b
                    y = lin(x.float())
                    want = (x @ q_ref.t()) @ lin.weight.double().t() + lin.bias.double()
                    self.assertLess((y.double() - want).abs().max().item(), 1e-5)

    def test_goft_without_scaling_is_orthogonal(self):
        lin = GivensLinear(nn.Linear(24, 3), method="goft", layout="tree", scaling=False)
        randomize(lin, 1.0)
        q = lin.dense_q()
        self.assertLess((q.t() @ q - torch.eye(24, dtype=torch.float64)).abs().max().item(), 1e-6)
        self.assertEqual(float(lin.penalty()), 0.0)

    def test_penalty_and_its_gradient(self):
        lin = GivensLinear(nn.Linear(10, 4), method="qgoft", layout="butterfly")
        randomize(lin, 0.4)
        b = lin.givens_soft.detach().double()
        want = sum(float(((blk.t() @ blk - torch.eye(2, dtype=torch.float64)) ** 2).sum()) for blk in b)
        pen = lin.penalty()
        self.assertAlmostEqual(pen.item(), want, places=4)
        pen.backward()
        a, bb, c, e = b[:, 0, 0], b[:, 0, 1], b[:, 1, 0], b[:, 1, 1]
        m00, m11, m01 = a * a + c * c - 1, bb * bb + e * e - 1, a * bb + c * e
        grad = torch.stack([4 * (a * m00 + bb * m01), 4 * (bb * m11 + a * m01),
                            4 * (c * m00 + e * m01), 4 * (e * m11 + c * m01)], 1).reshape(-1, 2, 2)
        self.assertLess((lin.givens_soft.grad.double() - grad).abs().max().item(), 1e-4)

    def test_lambda_changes_the_loss_at_once(self):
        m = Tiny()
        ad = apply_adapters(m, ["query"], method="qgoft", lam=0.0)
        for lin in ad.layers.values():
            randomize(lin, 0.3)

        class Wrap(nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

        x, y = torch.randn(4, 12), torch.tensor([0, 1, 2, 0])
        task = nn.functional.cross_entropy(m(x), y).item()
        pen = ad.penalty().item()
        self.assertGreater(pen, 0)
        for lam in (0.0, 0.5, 2.0):
            ad.lam = lam
            total = task + ad.lam * ad.penalty().item()
            self.assertAlmostEqual(total, task + lam * pen, places=5)
        with self.assertRaisesRegex(ValueError, "must be finite and >= 0"):
            ad.lam = -1
        g = apply_adapters(Tiny(), ["query"], method="goft")
        with self.assertRaisesRegex(ValueError, "not used by goft"):
            g.lam = 0.1

    def test_finite_difference_gradients(self):
        torch.manual_seed(3)
        for method, layout, scaling in (("qgoft", "tree", False), ("qgoft", "butterfly", False),
                                        ("goft", "tree", True), ("goft", "butterfly", False)):
            lin = GivensLinear(nn.Linear(11, 4), method=method, layout=layout, scaling=scaling).double()
            for p in lin.adapter_parameters().values():
                p.data = p.data.double()
            randomize(lin, 0.3)
            x = torch.randn(6, 11, dtype=torch.float64, requires_grad=True)
            params = list(lin.adapter_parameters().values())
            ok = torch.autograd.gradcheck(lambda x, *ps: (lin(x) ** 2).sum() + lin.penalty().double(), (x, *params),
                                          eps=1e-6, atol=1e-5)
            self.assertTrue(ok)
            # non-trivial: a real loss gives a gradient on every adapter tensor, not zero, not uniform
            loss = (lin(x) ** 2).sum()
            grads = torch.autograd.grad(loss, params)
            for g in grads:
                self.assertGreater(g.abs().max().item(), 1e-3)
                self.assertGreater(g.std().item(), 1e-4)

    def test_rotation_math_is_float32_for_a_bfloat16_model(self):
        m = Tiny().to(torch.bfloat16)
        ad = apply_adapters(m, ["query"], method="qgoft")
        m.to(torch.bfloat16)
        for lin in ad.layers.values():
            self.assertEqual(lin.givens_soft.dtype, torch.float32)
            self.assertEqual(lin.weight.dtype, torch.bfloat16)
        out = m(torch.randn(3, 12, dtype=torch.bfloat16))
        self.assertEqual(out.dtype, torch.bfloat16)

    @unittest.skipUnless(torch.cuda.is_available(), "no CUDA device")
    def test_cuda_matches_cpu(self):
        lin = GivensLinear(nn.Linear(40, 8), method="qgoft", layout="tree")
        randomize(lin, 0.3)
        x = torch.randn(5, 40)
        cpu = lin(x)
        gpu = lin.cuda()(x.cuda()).cpu()
        self.assertLess((cpu - gpu).abs().max().item(), 1e-5)

    def test_targets_follow_peft_matching(self):
        m = Tiny()
        ad = apply_adapters(m, ["output.dense"])
        self.assertEqual(sorted(ad.layers), ["encoder.layer.0.output.dense", "encoder.layer.1.output.dense"])
        with self.assertRaisesRegex(ValueError, "match no nn.Linear"):
            apply_adapters(Tiny(), ["nothing"])
        # trainable: adapters and the head only
        names = {n for n, p in m.named_parameters() if p.requires_grad}
        self.assertEqual(names, {"encoder.layer.0.output.dense.givens_soft", "encoder.layer.1.output.dense.givens_soft",
                                 "classifier.weight", "classifier.bias"})


if __name__ == "__main__":
    unittest.main()
