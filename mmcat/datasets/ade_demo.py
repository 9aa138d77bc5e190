"""MMSegmentation dataset for the synthetic ADE20K-format scenes."""
from __future__ import annotations

from mmseg.datasets import ADE20KDataset
from mmseg.registry import DATASETS

from .classes import ade_classes, class_palette
from .missing import check_data_exists

__all__ = ['ADE20KDemoDataset']


@DATASETS.register_module()
class ADE20KDemoDataset(ADE20KDataset):
    """:class:`ADE20KDataset` with the demo's classes.

    Reads what ``tools/generate_demo_data.py`` writes to
    ``data/ade_demo/ADEChallengeData2016`` (``images/`` and ``annotations/``,
    each with ``training/`` and ``validation/``). As in ADE20K, label 0 of the
    PNGs is "other" and is ignored (``reduce_zero_label=True``); labels 1..K
    become classes 0..K-1: wall, floor, then the shapes. Data made with
    another ``--num-classes`` needs ``metainfo=dict(classes=...)``. The
    suffixes (.jpg/.png) and ``reduce_zero_label=True`` are ADE20KDataset's
    defaults.
    """

    METAINFO = {
        'classes': ade_classes(),
        'palette': [list(c) for c in class_palette(len(ade_classes()))],
    }

    def load_data_list(self) -> list[dict]:
        """List the images, or say how to make them if missing."""
        for key in ('img_path', 'seg_map_path'):
            path = self.data_prefix.get(key)
            if path:
                check_data_exists(path, 'ade', self.backend_args)
        return super().load_data_list()
