"""What the deployment tests share: the demo models with weights that give
many detections, their images, and a one-to-one match of detections."""
import os
import os.path as osp
from typing import List, Optional, Tuple, Union

import torch
from tool_loader import REPO_ROOT

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')
FCOS = osp.join(DEMO, 'fcos_cat_demo.py')
SEM_FPN = osp.join(DEMO, 'sem-fpn_cat_demo.py')


def saved_model(config, data_root: str, ckpt: str):
    """The config's model (a path or a Config; data under ``data_root``),
    saved to ``ckpt``; (cfg, model in eval mode).

    The FCOS weights are the config's initial ones with a classification
    layer that spreads the class probabilities around 0.5, so that many boxes
    pass the config's score threshold and comparisons are not vacuous; its
    test_cfg keeps every candidate (no top-k cut, where two nearly equal
    scores could trade places)."""
    from mmengine.config import Config

    from mmcat.visualization import load_model
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if 'bbox_head' in cfg.model:
        cfg.model.test_cfg.update(nms_pre=100000, max_per_img=100000)
    cfg, model = load_model(cfg)
    for loader in ('test_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = data_root
    torch.manual_seed(0)
    model.init_weights()
    if 'bbox_head' in cfg.model:
        torch.nn.init.normal_(model.bbox_head.conv_cls.weight, std=0.05)
        torch.nn.init.constant_(model.bbox_head.conv_cls.bias, 0.)
        # boxes 2 strides from their centres (at init they are ~0 px)
        torch.nn.init.constant_(model.bbox_head.conv_reg.bias, 2.)
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    model.cfg = cfg
    return cfg, model.eval()


def val_images(folder: str) -> List[str]:
    """The image files in ``folder``, sorted."""
    return [osp.join(folder, f) for f in sorted(os.listdir(folder))]


def match_detections(ref, got, thr: float) -> int:
    """Detections at score >= ``thr`` of both, matched one to one (same
    label, scores within 1e-4, boxes within 1e-3 pixels); their number."""
    keep_r, keep_g = ref.scores >= thr, got.scores >= thr
    r_boxes, g_boxes = ref.bboxes[keep_r], got.bboxes[keep_g]
    r_scores, g_scores = ref.scores[keep_r], got.scores[keep_g]
    r_labels, g_labels = ref.labels[keep_r], got.labels[keep_g]
    assert len(r_scores) == len(g_scores)
    free = torch.ones(len(g_scores), dtype=torch.bool)
    for box, score, label in zip(r_boxes, r_scores, r_labels):
        close = (free & (g_labels == label)
                 & ((g_scores - score).abs() < 1e-4)
                 & ((g_boxes - box).abs().amax(1) < 1e-3))
        assert close.any(), f'no exported box for {label} {score} {box}'
        free[torch.nonzero(close)[0, 0]] = False
    return len(r_scores)


def resized_test_pipeline(cfg, size: Union[int, tuple]):
    """``cfg`` with its test images resized to ``size`` (keeping their
    aspect) before anything else of the test pipeline."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    pipeline = [dict(t) for t in cfg.test_dataloader.dataset.pipeline
                if t['type'] != 'Resize']
    pipeline.insert(1, dict(type='Resize', scale=size, keep_ratio=True))
    cfg.test_dataloader.dataset.pipeline = pipeline
    cfg.val_dataloader.dataset.pipeline = pipeline
    cfg.test_pipeline = pipeline
    return cfg


def demo_data(root) -> Tuple[dict, list]:
    """Demo data under ``root``/data: 3 detection and 2 segmentation
    validation images. Returns their folders (``det_dir``, ``seg_dir``) and
    the (key, config, data root) of the two demo models."""
    from mmcat.datasets.synthetic import write_ade, write_coco
    coco = write_coco(str(root / 'data'), seed=0, num_train=1, num_val=3)
    ade = write_ade(str(root / 'data'), seed=0, num_train=1, num_val=2)
    dirs = dict(det_dir=osp.join(coco['root'], 'val2017'),
                seg_dir=osp.join(ade['root'], 'images', 'validation'))
    return dirs, [('det', FCOS, coco['root']), ('seg', SEM_FPN, ade['root'])]


def boxes_equal_pytorch(runner, model, folder: str, thr: float,
                        img_shape: Optional[tuple] = None) -> int:
    """Checks, on every image of ``folder``, that the exported detector
    (``runner``) gives ``mmdet.apis.inference_detector``'s detections at
    ``thr`` (:func:`match_detections`), at the image's size (and network
    input ``img_shape`` when given); the number compared."""
    import mmcv
    from mmdet.apis import inference_detector
    compared = 0
    for image in val_images(folder):
        ref = inference_detector(model, image)
        got = runner.predict(image)
        if img_shape is not None:
            assert got.img_shape == ref.img_shape == img_shape
        assert got.ori_shape == mmcv.imread(image).shape[:2]
        compared += match_detections(ref.pred_instances, got.pred_instances,
                                     thr)
    return compared


def assert_label_maps_equal_pytorch(runner, model, folder: str) -> None:
    """On every image of ``folder``: the exported segmentor's label map
    equals ``mmseg.apis.inference_model``'s pixel for pixel (more than one
    class) and its logits within 1e-4."""
    import mmcv
    from mmseg.apis import inference_model
    for image in val_images(folder):
        ref = inference_model(model, image)
        got = runner.predict(image)
        labels = got.pred_sem_seg.data
        assert labels.shape[1:] == mmcv.imread(image).shape[:2]
        assert torch.equal(labels, ref.pred_sem_seg.data)
        assert len(labels.unique()) > 1
        torch.testing.assert_close(got.seg_logits.data,
                                   ref.seg_logits.data, rtol=1e-4,
                                   atol=1e-4)
