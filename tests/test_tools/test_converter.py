"""``tools/model_converters/cat2mmcat.py``: the CAT authors' files become
mmcat's key layout and load with no missing or unexpected key; files that
hold code are refused unless the source is trusted, and then cleaned."""
import argparse
import os.path as osp
import pickle
import sys

import pytest
import torch

from mmcat.models import CAT
from mmcat.models.utils import cat_converter, is_authors_layout
from mmcat.testing.authors_files import save_authors_imagenet_file
from mmcat.testing.cat_reference import ReferenceCAT
from tool_loader import load_tool
from tools_testkit import run_tool, tail

MINI = dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))
TOOL = osp.join('tools', 'model_converters', 'cat2mmcat.py')


def _convert(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, 'argv', ['cat2mmcat.py', *args])
    load_tool(TOOL).main()


def _pretrained(path: str, **kwargs) -> CAT:
    return CAT(arch=MINI, init_cfg=dict(type='Pretrained', checkpoint=path),
               **kwargs)


@pytest.fixture
def weights_only_default(monkeypatch):
    """Neither of torch's overrides may decide the tests."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)


def test_authors_imagenet_file_converts_without_trusting_it(tmp_path):
    """The file as the authors' training script writes it (a yacs config
    beside the weights), converted by the command line in a fresh process:
    its tensors in mmcat's layout, loading strictly into CAT."""
    ref = ReferenceCAT(**MINI, classification=True,
                       num_classes=10).randomize_(31).eval()
    src, dst = str(tmp_path / 'cat_in1k.pth'), str(tmp_path / 'mmcat.pth')
    assert save_authors_imagenet_file(src, ref.state_dict()) == []
    log = str(tmp_path / 'log.txt')
    assert run_tool([sys.executable, TOOL, src, dst], log) == 0, tail(log)

    state = torch.load(dst, weights_only=True)['state_dict']
    assert not is_authors_layout(state)
    model = CAT(arch=MINI, out_indices=(3, ), drop_path_rate=0.).eval()
    model.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], ref(x)[0], atol=1e-4,
                                   rtol=1e-4)


def test_whole_detector_file_keeps_neck_and_head(tmp_path, monkeypatch):
    ref = ReferenceCAT(**MINI).randomize_(32)
    neck = {'neck.lateral_convs.0.conv.weight': torch.randn(8, 16, 1, 1),
            'bbox_head.conv_cls.bias': torch.randn(3)}
    state = {f'module.backbone.{k}': v for k, v in ref.state_dict().items()}
    state.update(neck)
    src, dst = str(tmp_path / 'fcos_authors.pth'), str(tmp_path / 'out.pth')
    torch.save({'state_dict': state, 'meta': {'epoch': 12}}, src)
    _convert(monkeypatch, src, dst)

    out = torch.load(dst, weights_only=True)['state_dict']
    for key, value in neck.items():
        assert torch.equal(out.pop(key), value), key
    assert all(k.startswith('backbone.') for k in out)
    backbone = {k[len('backbone.'):]: v for k, v in out.items()}
    assert not is_authors_layout(backbone)
    model = CAT(arch=MINI)
    model.load_state_dict(backbone, strict=True)
    expected = cat_converter(ref.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_file_in_mmcat_layout_is_left_alone(tmp_path, monkeypatch):
    src = str(tmp_path / 'mmcat.pth')
    torch.save({'state_dict': CAT(arch=MINI).state_dict()}, src)
    with pytest.raises(SystemExit, match="not in the CAT authors' layout"):
        _convert(monkeypatch, src, str(tmp_path / 'out.pth'))
    assert not osp.exists(tmp_path / 'out.pth')


@pytest.mark.skipif(torch.__version__ < '2.6',
                    reason='weights_only is the default from 2.6')
def test_trusted_file_is_cleaned_once_then_loads(tmp_path, monkeypatch,
                                                 capsys,
                                                 weights_only_default):
    """A file of the authors' code with a pickled argparse.Namespace (as
    many training scripts save) is refused; the converter's
    --unsafe-trust-source keeps its tensors, and that file loads."""
    ref = ReferenceCAT(**MINI).randomize_(7)
    src, dst = str(tmp_path / 'trusted.pth'), str(tmp_path / 'clean.pth')
    torch.save({'model': ref.state_dict(),
                'args': argparse.Namespace(lr=0.1, epochs=300)}, src)
    with pytest.raises(pickle.UnpicklingError, match='unsafe-trust-source'):
        _pretrained(src).init_weights()

    with pytest.raises(SystemExit, match='run again with '
                       '--unsafe-trust-source'):
        _convert(monkeypatch, src, dst)
    _convert(monkeypatch, '--unsafe-trust-source', src, dst)
    assert 'WARNING: --unsafe-trust-source' in capsys.readouterr().err
    clean = torch.load(dst, weights_only=True)
    assert all(isinstance(v, torch.Tensor)
               for v in clean['state_dict'].values())
    model = _pretrained(dst)
    model.init_weights()
    expected = _pretrained(src)
    expected.load_pretrained(torch.load(src, weights_only=False))
    for (name, a), b in zip(model.state_dict().items(),
                            expected.state_dict().values()):
        assert torch.equal(a, b), name
