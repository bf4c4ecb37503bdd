"""Weight sharing: k-means properties on synthetic weights, zeros kept, centroid gradients summed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.compression.quantize import (
    INITS,
    kmeans_1d,
    quantizable,
    quantize_model,
    quantize_tensor,
    rd_lambdas,
)
from squeezenet.compression.sharing import WeightSharing
from squeezenet.models.registry import create_model


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.sampled_from(INITS), st.floats(0.0, 0.9))
def test_quantize_keeps_zeros_and_uses_at_most_2_pow_bits_values(seed, bits, init, sparsity):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(300, generator=g)
    w[torch.rand(300, generator=g) < sparsity] = 0
    q = quantize_tensor(w, bits, init)
    assert ((q.codes == 0) == (w == 0).numpy()).all()
    assert len(np.unique(q.weight)) <= 1 << bits
    assert np.array_equal(q.codebook, q.codebook.astype(np.float16).astype(np.float32))  # the file's precision


def test_linear_kmeans_beats_its_initial_grid():
    v = torch.randn(20000, generator=torch.Generator().manual_seed(0)) ** 3
    grid = torch.linspace(float(v.min()), float(v.max()), 15, dtype=torch.float64)
    c = kmeans_1d(v, 15)

    def mse(centroids):
        return float(((v.double()[:, None] - centroids[None]) ** 2).min(1).values.mean())

    assert mse(c) < 0.5 * mse(grid) and torch.all(c[1:] >= c[:-1])


def test_optimal_clustering_is_exact_and_rate_trades_error_for_entropy():
    v = torch.randn(5000, generator=torch.Generator().manual_seed(1)) ** 3

    def mse_and_entropy(c):
        d = (v.double()[:, None] - c[None]) ** 2
        p = torch.bincount(d.argmin(1), minlength=len(c)).double() / len(v)
        p = p[p > 0]
        return float(d.min(1).values.mean()), float(-(p * p.log2()).sum())

    lin, opt, ec = (mse_and_entropy(kmeans_1d(v, 15, init, penalty=pen))
                    for init, pen in [("linear", 0), ("optimal", 0), ("optimal", 0.05 * float((v ** 2).mean()))])
    assert opt[0] <= lin[0] and ec[1] < opt[1] and ec[0] > opt[0]
    x = torch.tensor([0.0, 1.0, 10.0, 11.0])  # 2 clusters; importance pulls the centroid to the important value
    assert kmeans_1d(x, 2, "optimal", importance=torch.tensor([1.0, 1.0, 1.0, 99.0]))[1] > 10.9


def test_centroid_gradient_is_the_sum_of_its_weights_gradients():
    torch.manual_seed(0)
    model = create_model("squeezenet1_1", num_classes=10, base_e=16, incr_e=16)
    q = quantize_model(model, 3)
    sharing = WeightSharing(model, q)
    x = torch.randn(2, 3, 64, 64)
    model(x).sum().backward()
    name = "features.3.expand3x3.weight"
    grad = model.get_parameter(name).grad.clone()
    sharing.accumulate()
    codes = torch.from_numpy(q[name].codes.astype(np.int64))
    book = sharing.books[name]
    for c in range(1, 8):
        assert torch.allclose(book.grad[c - 1], grad[codes == c].sum(), atol=1e-5)
    opt = torch.optim.SGD(sharing.parameters(), lr=0.1)
    opt.step()
    sharing.sync()
    w = model.get_parameter(name)
    assert torch.equal(w == 0, torch.from_numpy(q[name].codes == 0))  # zeros stay zero
    assert len(torch.unique(w)) <= 8
    out = sharing.quantized()
    assert torch.equal(torch.from_numpy(out[name].weight), w.detach())


def _train(model, sharing: WeightSharing, steps: int, lr: float) -> None:
    """Adam steps on the shared weights (and latent ones) with a made-up loss on random inputs."""
    opt = torch.optim.Adam(sharing.parameters(), lr=lr)
    for _ in range(steps):
        model(torch.randn(2, 3, 64, 64)).square().mean().backward()
        sharing.accumulate()
        opt.step()
        opt.zero_grad()
        sharing.sync()


def test_reassigning_weights_moves_them_between_levels_and_keeps_pruned_zero():
    """With latent weights (`--reassign`), a step moves weights to other levels (zero is one), each to the level
    of least (latent - level)^2 + lambda x bits, pruned positions stay zero, and the codes give the weights."""
    torch.manual_seed(0)
    model = create_model("squeezenet1_1", num_classes=10, base_e=16, incr_e=16)
    name = "features.3.expand3x3.weight"
    with torch.no_grad():
        model.get_parameter(name).view(-1)[::3] = 0.0  # pruned positions
    latent = {n: model.get_parameter(n).detach().clone() for n in quantizable(model)}
    q = quantize_model(model, 4, "optimal", 1e-3, None, rdo=True)
    sharing = WeightSharing(model, q, latent, rd_lambdas(model, 0.0))  # lambda 0: nearest level, zero included
    before = sharing.codes[name].clone()
    _train(model, sharing, 3, lr=1e-2)
    codes, alive = sharing.codes[name], latent[name].flatten() != 0
    assert (codes != before).sum() > 0
    assert torch.all(codes[~alive] == 0)
    table = torch.cat([torch.zeros(1), sharing.books[name].detach()])
    nearest = (sharing.latent[name].detach()[:, None] - table).abs().argmin(1)
    assert torch.equal(table[codes[alive]], table[nearest])  # ties between equal levels aside
    out = sharing.quantized()[name]
    assert torch.equal(torch.from_numpy(out.weight), model.get_parameter(name).detach())
    with pytest.raises(ValueError, match="latent"):
        WeightSharing(model, q, latent)


def test_the_anchor_holds_the_weights_near_their_uncompressed_values():
    """`pull` adds pull x (latent - start)^2 to the loss: the same steps drift the latent weights less."""
    drift = {}
    for pull in (0.0, 1e4):
        torch.manual_seed(0)
        model = create_model("squeezenet1_1", num_classes=10, base_e=16, incr_e=16)
        latent = {n: model.get_parameter(n).detach().clone() for n in quantizable(model)}
        q = quantize_model(model, 4, "optimal", 1e-3, None, rdo=True)
        pulls = {n: torch.full_like(w, pull) for n, w in latent.items()} if pull else None
        sharing = WeightSharing(model, q, latent, rd_lambdas(model, 0.0), pulls)
        _train(model, sharing, 5, lr=1e-3)
        drift[pull] = sum(float((sharing.latent[n].detach() - latent[n].flatten()[latent[n].flatten() != 0])
                                .abs().sum()) for n in sharing.latent)
    assert 0 < drift[1e4] < 0.5 * drift[0.0]


def test_bad_bits_and_init_are_errors():
    with pytest.raises(ValueError, match="bits"):
        quantize_tensor(torch.randn(10), 9)
    with pytest.raises(ValueError, match="init"):
        kmeans_1d(torch.randn(10), 3, "random")


def test_rd_assignment_spends_fewer_bits_for_its_error_and_round_trips(authors_model):
    """On a real pruned layer (the authors' fire9/expand3x3): at the same rate, assigning each weight by error +
    rate x bits (zero allowed) costs less in that sum than the nearest level, prunes more as the rate grows, and
    the file holds exactly the levels it chose."""
    from squeezenet.formats import sqz
    from squeezenet.formats.weights import load

    w = load(authors_model / "compressed_SqueezeNet.net")
    name = "features.12.expand3x3.weight"
    x = w.state_dict[name].float()

    def rd_cost(q, penalty):
        codes = torch.from_numpy(q.codes.astype(np.int64)).flatten()
        p = torch.bincount(codes, minlength=64).double() / codes.numel()
        err = float(((torch.from_numpy(q.weight).double() - x.double()) ** 2).sum())
        return err + penalty * float(-(p[codes].log2()).sum())

    scale = float((x[x != 0].double() ** 2).mean())
    for rate in (3e-3, 3e-2):
        near, rdo = (quantize_tensor(x, 6, "optimal", rate, rdo=r) for r in (False, True))
        assert rd_cost(rdo, rate * scale) < rd_cost(near, rate * scale)
        assert np.all(rdo.codes[x.numpy() == 0] == 0)  # pruned stays pruned
        if rate == 3e-2:
            assert (rdo.codes == 0).sum() > (near.codes == 0).sum()
    states = dict(w.state_dict) | {name: torch.from_numpy(rdo.weight)}
    shared = dict(w.codebooks) | {name: rdo}
    out = type(w)(w.arch, w.config, states, w.classes, w.preprocessing, w.class_ids, w.meta)
    back = sqz.decode(sqz.encode(out, shared)[0]).weights
    assert torch.equal(back.state_dict[name], torch.from_numpy(rdo.weight))
    with pytest.raises(ValueError, match="rate"):
        quantize_tensor(x, 6, "optimal", 0.0, rdo=True)
