"""The config's registered visualizer (MMDetection's DetLocalVisualizer,
MMSegmentation's SegLocalVisualizer) with its dataset's classes and palette,
for drawing predictions outside a runner."""
import itertools
from typing import Dict

from mmengine.config import Config
from mmengine.registry import DATASETS, VISUALIZERS, init_default_scope

_count = itertools.count()


def dataset_meta(cfg: Config) -> Dict:
    """``classes`` and ``palette`` of the config's test dataset: its class's
    ``METAINFO`` updated by the config's ``metainfo``."""
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    ds = cfg.test_dataloader.dataset
    kind = ds.type
    if isinstance(kind, str):  # the registry of the config's scope
        kind = DATASETS.get(kind if '.' in kind else f'{scope}.{kind}')
    meta = dict(getattr(kind, 'METAINFO', {}) or {})
    meta.update(ds.get('metainfo', None) or {})
    return meta


def config_visualizer(cfg: Config):
    """A new instance of the config's ``visualizer`` (no storage backends)
    that knows the dataset's classes and palette.

    mmengine keeps visualizers by name; each call gets a name of its own so
    that several can be alive at once.
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    default = ('SegLocalVisualizer' if cfg.get('default_scope') == 'mmseg'
               else 'DetLocalVisualizer')
    vis_cfg = dict(cfg.get('visualizer', None) or dict(type=default))
    vis_cfg.update(vis_backends=None, save_dir=None,
                   name=f'mmcat-vis-{next(_count)}')
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dataset_meta(cfg)
    return visualizer
