"""mmcat.visualization.prediction_sheet: the demo's sheet of validation
images (ground truth, then each model's predictions), drawn where the
models predict, and tools/demo.py writing it from the runs' last
checkpoints.

The models are the demo configs' at their initial weights, the FCOS
classification bias set so that one model's boxes pass the config's score
threshold and the other's do not, and the regression bias so that the boxes
are tens of pixels wide.
"""
import os
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from tool_loader import REPO_ROOT, load_tool

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')


def _models(task, data_root, biases=(0., -10.)):
    """(cfg, [(name, model)]) of the task's CAT and ResNet-18 demo configs,
    reading data from ``data_root``."""
    from mmcat.visualization import load_model
    names = dict(det=('fcos_cat_demo.py', 'fcos_r18_demo.py'),
                 seg=('sem-fpn_cat_demo.py', 'sem-fpn_r18_demo.py'))[task]
    cfgs, models = [], []
    for name, config, bias in zip(('CAT', 'ResNet-18'), names, biases):
        cfg, model = load_model(osp.join(DEMO, config))
        cfg.test_dataloader.dataset.data_root = data_root
        torch.manual_seed(0)
        model.init_weights()
        if task == 'det':
            torch.nn.init.constant_(model.bbox_head.conv_cls.bias, bias)
            # boxes 2 strides from their centres (at init they are ~0 px)
            torch.nn.init.constant_(model.bbox_head.conv_reg.bias, 2.)
        cfgs.append(cfg)
        models.append((name, model.eval()))
    return cfgs[0], models


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from mmcat.datasets.synthetic import write_ade, write_coco
    root = str(tmp_path_factory.mktemp('sheet'))
    return dict(det=write_coco(root, seed=0, num_train=1, num_val=2)['root'],
                seg=write_ade(root, seed=0, num_train=1, num_val=2)['root'])


def _plain(path, scale):
    image = mmcv.imread(path, channel_order='rgb')
    h, w = image.shape[:2]
    return mmcv.imresize(image, (w * scale, h * scale)).astype(int)


def test_detection_sheet_draws_boxes_where_the_model_predicts(data, tmp_path):
    from mmcat.visualization import write_prediction_sheet
    from mmcat.visualization.prediction_sheet import GAP, HEADER
    cfg, models = _models('det', data['det'])
    path = str(tmp_path / 'predictions.png')
    sheet = write_prediction_sheet(path, cfg, models, num_images=4, scale=2)
    gap, header = GAP, HEADER
    # 2 validation images (fewer than asked), 128 px, enlarged twice
    assert sheet.columns == ['ground truth', 'CAT', 'ResNet-18']
    assert len(sheet.image_paths) == 2
    assert sheet.image.shape == (header + gap + 2 * (256 + gap),
                                 gap + 3 * (256 + gap), 3)
    assert mmcv.imread(path).shape == sheet.image.shape

    thr = cfg.infer_score_thr
    for row, image_path in enumerate(sheet.image_paths):
        plain = _plain(image_path, 2)
        panels = [sheet.image[y0:y1, x0:x1].astype(int)
                  for y0, x0, y1, x1 in (sheet.cells[(row, c)]
                                         for c in range(3))]
        # the model whose boxes all score below the threshold: nothing drawn
        assert np.abs(panels[2] - plain).mean() < 1
        # the ground truth and the CAT's boxes are drawn
        assert np.abs(panels[0] - plain).max(-1).mean() > 1
        pred = _predict(models[0][1], cfg, row)
        boxes = pred.bboxes[pred.scores > thr]
        wide = boxes[(boxes[:, 2] - boxes[:, 0] > 4)
                     & (boxes[:, 3] - boxes[:, 1] > 4)]
        assert len(wide)
        # the top edge of a drawn box, in the enlarged panel
        x1, y1, x2, y2 = (int(v) * 2 for v in wide[0])
        edge = (slice(max(y1 - 1, 0), y1 + 2), slice(x1 + 2, x2 - 2))
        assert np.abs(panels[1][edge] - plain[edge]).max(-1).mean() > 30


def _predict(model, cfg, index):
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    with torch.no_grad():
        return model.test_step(pseudo_collate([dataset[index]]))[0] \
            .pred_instances


def test_segmentation_sheet(data, tmp_path):
    from mmcat.visualization import write_prediction_sheet
    cfg, models = _models('seg', data['seg'])
    sheet = write_prediction_sheet(str(tmp_path / 'p.png'), cfg, models,
                                   num_images=1, scale=1)
    assert len(sheet.cells) == 3 and len(sheet.image_paths) == 1
    plain = _plain(sheet.image_paths[0], 1)
    for col in range(3):  # every panel has its label map drawn over it
        y0, x0, y1, x1 = sheet.cells[(0, col)]
        assert (y1 - y0, x1 - x0) == plain.shape[:2]
        assert np.abs(sheet.image[y0:y1, x0:x1] - plain).mean() > 10


def test_demo_writes_the_sheet_from_the_last_checkpoints(data, tmp_path):
    demo = load_tool('tools/demo.py')
    _, models = _models('det', data['det'])
    runs = demo.TASKS['det'][1]
    dirs = []
    for (name, _), (_, model) in zip(runs, models):
        work_dir = tmp_path / name
        work_dir.mkdir()
        ckpt = str(work_dir / 'epoch_1.pth')
        torch.save(dict(state_dict=model.state_dict()), ckpt)
        (work_dir / 'last_checkpoint').write_text(ckpt)
        dirs.append(str(work_dir))
    options = ['--cfg-options', f'test_dataloader.dataset.data_root='
               f'{data["det"]}']
    path = demo.write_predictions(runs, dirs, str(tmp_path), options)
    assert path == str(tmp_path / 'predictions.png')
    from mmcat.visualization.prediction_sheet import GAP, HEADER
    image = mmcv.imread(path, channel_order='rgb').astype(int)
    cell = 256 + GAP
    assert image.shape[:2] == (HEADER + GAP + 2 * cell, GAP + 3 * cell)
    first = osp.join(data['det'], 'val2017', sorted(
        os.listdir(osp.join(data['det'], 'val2017')))[0])
    plain = _plain(first, 2)
    y0 = HEADER + GAP
    cat, resnet = (image[y0:y0 + 256, GAP + c * cell:GAP + c * cell + 256]
                   for c in (1, 2))
    # the trained weights were loaded: CAT's boxes drawn, ResNet's none
    assert np.abs(cat - plain).max(-1).mean() > 1
    assert np.abs(resnet - plain).mean() < 1
