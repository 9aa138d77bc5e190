"""tools/deployment/export.py: ONNX export at dynamic H and W, verified
against eager, and its errors."""
import os
import os.path as osp

import pytest
import torch
from tool_loader import REPO_ROOT, load_tool

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')


export = load_tool('tools/deployment/export.py')


@pytest.mark.parametrize('config,extra', [
    ('fcos_cat_demo.py', ['--backbone-only']),
    ('fcos_cat_demo.py', []),
    ('sem-fpn_cat_demo.py', []),
])
def test_onnx_matches_eager_at_every_size(tmp_path, config, extra):
    pytest.importorskip('onnxruntime')  # the program tests need neither
    pytest.importorskip('onnx')
    torch.manual_seed(0)  # the model's initial weights, whatever ran before
    out = str(tmp_path / 'model.onnx')
    args = export.parse_args([osp.join(DEMO, config), '--out', out,
                              '--verify-image', '', *extra])
    worst = export.export(args)  # 224x224, 97x61, 33x45, 513x771
    assert osp.isfile(out) and worst <= 1e-4
    assert os.listdir(tmp_path) == ['model.onnx']


@pytest.mark.parametrize('config,extra', [
    ('fcos_cat_demo.py', ['--backbone-only']),
    ('fcos_cat_demo.py', []),
    ('sem-fpn_cat_demo.py', []),
])
def test_program_matches_eager_at_every_size(tmp_path, config, extra,
                                             capsys):
    torch.manual_seed(0)
    out = str(tmp_path / 'model.pt2')
    args = export.parse_args([osp.join(DEMO, config), '--out', out,
                              '--format', 'torch-export', '--verify-image',
                              '', *extra])
    worst = export.export(args)
    assert osp.isfile(out) and worst <= 1e-4
    assert os.listdir(tmp_path) == ['model.pt2']
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's
    # the demo CAT (patch stride 4 x 2**3, patches of 4): H, W >= 129;
    # checked at the example, the smallest, odd and large sizes
    checked = [line.split(': ')[0] for line in
               capsys.readouterr().out.splitlines()
               if line.startswith('verify ')]
    assert checked == [f'verify random {s}' for s in
                       [(256, 320), (129, 129), (191, 259), (513, 771),
                        (800, 1344)]] + ['verify random batch of 3 (256, 320)']
    program = torch.export.load(out).module()
    with pytest.raises(Exception, match='>= 129'):
        program(torch.randn(1, 3, 97, 200))


def test_program_min_size_is_the_paper_cat_bound():
    from mmcat.models import CAT
    assert export.program_min_size(CAT(arch='tiny')) == 32 * 7 + 1


@pytest.mark.parametrize('argv,message', [
    (['--format', 'torch-export', '--min-size', '100'], 'below 129'),
    (['--format', 'torch-export', '--shape', '128', '256'], 'below 129'),
    (['--format', 'tflite'], 'unknown --format'),
    (['--shape', '0', '64'], 'at least 1 x 1'),
])
def test_bad_arguments_leave_no_file(tmp_path, argv, message, capsys):
    out = str(tmp_path / 'm.onnx')
    code = export.main([osp.join(DEMO, 'fcos_cat_demo.py'), '--out', out,
                        *argv])
    assert code == 2 and message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_two_stage_is_refused_with_mmdeploy_pointer(tmp_path, capsys):
    out = str(tmp_path / 'm.onnx')
    code = export.main([osp.join(DEMO, 'mask-rcnn_cat_demo.py'), '--out',
                        out])
    err = capsys.readouterr().err
    assert code == 2 and 'RoI head' in err and 'MMDeploy' in err
    assert os.listdir(tmp_path) == []


def test_checkpoint_that_does_not_fit(tmp_path, capsys):
    import torch
    ckpt = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'foo.weight': torch.zeros(2)}}, ckpt)
    out = str(tmp_path / 'm.onnx')
    code = export.main([osp.join(DEMO, 'fcos_cat_demo.py'), ckpt, '--out',
                        out])
    assert code == 2 and 'does not fit' in capsys.readouterr().err
    assert not osp.exists(out)
