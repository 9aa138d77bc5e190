# Demo baseline: the same FCOS, data, optimizer and schedule as
# fcos_cat_demo.py, with a half-width ResNet-18 of about the small CAT's size
# (2.8M vs 3.1M backbone parameters), trained from scratch like it.
_base_ = './fcos_cat_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        base_channels=32,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256]))
