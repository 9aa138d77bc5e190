"""The CAT backbone: sizes, shapes, weights of the authors, options."""
import ctypes
import threading
import time

import pytest
import torch

from mmcat.models import CAT
from mmcat.models.layers import AttentionBlock, Mlp
from mmcat.models.utils import cat_converter
from mmcat.testing.cat_reference import ReferenceCAT

# A narrow CAT with every feature of the real ones, for fast tests.
MINI = dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))
REF_MINI = dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('arch,expected', [('tiny', 16_358_892),
                                           ('small', 36_526_602),
                                           ('base', 50_764_266)])
def test_parameter_counts_match_the_authors(arch, expected):
    assert n_params(CAT(arch=arch)) == expected


def test_reference_has_the_same_parameter_count():
    assert n_params(ReferenceCAT()) == n_params(CAT('small'))


def test_cat_s_at_detection_resolution():
    model = CAT(arch='small').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 800, 1333))
    assert [tuple(o.shape) for o in outs] == [
        (1, 96, 200, 334), (1, 192, 100, 167), (1, 384, 50, 84),
        (1, 768, 25, 42)]


def _mmcat_from_reference(ref: ReferenceCAT, arch) -> CAT:
    model = CAT(arch=arch, drop_path_rate=0.).eval()
    model.load_pretrained(cat_converter(ref.state_dict()))
    return model


@pytest.mark.parametrize('hw', [(112, 137), (61, 90)])
def test_matches_reference_with_authors_detection_weights(hw):
    torch.manual_seed(0)
    ref = ReferenceCAT(**REF_MINI).randomize_(1).eval()
    model = _mmcat_from_reference(ref, MINI)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        expected, got = ref(x), model(x)
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)


def test_matches_reference_cat_s():
    ref = ReferenceCAT().randomize_(2).eval()
    model = _mmcat_from_reference(ref, 'small')
    x = torch.randn(1, 3, 100, 75)
    with torch.no_grad():
        for e, g in zip(ref(x), model(x)):
            torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)


def test_matches_reference_with_authors_classification_weights():
    ref = ReferenceCAT(**REF_MINI, classification=True,
                       num_classes=10).randomize_(3).eval()
    state = {'model': ref.state_dict(), 'epoch': 300}
    model = CAT(arch=MINI, out_indices=(3, ), drop_path_rate=0.).eval()
    missing, unexpected = model.load_pretrained(state)
    assert missing == [] and unexpected == []
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], ref(x)[0], atol=1e-4,
                                   rtol=1e-4)


def test_init_cfg_loads_a_detector_checkpoint_of_the_authors(tmp_path):
    ref = ReferenceCAT(**REF_MINI).randomize_(4).eval()
    state = {f'backbone.{k}': v for k, v in ref.state_dict().items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(8, 32, 1, 1)
    path = tmp_path / 'cat_fcos.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 12}}, path)
    model = CAT(arch=MINI, drop_path_rate=0.,
                init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for e, g in zip(ref(x), model(x)):
            torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)


def _save(path, state) -> str:
    torch.save({'state_dict': state, 'meta': {'epoch': 300}}, path)
    return str(path)


def _cat_s_from(path: str, **kwargs) -> CAT:
    model = CAT('small', drop_path_rate=0.,
                init_cfg=dict(type='Pretrained', checkpoint=path), **kwargs)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('layout', ['authors', 'mmcat'])
def test_slice_embedding_loads_a_standard_embedding_checkpoint(
        tmp_path, monkeypatch, layout):
    """CAT-S with SliceConv2d as patch embedding, from a file of the 4x4
    stride-4 convolution: the weights are mapped, nothing is left random,
    and both backbones compute the same."""
    from mmcat.models.backbones import cat as cat_module
    warnings = []
    monkeypatch.setattr(cat_module, 'print_log',
                        lambda msg, **kw: warnings.append(msg))
    ref = ReferenceCAT().randomize_(11)
    state = ref.state_dict() if layout == 'authors' else cat_converter(
        ref.state_dict())
    path = _save(tmp_path / f'{layout}.pth', state)
    conv = _cat_s_from(path)
    sliced = _cat_s_from(path, embed_conv_cfg=dict(type='SliceConv2d'))
    assert warnings == []
    assert sliced.load_pretrained(torch.load(path)) == ([], [])
    x = torch.randn(1, 3, 61, 90)
    with torch.no_grad():
        for a, b in zip(conv(x), sliced(x)):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_slice_embedding_checkpoint_loads_into_the_standard_conv():
    sliced = CAT(arch=MINI, embed_conv_cfg=dict(type='SliceConv2d'),
                 drop_path_rate=0.).eval()
    conv = CAT(arch=MINI, drop_path_rate=0.).eval()
    assert conv.load_pretrained(sliced.state_dict()) == ([], [])
    x = torch.randn(1, 3, 40, 52)
    with torch.no_grad():
        for a, b in zip(sliced(x), conv(x)):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('embed_conv_cfg', [
    None, dict(type='DepthwiseSeparableConv2d')])
def test_fresh_embed_conv_loads_all_but_the_embedding_conv(embed_conv_cfg):
    ref = ReferenceCAT(**REF_MINI).randomize_(13)
    expected = cat_converter(ref.state_dict())
    model = CAT(arch=MINI, embed_conv_cfg=embed_conv_cfg,
                fresh_embed_conv=True)
    own = model.state_dict()
    fresh = {k: v.clone() for k, v in own.items()
             if k.startswith('patch_embed.proj.')}
    assert fresh
    assert model.load_pretrained(ref.state_dict()) == ([], [])
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh.get(key, expected.get(key))), key


def test_with_cp_gives_same_outputs_and_gradients():
    torch.manual_seed(0)
    a = CAT(arch=MINI, drop_path_rate=0.)
    b = CAT(arch=MINI, drop_path_rate=0., with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 45, 61, requires_grad=True)
    outs_a, outs_b = a(x), b(x)
    sum(o.square().mean() for o in outs_a).backward()
    grad_a = x.grad.clone()
    x.grad = None
    sum(o.square().mean() for o in outs_b).backward()
    for oa, ob in zip(outs_a, outs_b):
        torch.testing.assert_close(oa, ob)
    torch.testing.assert_close(x.grad, grad_a)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)


@pytest.mark.parametrize('recompute', [dict(act_with_cp=True), dict(
    act_with_cp=True, ffn_with_cp=True)])
def test_act_with_cp_gives_same_outputs_and_gradients(recompute):
    """Recomputing the MLPs' activations in backward (CAT's default)
    changes no output and no gradient (drop path on: the same masks either
    way)."""
    a = CAT(arch=MINI, drop_path_rate=0.2, act_with_cp=False)
    b = CAT(arch=MINI, drop_path_rate=0.2, **recompute)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 45, 61)
    outs, grads = [], []
    for model in (a, b):
        torch.manual_seed(5)
        outs.append(model.train()(x))
        sum(o.square().mean() for o in outs[-1]).backward()
        grads.append([(n, p.grad) for n, p in model.named_parameters()])
    for oa, ob in zip(*outs):
        torch.testing.assert_close(ob, oa, atol=1e-5, rtol=1e-5)
    for (name, ga), (_, gb) in zip(*grads):
        torch.testing.assert_close(gb, ga, atol=1e-5, rtol=1e-5, msg=name)
    assert all(m.act_with_cp for m in b.modules() if isinstance(m, Mlp))


@pytest.mark.parametrize('with_cp', [False, True])
def test_with_cp_runs_each_block_again_in_backward(with_cp):
    """With checkpointing, the attention of every block is called once in
    forward and once more in backward; without, once."""
    model = CAT(arch=MINI, with_cp=with_cp, drop_path_rate=0.)
    blocks = [m for m in model.modules() if isinstance(m, AttentionBlock)]
    calls = [0] * len(blocks)
    for i, block in enumerate(blocks):
        block.attn.register_forward_hook(
            lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    outs = model(torch.randn(1, 3, 40, 52))
    assert calls == [1] * len(blocks) == [1] * 15
    sum(o.sum() for o in outs).backward()
    assert calls == [2 if with_cp else 1] * len(blocks)


class _MallocMi2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
        'fsmblks', 'uordblks', 'fordblks', 'keepcost')]


def _peak_heap_growth(fn) -> int:
    """Peak growth of the bytes glibc's malloc has handed out (heap and
    mmapped blocks, every thread) while ``fn`` runs, sampled by a thread."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, 'mallinfo2'):
        pytest.skip('needs glibc >= 2.33 (mallinfo2)')
    libc.mallinfo2.restype = _MallocMi2

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    base = in_use()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], in_use())
            time.sleep(1e-4)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return peak[0] - base


def test_with_cp_lowers_peak_activation_memory():
    """A training step of a narrow CAT at 224x224 (activations outweigh the
    weights and their gradients) holds less than 0.6x the memory at its peak
    with checkpointing."""
    peaks = {}
    for with_cp in (True, False):
        torch.manual_seed(0)
        model = CAT(arch=MINI, with_cp=with_cp, drop_path_rate=0.)

        def step(size: int) -> None:
            outs = model(torch.randn(1, 3, size, size))
            sum(o.sum() for o in outs).backward()

        step(64)              # first-call allocations (threads, kernels)
        model.zero_grad(set_to_none=True)
        peaks[with_cp] = _peak_heap_growth(lambda: step(224))
    assert peaks[True] < 0.6 * peaks[False], peaks


@pytest.mark.parametrize('with_cp', [False, True])
def test_recomputation_keeps_random_masks_and_gradients(with_cp):
    """ffn_with_cp / with_cp recompute in backward with the forward's dropout
    and drop-path masks: same outputs and gradients as keeping everything."""
    a = CAT(arch=MINI, drop_rate=0.1, drop_path_rate=0.3, ffn_with_cp=False)
    b = CAT(arch=MINI, drop_rate=0.1, drop_path_rate=0.3, ffn_with_cp=True,
            with_cp=with_cp)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 45, 61)
    outs, grads = [], []
    for model in (a, b):
        torch.manual_seed(7)
        outs.append(model.train()(x))
        sum(o.square().mean() for o in outs[-1]).backward()
        grads.append([p.grad for p in model.parameters()])
    for oa, ob in zip(*outs):
        torch.testing.assert_close(oa, ob)
    for ga, gb in zip(*grads):
        torch.testing.assert_close(ga, gb)


def test_with_cp_flag_reaches_every_block():
    model = CAT(arch=MINI, with_cp=True)
    flags = [m.with_cp for m in model.modules() if hasattr(m, 'with_cp')]
    assert flags and all(flags)


def test_every_parameter_gets_a_gradient():
    model = CAT(arch=MINI)
    model.init_weights()
    outs = model(torch.randn(2, 3, 50, 70))
    sum(o.sum() for o in outs).backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


@pytest.mark.parametrize('frozen', [-1, 0, 1, 2, 4])
def test_frozen_stages(frozen):
    model = CAT(arch=MINI, frozen_stages=frozen)
    model.train()
    frozen_prefixes = []
    if frozen >= 0:
        frozen_prefixes += ['patch_embed.', 'absolute_pos_embed']
    for i in range(frozen):
        frozen_prefixes += [f'stages.{i}.', f'norm{i}.']
    for name, p in model.named_parameters():
        should_freeze = name.startswith(tuple(frozen_prefixes))
        assert p.requires_grad != should_freeze, name
    for name, m in model.named_modules():
        if name.startswith(tuple(frozen_prefixes)):
            assert not m.training, name
    if frozen == 4:
        assert not any(p.requires_grad for p in model.parameters())


def test_frozen_at_construction_for_ddp():
    # DDP registers the trainable parameters when it wraps the model, before
    # any train() call: they must already be frozen.
    model = CAT(arch=MINI, frozen_stages=1)
    assert not model.patch_embed.proj.weight.requires_grad
    assert not model.stages[0].blocks[0].cpsa.attn.qkv.weight.requires_grad
    assert model.stages[1].blocks[0].cpsa.attn.qkv.weight.requires_grad


def test_out_indices_and_negative_indices():
    model = CAT(arch=MINI, out_indices=(1, -1)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 128]
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm3')


def test_arch_aliases_and_custom_dict():
    assert CAT('s').num_features == CAT('small').num_features
    model = CAT(arch=dict(embed_dims=8, depths=[1, 1], num_heads=[1, 2]),
                out_indices=(0, 1))
    outs = model(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 8, 8), (1, 16, 4, 4)]


def test_no_position_encoding():
    model = CAT(arch=MINI, use_abs_pos_embed=False)
    assert not hasattr(model, 'absolute_pos_embed')
    outs = model(torch.randn(1, 3, 40, 40))
    assert outs[0].shape == (1, 16, 10, 10)


def test_blocks_hold_no_spatial_state():
    model = CAT(arch=MINI).eval()
    before = {n: set(vars(m)) for n, m in model.named_modules()}
    model(torch.randn(1, 3, 50, 50))
    model(torch.randn(1, 3, 70, 30))
    after = {n: set(vars(m)) for n, m in model.named_modules()}
    assert before == after
