# Demo baseline: the same FCOS, data, optimizer and schedule as
# fcos_cat_demo.py, with a half-width ResNet-18 trained from scratch.
_base_ = ['./fcos_cat_demo.py', './_base_/r18_half.py']

# Stages 2-4 into the FPN, as for the CAT.
model = dict(
    backbone=dict(_base_.r18_half_backbone, _delete_=True,
                  out_indices=(1, 2, 3)),
    neck=dict(in_channels=_base_.r18_half_in_channels[1:]))
