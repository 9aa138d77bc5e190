"""``tools/infer.py`` on the demo models: an image folder, a video and a
segmentation, with the pictures and JSON predictions a user gets.

The checkpoints are the demo configs' models at their initial weights, with
the FCOS classification bias set so that every class scores high (boxes to
draw) or low (nothing to draw): what matters here is what the tool does with
the scores, not how good they are.
"""
import json
import os
import os.path as osp
import sys

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from tools_testkit import REPO_ROOT, run_tool, tail

PY = sys.executable
DEMO = osp.join(REPO_ROOT, 'configs', 'demo')


def _save_model(config: str, path: str, cls_bias: float = None) -> str:
    """The config's freshly initialised model as a checkpoint with the
    dataset's classes in its meta, as training writes them."""
    import mmcat.datasets  # the demo datasets' classes
    cfg = Config.fromfile(config)
    if cfg.default_scope == 'mmseg':
        from mmseg.utils import register_all_modules
    else:
        from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if cls_bias is not None:
        torch.nn.init.constant_(model.bbox_head.conv_cls.bias, cls_bias)
    meta = getattr(mmcat.datasets, cfg.train_dataloader.dataset.type).METAINFO
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(meta))), path)
    return path


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """Demo-format data (2 validation images each) and checkpoints."""
    from mmcat.datasets.synthetic import write_ade, write_coco
    root = tmp_path_factory.mktemp('infer')
    coco = write_coco(str(root / 'data'), seed=0, num_train=1, num_val=2)
    ade = write_ade(str(root / 'data'), seed=0, num_train=1, num_val=1)
    fcos = osp.join(DEMO, 'fcos_cat_demo.py')
    return dict(
        root=root,
        val_dir=osp.join(coco['root'], 'val2017'),
        ade_dir=osp.join(ade['root'], 'images', 'validation'),
        confident=_save_model(fcos, str(root / 'confident.pth'), 4.),
        unsure=_save_model(fcos, str(root / 'unsure.pth'), -1.),
        seg=_save_model(osp.join(DEMO, 'sem-fpn_cat_demo.py'),
                        str(root / 'seg.pth')))


def _infer(args, log):
    rc = run_tool([PY, 'tools/infer.py'] + [str(a) for a in args], log)
    assert rc == 0, tail(log)
    with open(log) as f:
        return f.read()


def test_folder_draws_boxes_at_the_configs_threshold(demo, tmp_path):
    out = tmp_path / 'out'
    text = _infer([
        osp.join(DEMO, 'fcos_cat_demo.py'), demo['confident'],
        demo['val_dir'], '--out', out, '--device', 'cpu'
    ], str(tmp_path / 'log.txt'))
    assert "score threshold 0.15 (the config's infer_score_thr)" in text
    images = sorted(os.listdir(demo['val_dir']))
    assert len(images) == 2
    for image in images:
        name = osp.splitext(image)[0]
        with open(out / 'preds' / f'{name}.json') as f:
            pred = json.load(f)
        assert pred['score_thr'] == 0.15
        drawn = [s for s in pred['scores'] if s >= 0.15]
        assert pred['num_drawn'] == len(drawn) > 0
        assert len(pred['bboxes']) == len(pred['labels'])
        assert set(pred['label_names']) <= {
            'circle', 'square', 'triangle', 'ring', 'cross', 'star'}
        # the boxes are drawn: the picture is not the input re-encoded
        src = mmcv.imread(osp.join(demo['val_dir'], image)).astype(int)
        vis = mmcv.imread(str(out / 'vis' / f'{name}.jpg')).astype(int)
        assert vis.shape == src.shape
        assert (np.abs(vis - src).max(axis=2) > 60).mean() > 0.01


def test_nothing_drawn_says_the_best_score(demo, tmp_path):
    image = osp.join(demo['val_dir'], sorted(os.listdir(demo['val_dir']))[0])
    text = _infer([
        osp.join(DEMO, 'fcos_cat_demo.py'), demo['unsure'], image, '--out',
        tmp_path / 'out', '--score-thr', 0.2
    ], str(tmp_path / 'log.txt'))
    assert 'score threshold 0.2 (--score-thr)' in text
    name = osp.splitext(osp.basename(image))[0]
    with open(tmp_path / 'out' / 'preds' / f'{name}.json') as f:
        pred = json.load(f)
    best = max(pred['scores'])
    assert best < 0.2 and pred['num_drawn'] == 0
    assert f'nothing drawn: best score {best:.3f} < threshold 0.2' in text


def test_video(demo, tmp_path):
    import cv2
    video = str(tmp_path / 'clip.mp4')
    frames = [mmcv.imread(osp.join(demo['val_dir'], f))
              for f in sorted(os.listdir(demo['val_dir']))]
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             frames[0].shape[1::-1])
    for frame in frames + frames[:1]:
        writer.write(frame)
    writer.release()
    out = tmp_path / 'out'
    _infer([
        osp.join(DEMO, 'fcos_cat_demo.py'), demo['confident'], video,
        '--out', out
    ], str(tmp_path / 'log.txt'))
    with open(out / 'preds' / 'clip.json') as f:
        pred = json.load(f)
    assert len(pred['frames']) == 3
    assert all(p['num_drawn'] > 0 for p in pred['frames'])
    cap = cv2.VideoCapture(str(out / 'vis' / 'clip.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()


def test_segmentation_colour_map_and_label_map(demo, tmp_path):
    out = tmp_path / 'out'
    _infer([
        osp.join(DEMO, 'sem-fpn_cat_demo.py'), demo['seg'], demo['ade_dir'],
        '--out', out
    ], str(tmp_path / 'log.txt'))
    image = sorted(os.listdir(demo['ade_dir']))[0]
    name = osp.splitext(image)[0]
    with open(out / 'preds' / f'{name}.json') as f:
        pred = json.load(f)
    label_map = mmcv.imread(str(out / 'preds' / pred['label_map']),
                            flag='unchanged')
    src = mmcv.imread(osp.join(demo['ade_dir'], image))
    assert label_map.shape == src.shape[:2] == tuple(pred['shape'])
    assert set(np.unique(label_map)) <= set(range(len(pred['classes'])))
    assert abs(sum(pred['pixel_share'].values()) - 1) < 1e-4
    vis = mmcv.imread(str(out / 'vis' / f'{name}.jpg'))
    assert vis.shape == src.shape
