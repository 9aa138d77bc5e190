# Demo baseline: the same FCOS, data, optimizer and schedule as
# fcos_cat_demo.py, with a half-width ResNet-18 trained from scratch.
_base_ = ['./fcos_cat_demo.py', './_base_/r18_half.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.r18_half_backbone),
    neck=dict(in_channels=_base_.r18_half_in_channels))
