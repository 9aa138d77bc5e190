# Baseline of sem-fpn_cat_b_160k_ade20k-512x512.py:
# sem-fpn_r50_160k_ade20k-512x512.py with a deeper backbone (ResNetV1c-101).
_base_ = './sem-fpn_r50_160k_ade20k-512x512.py'

model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
