"""Datasets: the synthetic demo data and its MMDetection/MMSegmentation
dataset classes (importing this registers them)."""
from .ade_demo import ADE20KDemoDataset
from .coco_demo import CocoDemoDataset
from .missing import check_data_exists

__all__ = ['ADE20KDemoDataset', 'CocoDemoDataset', 'check_data_exists']
