"""No CAT config builds a parameter that a training step leaves without a
gradient, so distributed training needs no ``find_unused_parameters`` (a
walk of the autograd graph at every step on every GPU).

Each model of ``configs/*cat*.py``, ``configs/demo/*cat*.py`` and
``configs/ablation/*.py`` is built (no Runner, no pretrained weights; of
models that differ only in the backbone's size, the smallest) and runs
forward and backward on one generated 96x96 image with two boxes (and their
masks) or a label map, sampling few anchors and RoIs. Frozen parameters
(``requires_grad=False``) are not counted. On each device of the ``device``
fixture; on CUDA, two-stage models need mmcv's CUDA ops (NMS, RoIAlign) and
are skipped with an mmcv built without them.
"""
import glob
import os.path as osp
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope

from mmcat.engine import register_scope_modules

CONFIG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')
SIZE = 96


def _cat_configs() -> List[str]:
    """The CAT configs, relative to ``configs/``, smaller backbones first."""
    paths = (glob.glob(osp.join(CONFIG_DIR, '*cat*.py')) +
             glob.glob(osp.join(CONFIG_DIR, 'demo', '*cat*.py')) +
             glob.glob(osp.join(CONFIG_DIR, 'ablation', '*.py')))
    size_rank = {'cat_t': 'cat_0', 'cat_s': 'cat_1', 'cat_b': 'cat_2'}

    def order(name: str) -> str:
        for size, rank in size_rank.items():
            name = name.replace(size, rank)
        return name

    return sorted((osp.relpath(p, CONFIG_DIR) for p in paths), key=order)


# The models tested so far, less what only sizes them (backbone arch, neck
# widths, pretrained weights), and the config that built each.
_tested: Dict[str, str] = {}


def _same_but_size(model: Config) -> str:
    model = model.to_dict()
    for key in ('arch', 'init_cfg'):
        model['backbone'].pop(key, None)
    model.get('neck', {}).pop('in_channels', None)
    return repr(model)


def _fewer_samples(cfg) -> None:
    """Train with fewer sampled anchors and RoIs: what is sampled does not
    change which parameters are used, only the cost."""
    if isinstance(cfg, dict):
        sampler = cfg.get('sampler', None)
        if isinstance(sampler, dict) and 'num' in sampler:
            sampler['num'] = min(sampler['num'], 16)
        for key in ('max_per_img', 'nms_pre'):
            if isinstance(cfg.get(key, None), int):
                cfg[key] = min(cfg[key], 64)
        children = cfg.values()
    elif isinstance(cfg, (list, tuple)):
        children = cfg
    else:
        return
    for child in children:
        _fewer_samples(child)


def _det_batch(with_mask: bool) -> dict:
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(
        batch_size=1, image_shapes=[(3, SIZE, SIZE)], num_items=[2],
        num_classes=2, with_mask=with_mask)  # labels: 1


def _seg_batch() -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(
        img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
        pad_shape=(SIZE, SIZE)))
    sample.gt_sem_seg = PixelData(
        data=torch.randint(0, 2, (1, SIZE, SIZE), dtype=torch.long))
    return dict(inputs=[torch.randint(0, 256, (3, SIZE, SIZE),
                                      dtype=torch.uint8)],
                data_samples=[sample])


def _mmcv_has_cuda_ops() -> bool:
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() != 'not available'


@pytest.mark.parametrize('name', _cat_configs())
def test_one_step_reaches_every_parameter(name: str,
                                          device: torch.device) -> None:
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    key = _same_but_size(cfg.model)
    if _tested.setdefault(key, name) != name:
        pytest.skip(f'the model of {_tested[key]}, in another size')
    if device.type == 'cuda' and 'roi_head' in cfg.model and \
            not _mmcv_has_cuda_ops():
        pytest.skip('proposals and RoIs need mmcv\'s CUDA ops (NMS, '
                    'RoIAlign); this mmcv was built without them')
    _fewer_samples(cfg.model.get('train_cfg', None))
    register_scope_modules(cfg)
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmseg':  # pad to the image, not to the crop
        cfg.model.data_preprocessor.size = (SIZE, SIZE)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).to(device)
    model.train()
    if cfg.default_scope == 'mmseg':
        batch = _seg_batch()
    else:
        batch = _det_batch(
            with_mask='mask_head' in cfg.model.get('roi_head', {}))
    data = model.data_preprocessor(batch, True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    without = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None]
    assert without == [], f'{name}: no gradient for {without}'
