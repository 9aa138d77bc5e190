# Demo baseline: the same Mask R-CNN, data, optimizer and schedule as
# mask-rcnn_cat_demo.py, with a half-width ResNet-18 trained from scratch.
_base_ = ['./mask-rcnn_cat_demo.py', './_base_/r18_half.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.r18_half_backbone),
    neck=dict(in_channels=_base_.r18_half_in_channels))
