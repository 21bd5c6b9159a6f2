"""Residual VQ training behaviours: k-means init, EMA, dead codes, dropout, gradients."""

from __future__ import annotations

import torch

from audiogen.codecs.rvq import EuclideanCodebook, ResidualVectorQuantizer, kmeans


def _clusters(n_per: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    pts = centres.repeat_interleave(n_per, 0) + 0.1 * torch.randn(4 * n_per, 2)
    return pts, centres


def test_kmeans_finds_separated_clusters():
    pts, centres = _clusters()
    means, counts = kmeans(pts, 4, iters=10)
    # Every true centre has a centroid near it (init may split/merge; 10 iters fix it here).
    d = torch.cdist(centres, means).min(dim=1).values
    assert float(d.max()) < 0.5
    assert int(counts.sum()) == len(pts)


def test_kmeans_init_on_first_training_batch():
    cb = EuclideanCodebook(dim=2, codebook_size=4, kmeans_init=True, kmeans_iters=10)
    assert float(cb.inited) == 0 and float(cb.embed.abs().sum()) == 0
    pts, centres = _clusters()
    cb.train()
    cb(pts)
    assert float(cb.inited) == 1
    assert float(torch.cdist(centres, cb.embed).min(dim=1).values.max()) < 0.5
    # Eval mode never initialises or updates.
    cb2 = EuclideanCodebook(dim=2, codebook_size=4, kmeans_init=True).eval()
    cb2(pts)
    assert float(cb2.inited) == 0


def test_ema_moves_codewords_towards_data():
    cb = EuclideanCodebook(dim=2, codebook_size=1, kmeans_init=False, decay=0.5)
    cb.embed.zero_()
    cb.embed_avg.zero_()
    cb.cluster_size.fill_(10.0)  # not dead
    cb.train()
    x = torch.full((8, 2), 3.0)
    for _ in range(20):
        cb(x)
    torch.testing.assert_close(cb.embed, torch.full((1, 2), 3.0), atol=1e-3, rtol=0)


def test_dead_codes_are_replaced_by_batch_vectors():
    cb = EuclideanCodebook(dim=2, codebook_size=8, kmeans_init=False, threshold_ema_dead_code=2)
    cb.embed.copy_(torch.full((8, 2), 100.0))  # far from all data
    cb.cluster_size.fill_(0.0)  # all dead
    cb.train()
    pts, _ = _clusters(10)
    cb(pts)
    # Every codeword now sits near some data point instead of at 100.
    assert float(torch.cdist(cb.embed, pts).min(dim=1).values.max()) < 1.0
    # A live code is left alone.
    cb2 = EuclideanCodebook(dim=2, codebook_size=2, kmeans_init=False, decay=1.0)
    cb2.embed.copy_(torch.tensor([[100.0, 100.0], [0.0, 0.0]]))
    cb2.embed_avg.copy_(cb2.embed * 5)
    cb2.cluster_size.fill_(5.0)
    cb2.train()
    cb2(pts)
    assert torch.equal(cb2.embed[0], torch.tensor([100.0, 100.0]))


def test_replaced_codes_survive_steps_without_hits():
    # Threshold below one hit per step (a small batch for many codes, as in codec_tiny): a
    # code drawn from the batch wins its own vector, and that one hit keeps it for a number
    # of steps without hits instead of re-drawing it at the next one.
    cb = EuclideanCodebook(
        dim=2, codebook_size=8, kmeans_init=False, decay=0.99, threshold_ema_dead_code=0.05
    )
    cb.cluster_size.fill_(0.0)  # all dead
    cb.train()
    pts, _ = _clusters(2)  # 8 vectors for 8 codes
    cb(pts)  # assigned, then every code is re-drawn from this batch
    cb(pts)  # each fresh code wins exactly its own vector
    after_reset = cb.embed.clone()
    one_point = pts[:1]
    for _ in range(10):  # one vector per step: at most one code is hit each time
        cb(one_point)
    hit = cb.quantize(one_point)
    others = torch.ones(8, dtype=torch.bool)
    others[hit] = False
    # Re-drawn codes would all sit on the one vector; kept ones stay where they were (the
    # EMA's Laplace smoothing moves them a little).
    torch.testing.assert_close(cb.embed[others], after_reset[others], atol=0.05, rtol=0.05)
    assert bool((cb.cluster_size[others] > 0.05).all())


def test_training_step_assigns_with_the_codebook_it_started_with():
    # A batch smaller than the codebook with every code dead (codec_tiny: 200 vectors for
    # 1024 codes): the batch is quantized by the codewords it met, not by its own vectors
    # drawn in as replacements, so the quantizer is not an identity in training.
    torch.manual_seed(0)
    cb = EuclideanCodebook(dim=4, codebook_size=64, kmeans_init=False, threshold_ema_dead_code=2)
    cb.cluster_size.fill_(0.0)
    cb.train()
    for step in range(3):
        x = torch.randn(16, 4)
        before = cb.embed.clone()
        expected = cb.quantize(x)
        quantized, codes = cb(x)
        assert torch.equal(codes, expected)
        torch.testing.assert_close(quantized, before[expected])
        assert float((quantized - x).pow(2).mean()) > 0.01
        if step == 0:  # ... and the dead codes were re-drawn from it for the next batch
            assert float(torch.cdist(cb.embed, x).min(dim=1).values.max()) < 1e-2
    rvq = ResidualVectorQuantizer(dim=4, n_q=2, bins=64, kmeans_iters=2)
    rvq.train()
    for _ in range(3):
        out = rvq(torch.randn(1, 4, 16))
    assert float(out.commit_loss) > 0.01


def test_quantizer_dropout_varies_n_q_in_training_only():
    rvq = ResidualVectorQuantizer(dim=4, n_q=6, bins=16, kmeans_iters=2, q_dropout=True)
    x = torch.randn(2, 4, 30)
    rvq.train()
    seen = {rvq(x).n_q for _ in range(40)}
    assert seen == set(range(1, 7))
    out = rvq(x)
    assert out.codes.shape == (2, out.n_q, 30)
    rvq.eval()
    assert {rvq(x).n_q for _ in range(5)} == {6}


def test_more_codebooks_reduce_error_and_encode_matches_forward():
    rvq = ResidualVectorQuantizer(dim=8, n_q=4, bins=32, kmeans_iters=5)
    x = torch.randn(4, 8, 50)
    rvq.train()
    rvq(x)  # k-means init of every stage on its residual
    rvq.eval()
    errs = [float((rvq.decode(rvq.encode(x, n_q=k)) - x).pow(2).mean()) for k in (1, 2, 4)]
    assert errs[0] > errs[1] > errs[2]
    res = rvq(x, n_q=3)
    assert torch.equal(res.codes, rvq.encode(x, n_q=3))
    torch.testing.assert_close(res.quantized, rvq.decode(res.codes))


def test_straight_through_gradient_and_commit_loss():
    rvq = ResidualVectorQuantizer(dim=4, n_q=2, bins=8, kmeans_iters=2)
    rvq.train()
    x = torch.randn(2, 4, 10, requires_grad=True)
    res = rvq(x)
    assert res.commit_loss.requires_grad and float(res.commit_loss) > 0
    res.quantized.sum().backward()
    # The straight-through estimator passes the gradient unchanged.
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_bandwidth_to_n_q():
    rvq = ResidualVectorQuantizer(dim=4, n_q=32, bins=1024)
    assert rvq.n_q_for_bandwidth(75, 1.5) == 2
    assert rvq.n_q_for_bandwidth(75, 6.0) == 8
    assert rvq.n_q_for_bandwidth(75, None) == 32
    assert rvq.n_q_for_bandwidth(75, 1000.0) == 32
