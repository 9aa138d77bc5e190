# Demo baseline: the same Semantic FPN, data, optimizer and schedule as
# sem-fpn_cat_demo.py, with a half-width ResNet-18 trained from scratch.
_base_ = './sem-fpn_cat_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        base_channels=32,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256]))
