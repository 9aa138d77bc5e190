"""CAT refuses bad configs, bad inputs and bad checkpoints with messages that
say what is wrong and what is allowed; odd input sizes just work."""
import os.path as osp
import pickle
import re

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mmengine.registry import MODELS

import mmcat  # noqa: F401  (registers CAT and the convolutions)
from mmcat.models import CAT
from mmcat.testing.cat_reference import ReferenceCAT

NARROW = dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2))
MINI = dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize('kwargs, error, patterns', [
    (dict(arch='huge'), ValueError,
     [r"unknown arch 'huge'", r"\['base', 'small', 'tiny'\]", 't/s/b']),
    (dict(arch=3), TypeError, [r'arch must be a str or dict']),
    (dict(arch=dict(embed_dims=8, depths=(1, 1))), ValueError,
     [r"needs the keys \['num_heads'\]"]),
    (dict(arch=dict(embed_dims=10, depths=(1, 1, 1, 1),
                    num_heads=(3, 4, 8, 16))), ValueError,
     [r'stage 0 width embed_dims\*2\*\*0 = 10', r'divisible by '
      r'num_heads\[0\] = 3']),
    (dict(arch=dict(embed_dims=8, depths=(1, 1), num_heads=(1, 1, 1))),
     ValueError, [r'depths \(\[1, 1\]\) and num_heads \(\[1, 1, 1\]\)',
                  'equal length']),
    (dict(arch=dict(embed_dims=8, depths=(1, 0), num_heads=(1, 1))),
     ValueError, [r'depth must be >= 1, got \[1, 0\]']),
    (dict(out_indices=(0, 4)), ValueError,
     [r'out_indices \(0, 4\) has 4', r'\[0, 3\]', r'\[-4, -1\]']),
    (dict(out_indices=(-5, )), ValueError, [r'has -5', r'\[0, 3\]']),
    (dict(frozen_stages=5), ValueError,
     [r'frozen_stages must be in \[-1, 4\]', 'got 5']),
    (dict(frozen_stages=-2), ValueError,
     [r'frozen_stages must be in \[-1, 4\]', 'got -2']),
    (dict(patch_size=0), ValueError, [r'patch_size must be >= 1, got 0']),
    (dict(embed_patch_size=0), ValueError,
     [r'embed_patch_size must be >= 1, got 0']),
    (dict(in_channels=0), ValueError, [r'in_channels must be >= 1']),
    (dict(drop_path_rate=1.0), ValueError,
     [r'drop_path_rate must be in \[0, 1\), got 1.0']),
    (dict(embed_conv_cfg=dict(type='Nope')), ValueError,
     ['embed_conv_cfg', "unknown convolution type 'Nope'", "'Conv2d'",
      "'SliceConv2d'", "'DepthwiseSeparableConv2d'"]),
    (dict(projection_conv_cfg=dict(type='Nope')), ValueError,
     ['projection_conv_cfg', "'Nope'", "'PointwiseConv2d'"]),
    (dict(pretrained='a.pth', init_cfg=dict(type='Pretrained',
                                            checkpoint='b.pth')),
     ValueError, ['either init_cfg or pretrained']),
])
def test_bad_config_names_field_and_allowed_values(kwargs, error, patterns):
    kwargs = dict(kwargs)
    kwargs.setdefault('arch', MINI)
    with pytest.raises(error) as info:
        CAT(**kwargs)
    for pattern in patterns:
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))


def test_bad_config_message_survives_the_registry():
    """Built from a config (as a detector builds it), the message is kept."""
    with pytest.raises(ValueError, match=r"unknown convolution type 'Nope'"
                       r".*'Conv2d'"):
        MODELS.build(dict(type='CAT', arch=NARROW,
                          embed_conv_cfg=dict(type='Nope')))
    with pytest.raises(ValueError, match=r'frozen_stages must be in '
                       r'\[-1, 4\]'):
        MODELS.build(dict(type='CAT', arch=NARROW, frozen_stages=7))


def test_registered_conv_types_can_be_used():
    model = CAT(arch=NARROW, embed_conv_cfg=dict(type='SliceConv2d'),
                projection_conv_cfg=dict(type='PointwiseConv2d'))
    assert len(model(torch.randn(1, 3, 32, 32))) == 4


# ----------------------------------------------------------------- inputs
@pytest.mark.parametrize('x, error, pattern', [
    (torch.randn(3, 32, 32), ValueError,
     r'4-D \(B, C, H, W\) tensor, got shape \(3, 32, 32\)'),
    (torch.randn(1, 1, 3, 32, 32), ValueError, r'4-D'),
    (torch.randn(1, 4, 32, 32), ValueError,
     r'in_channels=3 but the input has 4 channels'),
    (torch.randn(0, 3, 32, 32), ValueError,
     r'empty input of shape \(0, 3, 32, 32\)'),
    (torch.randn(1, 3, 0, 32), ValueError, r'empty input'),
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), TypeError,
     r'floating-point input, got torch.uint8; convert images with .float'),
    (torch.zeros(1, 3, 32, 32, dtype=torch.int64), TypeError,
     r'torch.int64'),
    ([[1.0]], TypeError, r'expects a torch.Tensor, got list'),
])
def test_bad_input_is_a_clear_error(x, error, pattern):
    model = CAT(arch=NARROW)
    with pytest.raises(error, match=pattern):
        model(x)


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 300), w=st.integers(1, 300),
       batch=st.integers(1, 3))
@example(h=1, w=1, batch=1)
@example(h=5, w=5, batch=2)
@example(h=224, w=224, batch=3)
@example(h=511, w=511, batch=1)
@example(h=112, w=137, batch=3)
@example(h=33, w=47, batch=1)
@example(h=27, w=27, batch=1)
@example(h=800, w=7, batch=1)
@example(h=7, w=800, batch=1)
def test_output_shapes_any_size(h, w, batch):
    model = _narrow_eval_model()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead
    try:
        with torch.no_grad():
            outs = model(torch.randn(batch, 3, h, w))
    finally:
        torch.set_num_threads(threads)
    assert len(outs) == 4
    for i, out in enumerate(outs):
        stride = 4 * 2**i
        assert tuple(out.shape) == (batch, 8 * 2**i, -(-h // stride),
                                    -(-w // stride))
        assert torch.isfinite(out).all()


_NARROW_MODEL = []


def _narrow_eval_model() -> CAT:
    """One narrow CAT for all hypothesis examples (built once)."""
    if not _NARROW_MODEL:
        torch.manual_seed(0)
        model = CAT(arch=NARROW)
        model.init_weights()
        _NARROW_MODEL.append(model.eval())
    return _NARROW_MODEL[0]


# ------------------------------------------------------------ checkpoints
class _WritesMarker:
    """Pickles as ``exec`` of code that creates ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


def _pretrained(path: str) -> CAT:
    return CAT(arch=MINI, init_cfg=dict(type='Pretrained', checkpoint=path))


@pytest.fixture
def weights_only_default(monkeypatch):
    """Neither of torch's overrides may decide the tests."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)


@pytest.mark.skipif(torch.__version__ < '2.6',
                    reason='weights_only is the default from 2.6')
def test_code_in_pretrained_checkpoint_is_refused(tmp_path,
                                                  weights_only_default):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil.pth')
    state = CAT(arch=MINI).state_dict()
    torch.save({'state_dict': state, 'meta': _WritesMarker(marker)}, path)
    model = _pretrained(path)
    with pytest.raises(pickle.UnpicklingError) as info:
        model.init_weights()
    msg = str(info.value)
    assert 'refused to load the pretrained checkpoint' in msg and path in msg
    assert 'cat2mmcat.py --unsafe-trust-source' in msg
    assert 'weights_only=False' in msg
    assert 'GLOBAL exec was not an allowed global' in msg
    assert 'add_safe_globals' not in msg  # torch's advice is left out
    assert not osp.exists(marker)


def test_embedding_that_cannot_be_mapped_is_an_error(tmp_path):
    """A 4x4 conv checkpoint under a depthwise separable embedding: an error
    that names both forms and the way to train that embedding from scratch,
    not a warning over a random embedding."""
    path = str(tmp_path / 'in1k.pth')
    torch.save({'model': ReferenceCAT(**MINI).state_dict()}, path)
    model = CAT(arch=MINI, init_cfg=dict(type='Pretrained', checkpoint=path),
                embed_conv_cfg=dict(type='DepthwiseSeparableConv2d'))
    with pytest.raises(RuntimeError) as info:
        model.init_weights()
    msg = str(info.value)
    for part in (path, 'patch_embed.proj.weight (16, 3, 4, 4)',
                 "embed_conv_cfg={'type': 'DepthwiseSeparableConv2d'}",
                 'patch_embed.proj.depthwise.weight (3, 1, 4, 4)',
                 'model.backbone.fresh_embed_conv=True'):
        assert part in msg, (part, msg)


def test_resnet_weights_are_an_error_listing_the_mismatch():
    from mmdet.models.backbones import ResNet
    resnet = ResNet(depth=18).state_dict()
    with pytest.raises(RuntimeError) as info:
        CAT(arch=MINI).load_pretrained({'state_dict': resnet},
                                       source='r18.pth')
    msg = str(info.value)
    assert 'r18.pth does not look like a CAT checkpoint' in msg
    assert 'only 0 of' in msg
    assert 'Missing: [' in msg and 'patch_embed.proj.weight' in msg
    assert 'stages.0.blocks.0.pre_ipsa' in msg
    assert 'unexpected: [' in msg and 'conv1.weight' in msg


def test_partial_checkpoint_warns_with_the_key_lists(monkeypatch):
    from mmcat.models.backbones import cat as cat_module
    logged = []
    monkeypatch.setattr(cat_module, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    state = CAT(arch=MINI).state_dict()
    del state['stages.3.blocks.0.post_ipsa.mlp.fc2.weight']
    state['extra.weight'] = torch.zeros(1)
    state['norm0.weight'] = torch.zeros(5)
    CAT(arch=MINI).load_pretrained(state, source='part.pth')
    assert len(logged) == 1
    msg, kwargs = logged[0]
    assert kwargs.get('level') == 30  # WARNING
    assert 'from part.pth' in msg
    assert ("Missing (left initialised): "
            "['stages.3.blocks.0.post_ipsa.mlp.fc2.weight', 'norm0.weight']"
            ) in msg
    assert "unexpected (ignored): ['extra.weight']" in msg
    assert "wrong shape (ignored): ['norm0.weight']" in msg
