"""A sheet of validation images, one row each: the ground truth, then each
model's predictions, side by side, drawn by the config's visualizer
(MMDetection's DetLocalVisualizer: boxes, masks; MMSegmentation's
SegLocalVisualizer: label maps).

The images come from the config's test dataset through its test pipeline;
the ground truth is what that pipeline loads (MMDetection's and
MMSegmentation's test pipelines load annotations after resizing, so it is in
pixels of the original image, as the models' rescaled predictions are).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS, init_default_scope

from .visualizer import config_visualizer

#: White margin between cells, and the height of the column titles (pixels).
GAP = 4
HEADER = 28


@dataclass
class Sheet:
    """A drawn sheet.

    Attributes:
        image: (H, W, 3) RGB uint8.
        columns: the column titles, 'ground truth' first.
        cells: (row, column) -> (y0, x0, y1, x1) of that panel in ``image``.
        scale: how much each image was enlarged before drawing.
        image_paths: the validation image of each row.
    """
    image: np.ndarray
    columns: List[str]
    cells: Dict[Tuple[int, int], Tuple[int, int, int, int]]
    scale: int
    image_paths: List[str] = field(default_factory=list)


def load_model(config: Union[str, Config], checkpoint: Optional[str] = None,
               cfg_options: Optional[dict] = None) -> Tuple[Config,
                                                            nn.Module]:
    """The config (options merged) and its model in eval mode, with
    ``checkpoint`` loaded strictly (None: the model as built)."""
    from mmengine.runner import load_checkpoint

    from mmcat.engine import setup_runtime
    setup_runtime()  # weights-only loading of mmengine's checkpoints
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        logger='silent')
    return cfg, model.eval()


def _scaled(image: np.ndarray, sample, scale: int):
    """``image`` (H, W, 3) and a copy of ``sample`` with its boxes (as plain
    (N, 4) tensors, which the visualizer draws), masks and label maps
    enlarged ``scale`` times, so that labels stay legible."""
    import mmcv
    h, w = image.shape[:2]
    if scale != 1:
        image = mmcv.imresize(image, (w * scale, h * scale))
    sample = sample.clone()
    for key in ('gt_instances', 'pred_instances'):
        if key not in sample:
            continue
        inst = sample.get(key)
        if 'bboxes' in inst:
            boxes = inst.bboxes
            boxes = getattr(boxes, 'tensor', boxes)  # mmdet's box types
            inst.bboxes = boxes * scale
        if scale == 1:
            continue
        if 'masks' in inst:
            masks = inst.masks
            inst.masks = (F.interpolate(
                masks[None].float(), scale_factor=scale,
                mode='nearest')[0].bool() if isinstance(masks, torch.Tensor)
                else masks.rescale(scale))
    for key in ('gt_sem_seg', 'pred_sem_seg'):
        if key in sample and scale != 1:
            data = sample.get(key).data
            up = F.interpolate(data[None].float(), scale_factor=scale,
                               mode='nearest')[0].to(data.dtype)
            sample.set_field(type(sample.get(key))(data=up), key)
    return image, sample


def _draw(visualizer, image: np.ndarray, sample, gt: bool,
          score_thr: float) -> np.ndarray:
    """One panel: the ground truth (``gt``) or the predictions."""
    extra = ({} if type(visualizer).__name__.startswith('Seg') else
             dict(pred_score_thr=score_thr))
    visualizer.add_datasample('sheet', image, sample, draw_gt=gt,
                              draw_pred=not gt, **extra)
    return visualizer.get_image()


def _title(panel: np.ndarray, text: str) -> None:
    """Write ``text`` in black, left-aligned, into a white strip."""
    import cv2
    cv2.putText(panel, text, (GAP, HEADER - 9), cv2.FONT_HERSHEY_SIMPLEX,
                0.5, (0, 0, 0), 1, cv2.LINE_AA)


def prediction_sheet(cfg: Config, models: Sequence[Tuple[str, nn.Module]],
                     num_images: int = 4, score_thr: Optional[float] = None,
                     scale: int = 2) -> Sheet:
    """Draw the first ``num_images`` images of the config's test dataset:
    per row the ground truth, then each model's predictions.

    Args:
        cfg: the config whose test dataset, pipeline and visualizer are
            used (the models' configs share them).
        models: (column title, model in eval mode) pairs.
        num_images: rows.
        score_thr: detections drawn from this score on (default: the
            config's ``infer_score_thr``, else 0.3); unused for label maps.
        scale: each image is enlarged this many times before drawing.
    """
    if score_thr is None:
        score_thr = cfg.get('infer_score_thr', None)
        score_thr = 0.3 if score_thr is None else float(score_thr)
    import mmcv
    from mmengine.dataset import pseudo_collate
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    if len(dataset) == 0:
        raise ValueError('the config\'s test dataset has no images')
    visualizer = config_visualizer(cfg)
    columns = ['ground truth'] + [name for name, _ in models]
    rows: List[List[np.ndarray]] = []
    paths = []
    for index in range(min(num_images, len(dataset))):
        row = []
        for col, (_, model) in enumerate([(None, None)] + list(models)):
            item = dataset[index]
            if model is None:
                sample = item['data_samples']
            else:
                with torch.no_grad():
                    sample = model.test_step(pseudo_collate([item]))[0]
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            image, sample = _scaled(image, sample, scale)
            row.append(_draw(visualizer, image, sample, model is None,
                             score_thr))
        paths.append(item['data_samples'].img_path)
        rows.append(row)
    cell_h = max(p.shape[0] for r in rows for p in r)
    cell_w = max(p.shape[1] for r in rows for p in r)
    height = HEADER + GAP + len(rows) * (cell_h + GAP)
    width = GAP + len(columns) * (cell_w + GAP)
    sheet = np.full((height, width, 3), 255, np.uint8)
    cells = {}
    for c, name in enumerate(columns):
        x0 = GAP + c * (cell_w + GAP)
        header = sheet[:HEADER, x0:x0 + cell_w]
        _title(header, name)
        for r, row in enumerate(rows):
            y0 = HEADER + GAP + r * (cell_h + GAP)
            panel = row[c]
            sheet[y0:y0 + panel.shape[0], x0:x0 + panel.shape[1]] = panel
            cells[(r, c)] = (y0, x0, y0 + panel.shape[0],
                             x0 + panel.shape[1])
    return Sheet(sheet, columns, cells, scale, paths)


def write_prediction_sheet(path: str, cfg: Config,
                           models: Sequence[Tuple[str, nn.Module]],
                           **kwargs) -> Sheet:
    """:func:`prediction_sheet`, written to ``path`` (PNG)."""
    import mmcv
    sheet = prediction_sheet(cfg, models, **kwargs)
    mmcv.imwrite(sheet.image[..., ::-1], path)
    return sheet
