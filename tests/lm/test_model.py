"""MusicLM against HF MusicGen / MusicGen-melody with the same random weights."""

import pytest
import torch

from audiogen.lm import MusicLM, tiny_config
from audiogen.lm.convert import from_hf_musicgen
from audiogen.lm.loss import codebook_cross_entropy

from .hf_peers import CARD, DIM, K, musicgen, musicgen_melody


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_musicgen")
    musicgen().save_pretrained(d)
    return d


def test_logits_match_hf_with_cross_attention_and_padding(hf_dir):
    from transformers import MusicgenForConditionalGeneration

    hf = MusicgenForConditionalGeneration.from_pretrained(hf_dir).eval()
    imported = from_hf_musicgen(hf_dir)
    assert imported.kind == "musicgen" and imported.text_proj["weight"].shape == (DIM, 24)
    b, s, sc = 3, 9, 5
    torch.manual_seed(1)
    seq = torch.randint(0, CARD + 1, (b, K, s))
    text = torch.randn(b, sc, 24)
    mask = torch.ones(b, sc, dtype=torch.long)
    mask[1, 2:] = 0
    mask[2] = 0  # a fully masked row: the CFG null condition
    with torch.no_grad():
        ref = hf(
            encoder_outputs=(text,), attention_mask=mask, decoder_input_ids=seq.reshape(b * K, s)
        ).logits.reshape(b, K, s, CARD)
        # The conditioner's job, done here by hand: project, then zero padded positions.
        p = imported.text_proj
        cross = (text @ p["weight"].T + p["bias"]) * mask[..., None]
        out = imported.lm(seq, cross=cross, cross_mask=mask.bool()).logits
    assert out.shape == (b, K, s, CARD)
    assert (out - ref).abs().max() <= 1e-4


def test_melody_prefix_logits_match_hf(tmp_path):
    hf = musicgen_melody()
    hf.save_pretrained(tmp_path)
    imported = from_hf_musicgen(tmp_path)
    assert imported.kind == "musicgen_melody" and not imported.config.cross_attention
    assert imported.audio_proj["weight"].shape == (DIM, 12)
    b, s, p = 2, 7, 6
    torch.manual_seed(2)
    seq = torch.randint(0, CARD + 1, (b, K, s))
    prefix = torch.randn(b, p, DIM)
    with torch.no_grad():
        ref = hf.decoder(input_ids=seq.reshape(b * K, s), encoder_hidden_states=prefix).logits
        ref = ref.reshape(b, K, p + s, CARD)[:, :, p:]
        out = imported.lm(seq, prefix=prefix).logits
    assert (out - ref).abs().max() <= 1e-4


def test_causality_no_gradient_from_the_future():
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config())
    s, t = 8, 4
    x = lm.embed_codes(torch.randint(0, 33, (1, 4, s))).detach().requires_grad_(True)
    h = lm.backbone(x, cross_kv=lm.cross_kv(torch.randn(1, 3, 32), None))
    (h[:, t] * torch.randn_like(h[:, t])).sum().backward()
    assert x.grad[:, t + 1 :].abs().max() == 0
    assert x.grad[:, : t + 1].abs().sum() > 0


def test_prefix_positions_dropped_and_prefix_changes_logits():
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config(cross_attention=False)).eval()
    seq = torch.randint(0, 33, (2, 4, 5))
    a = lm(seq, prefix=torch.randn(2, 3, 32)).logits
    b = lm(seq).logits
    assert a.shape == b.shape == (2, 4, 5, 32)
    assert not torch.allclose(a, b)


def test_loss_per_codebook_on_valid_positions():
    torch.manual_seed(0)
    cfg = tiny_config()
    lm = MusicLM(config=cfg)
    codes = torch.randint(0, cfg.cardinality, (2, 4, 6))
    seq, mask = cfg.pattern().build(codes, special_token=cfg.special_token)
    out = lm(seq[..., :-1], cross=torch.randn(2, 3, 32))
    loss = codebook_cross_entropy(out.logits, seq[..., 1:], mask[..., 1:])
    assert loss.per_codebook.shape == (4,)
    assert torch.isclose(loss.total, loss.per_codebook.mean())
    # Near-uniform logits at init: loss close to log(card).
    assert abs(loss.total.item() - torch.log(torch.tensor(32.0)).item()) < 0.5
    loss.total.backward()
    assert lm.heads.weight.grad is not None


@pytest.mark.parametrize("rows", [1, 2, 16, 17])
def test_skinny_linear_equals_f_linear(rows):
    """The few-row fp32 CPU layout (W @ x.T) computes the same product as F.linear."""
    from audiogen.lm.transformer import Linear

    g = torch.Generator().manual_seed(0)
    lin = Linear(64, 96, bias=True)
    x = torch.randn(1, rows, 64, generator=g)
    ref = torch.nn.functional.linear(x.double(), lin.weight.double(), lin.bias.double())
    out = lin(x)
    assert out.shape == (1, rows, 96) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    assert isinstance(lin, torch.nn.Linear) and set(lin.state_dict()) == {"weight", "bias"}


def test_skinny_linear_output_is_contiguous():
    # Cross-attention K/V are views of this output: a strided last dimension would send
    # scaled_dot_product_attention down its slow path.
    from audiogen.lm.transformer import Linear

    assert Linear(8, 12, bias=False)(torch.randn(2, 3, 8)).is_contiguous()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize(
    ("rows", "n_in", "n_out", "bias"),
    [(1, 64, 96, True), (2, 1024, 256, False), (3, 37, 10, True), (8, 515, 130, True)],
)
def test_few_row_linear_kernel_is_torchs_arithmetic(rows, n_in, n_out, bias, dtype):
    """The compiled few-row kernel: fp32 sums (rounded once to bf16 for bf16), like F.linear.

    Shapes cover tails (in not a multiple of 8, out not of 4, odd rows) and no bias."""
    from audiogen.lm.transformer import Linear, _linear_kernels

    assert _linear_kernels(), "the linear kernels did not build (is cc installed?)"
    g = torch.Generator().manual_seed(rows)
    lin = Linear(n_in, n_out, bias=bias).to(dtype).requires_grad_(False)
    x = torch.randn(1, rows, n_in, generator=g).to(dtype)
    out = lin(x)
    assert out.shape == (1, rows, n_out) and out.dtype == dtype and out.is_contiguous()
    exact = torch.nn.functional.linear(
        x.double(), lin.weight.double(), lin.bias.double() if bias else None
    )
    err = (out.double() - exact).abs()
    if dtype == torch.bfloat16:
        # one rounding of an fp32 sum: within one bf16 step of the exact value (2**-7
        # relative, plus fp32 summation error near zero); mostly bitwise torch's result
        assert bool((err <= exact.abs() * 2.0**-7 + 1e-3).all())
        ref = torch.nn.functional.linear(x, lin.weight, lin.bias)
        assert (out == ref).float().mean() >= 0.98
    else:
        assert err.max() <= 1e-5


def test_few_row_bf16_linear_keeps_autograd_and_strided_rows():
    from audiogen.lm.transformer import Linear

    lin = Linear(32, 8).to(torch.bfloat16)
    x = torch.randn(2, 4, 64).bfloat16()[..., ::2]  # strided: reshape copies it first
    ref = torch.nn.functional.linear(x, lin.weight, lin.bias)
    torch.testing.assert_close(lin(x), ref, atol=2e-2, rtol=2e-2)
    y = lin(torch.randn(3, 32).bfloat16())  # parameters require grad: torch's path
    y.sum().backward()
    assert lin.weight.grad is not None
