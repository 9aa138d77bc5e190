"""tools/deployment/ort_infer.py and mmcat.deployment.ProgramModel on
``torch.export`` programs: an exported demo FCOS / Semantic FPN gives
PyTorch's boxes, scores and labels / label map on the demo's validation
images resized to 192 px (the demo models' programs take 129 px and more),
and refuses images below that size and files without export.py's output
names. Needs neither onnx nor onnxruntime."""
import json
import os.path as osp

import mmcv
import pytest
import torch
from deploy_testkit import (FCOS, assert_label_maps_equal_pytorch,
                            boxes_equal_pytorch, demo_data,
                            resized_test_pipeline, saved_model, val_images)
from tool_loader import load_tool

export = load_tool('tools/deployment/export.py')
ort_infer = load_tool('tools/deployment/ort_infer.py')

SIZE = 192  # above the demo models' smallest program input (129)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """Demo data (3 detection, 2 segmentation validation images), the two
    models with a test pipeline resizing to SIZE, their configs written to
    files, and their torch.export programs."""
    from mmengine.config import Config
    root = tmp_path_factory.mktemp('program')
    out, models = demo_data(root)
    for key, config, data_root in models:
        ckpt = str(root / f'{key}.pth')
        cfg = resized_test_pipeline(Config.fromfile(config), SIZE)
        out[key] = saved_model(cfg, data_root, ckpt)
        out[f'{key}_config'] = str(root / f'{key}_{SIZE}.py')
        out[key][0].dump(out[f'{key}_config'])
        program = str(root / f'{key}.pt2')
        export.export(export.parse_args([
            config, ckpt, '--out', program, '--format', 'torch-export',
            '--no-verify']))
        out[f'{key}_program'] = program
    return out


def test_fcos_program_boxes_equal_pytorch(demo):
    from mmcat.deployment import ProgramModel, load_exported
    cfg, model = demo['det']
    runner = load_exported(demo['det_program'], cfg)
    assert isinstance(runner, ProgramModel) and runner.min_size == 129
    assert runner.kind == 'detector'
    compared = boxes_equal_pytorch(runner, model, demo['det_dir'],
                                   cfg.infer_score_thr, (SIZE, SIZE))
    assert compared >= 10  # boxes above the threshold were compared


def test_semantic_fpn_program_label_map_equals_pytorch(demo):
    from mmcat.deployment import load_exported
    cfg, model = demo['seg']
    runner = load_exported(demo['seg_program'], cfg)
    assert runner.kind == 'segmentor'
    assert_label_maps_equal_pytorch(runner, model, demo['seg_dir'])


def test_tool_runs_a_program(demo, tmp_path):
    image = val_images(demo['det_dir'])[0]
    vis, preds = str(tmp_path / 'vis.png'), str(tmp_path / 'p.json')
    assert ort_infer.main([demo['det_program'], image, '--config',
                           demo['det_config'], '--out', vis, '--json',
                           preds]) == 0
    with open(preds) as f:
        pred = json.load(f)
    assert len(pred['bboxes']) == len(pred['labels']) > 0
    assert mmcv.imread(vis).shape == mmcv.imread(image).shape


@pytest.mark.parametrize('case,message', [
    # the demo config resizes to 128 px, below the program's 129
    ('small_image', 'below 129, the smallest H and W'),
    ('no_names', 'has no output names'),
    ('not_a_program', 'is not a torch.export program'),
    ('wrong_config', 'pass the config the file was exported from'),
])
def test_bad_input_exits_2_and_says_why(demo, tmp_path, capsys, case,
                                        message):
    program, config = demo['det_program'], demo['det_config']
    image = val_images(demo['det_dir'])[0]
    if case == 'small_image':
        config = FCOS
    elif case == 'no_names':  # a program saved without export.py's names
        program = str(tmp_path / 'plain.pt2')
        torch.export.save(torch.export.export(
            torch.nn.Conv2d(3, 4, 3), (torch.randn(1, 3, 8, 8), )), program)
    elif case == 'not_a_program':
        program = str(tmp_path / 'x.pt2')
        with open(program, 'w') as f:
            f.write('not a program')
    else:
        config = demo['seg_config']
    out = str(tmp_path / 'vis.png')
    assert ort_infer.main([program, image, '--config', config, '--out',
                           out]) == 2
    assert message in capsys.readouterr().err
    assert not osp.exists(out)
