"""Datasets: the MMDetection/MMSegmentation classes of the synthetic demo
data (importing this registers them). The generator of that data,
:mod:`mmcat.datasets.synthetic`, is imported only by what writes it."""
from .ade_demo import ADE20KDemoDataset
from .coco_demo import CocoDemoDataset
from .missing import check_data_exists

__all__ = ['ADE20KDemoDataset', 'CocoDemoDataset', 'check_data_exists']
