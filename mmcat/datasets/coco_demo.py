"""MMDetection dataset for the synthetic COCO-format shapes."""
from __future__ import annotations

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .classes import class_palette, shape_classes
from .missing import check_data_exists

__all__ = ['CocoDemoDataset']


@DATASETS.register_module()
class CocoDemoDataset(CocoDataset):
    """:class:`CocoDataset` with the demo's shape classes.

    Reads what ``tools/generate_demo_data.py`` writes to ``data/coco_demo``
    (``annotations/instances_{train,val}2017.json``, ``{train,val}2017/``).
    Data made with another ``--num-classes`` needs
    ``metainfo=dict(classes=...)`` naming its categories.
    """

    METAINFO = {
        'classes': shape_classes(),
        'palette': class_palette(len(shape_classes())),
    }

    def load_data_list(self) -> list[dict]:
        """Load the annotations, or say how to make them if missing."""
        check_data_exists(self.ann_file, 'coco', self.backend_args)
        return super().load_data_list()
