"""A detector or segmentor built from a config for the analysis tools
(``get_flops``, ``benchmark_fps``, ``inspect_model``), the input size they
measure it at, and the inputs of its forward pass."""
import argparse
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope

#: (H, W) the analysis tools use unless told otherwise, by default scope:
#: the size the CAT paper reports detection FLOPs at, and ADE20K's crop.
DEFAULT_INPUT_SIZES: Dict[str, Tuple[int, int]] = {
    'mmdet': (800, 1280), 'mmseg': (512, 512)}
#: The parts of a detector or segmentor reported one by one.
MODEL_PARTS = ('backbone', 'neck', 'decode_head', 'bbox_head', 'rpn_head',
               'roi_head', 'auxiliary_head')


@dataclass
class ConfigModel:
    """A model built from a config.

    Attributes:
        cfg: the loaded config, options merged.
        scope: its default scope (``'mmdet'`` or ``'mmseg'``).
        model: the built model, in eval mode, with the weights it was built
            with (no checkpoint loaded).
        input_size: (H, W) to measure it at.
    """
    cfg: Config
    scope: str
    model: nn.Module
    input_size: Tuple[int, int]

    @property
    def backbone(self) -> nn.Module:
        """The model's backbone (the model itself when it has none)."""
        return getattr(self.model, 'backbone', self.model)


def default_input_size(scope: str) -> Tuple[int, int]:
    """(H, W) for a config of ``scope``: 512x512 for segmentation
    (``'mmseg'``), 800x1280 for detection (any other scope)."""
    return DEFAULT_INPUT_SIZES['mmseg' if scope == 'mmseg' else 'mmdet']


def model_from_config(config: str,
                      cfg_options: Optional[Dict[str, Any]] = None,
                      input_size: Optional[Sequence[int]] = None
                      ) -> ConfigModel:
    """Load ``config``, merge ``cfg_options``, make its default scope
    (``'mmdet'`` when it names none) the current one and build its model.

    Args:
        config: path of the config file.
        cfg_options: ``--cfg-options`` overrides (dotted keys).
        input_size: (H, W); None for :func:`default_input_size`.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    model = MODELS.build(cfg.model).eval()
    h, w = input_size if input_size else default_input_size(scope)
    return ConfigModel(cfg, scope, model, (h, w))


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The arguments :func:`model_from_config` takes from a command line:
    ``config``, ``--shape H W`` and ``--cfg-options``."""
    det, seg = DEFAULT_INPUT_SIZES['mmdet'], DEFAULT_INPUT_SIZES['mmseg']
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=None,
                        metavar=('H', 'W'),
                        help=f'input size (default: {det[0]} {det[1]} for '
                        f'detection, the size of the CAT paper\'s FLOPs; '
                        f'{seg[0]} {seg[1]} for segmentation)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')


def model_parts(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """(name, module) of the :data:`MODEL_PARTS` the model has."""
    parts = [(name, getattr(model, name, None)) for name in MODEL_PARTS]
    return [(name, mod) for name, mod in parts if isinstance(mod, nn.Module)]


def synthetic_data_samples(scope: str, batch: int, h: int,
                           w: int) -> List[Any]:
    """Data samples of unscaled, unpadded H x W images, with the meta
    information mmdet's and mmseg's test steps and two-stage heads read.

    Args:
        scope: 'mmseg' for ``SegDataSample``, otherwise ``DetDataSample``.
    """
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample as Sample
    else:
        from mmdet.structures import DetDataSample as Sample
    samples = []
    for i in range(batch):
        sample = Sample()
        sample.set_metainfo(dict(
            img_id=i, img_path=f'random_{i}.jpg', ori_shape=(h, w),
            img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
            scale_factor=(1., 1.), flip=False, flip_direction=None))
        samples.append(sample)
    return samples
