"""tools/deployment/ort_infer.py and mmcat.deployment.OrtModel: an exported
demo FCOS / Semantic FPN in onnxruntime gives PyTorch's boxes, scores and
labels / label map on the demo's validation images, draws them, and refuses
bad input (the models: ``deploy_testkit.saved_model``).
"""
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
from deploy_testkit import (FCOS, SEM_FPN, assert_label_maps_equal_pytorch,
                            boxes_equal_pytorch, demo_data, saved_model,
                            val_images)
from tool_loader import load_tool

pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')

export = load_tool('tools/deployment/export.py')
ort_infer = load_tool('tools/deployment/ort_infer.py')


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """Demo data (3 detection, 2 segmentation validation images), the two
    models, and their ONNX exports."""
    root = tmp_path_factory.mktemp('ort')
    out, models = demo_data(root)
    for key, config, data_root in models:
        ckpt = str(root / f'{key}.pth')
        out[key] = saved_model(config, data_root, ckpt)
        onnx_file = str(root / f'{key}.onnx')
        export.export(export.parse_args([config, ckpt, '--out', onnx_file,
                                         '--no-verify']))
        out[f'{key}_onnx'] = onnx_file
    return out


def test_fcos_boxes_equal_pytorch(demo):
    from mmcat.deployment import OrtModel
    cfg, model = demo['det']
    compared = boxes_equal_pytorch(OrtModel(demo['det_onnx'], cfg), model,
                                   demo['det_dir'], cfg.infer_score_thr)
    print(f"{compared} detections compared")
    assert compared >= 10  # boxes above the threshold were compared


def test_semantic_fpn_label_map_equals_pytorch(demo):
    from mmcat.deployment import OrtModel
    cfg, model = demo['seg']
    assert_label_maps_equal_pytorch(OrtModel(demo['seg_onnx'], cfg), model,
                                    demo['seg_dir'])


def test_tool_draws_and_writes_the_detections(demo, tmp_path):
    from mmcat.datasets.classes import shape_classes
    cfg, _ = demo['det']
    image = val_images(demo['det_dir'])[0]
    vis, preds = str(tmp_path / 'vis.png'), str(tmp_path / 'p.json')
    assert ort_infer.main([demo['det_onnx'], image, '--config', FCOS,
                           '--out', vis, '--json', preds]) == 0
    with open(preds) as f:
        pred = json.load(f)
    assert pred['score_thr'] == cfg.infer_score_thr  # the config's default
    assert len(pred['bboxes']) == len(pred['labels']) > 0
    assert min(pred['scores']) >= cfg.infer_score_thr
    assert set(pred['label_names']) <= set(shape_classes())
    src = mmcv.imread(image).astype(int)
    drawn = mmcv.imread(vis).astype(int)
    assert drawn.shape == src.shape
    # a drawn box's outline: its top edge's pixels changed
    boxes = np.array(pred['bboxes'])
    wide = boxes[(boxes[:, 2] - boxes[:, 0] > 4)
                 & (boxes[:, 3] - boxes[:, 1] > 4)]
    x1, y1, x2, y2 = (int(v) for v in wide[0])
    top = slice(max(y1 - 1, 0), y1 + 2), slice(x1 + 2, x2 - 2)
    assert np.abs(drawn[top] - src[top]).max(-1).mean() > 30


def test_tool_draws_a_label_map(demo, tmp_path):
    image = val_images(demo['seg_dir'])[0]
    vis, preds = str(tmp_path / 'vis.png'), str(tmp_path / 'p.json')
    assert ort_infer.main([demo['seg_onnx'], image, '--config', SEM_FPN,
                           '--out', vis, '--json', preds]) == 0
    with open(preds) as f:
        pred = json.load(f)
    assert abs(sum(pred['pixel_share'].values()) - 1) < 1e-3
    src, drawn = mmcv.imread(image).astype(int), mmcv.imread(vis).astype(int)
    assert drawn.shape == src.shape and np.abs(drawn - src).mean() > 10


@pytest.mark.parametrize('case,message', [
    ('not_onnx', 'is not an ONNX model'),
    ('wrong_config', 'pass the config the file was exported from'),
    ('missing_image', 'not found'),
])
def test_bad_input_exits_2_and_says_why(demo, tmp_path, capsys, case,
                                        message):
    onnx_file, config = demo['seg_onnx'], SEM_FPN
    image = val_images(demo['det_dir'])[0]
    if case == 'not_onnx':
        onnx_file = str(tmp_path / 'x.onnx')
        with open(onnx_file, 'w') as f:
            f.write('not a model')
    elif case == 'wrong_config':
        config = FCOS
    else:
        image = str(tmp_path / 'missing.jpg')
    out = str(tmp_path / 'vis.png')
    assert ort_infer.main([onnx_file, image, '--config', config, '--out',
                           out]) == 2
    assert message in capsys.readouterr().err
    assert not osp.exists(out)
