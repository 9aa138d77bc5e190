# Ablation: patch projections whose 4C -> 2C reduction is a shuffled grouped
# convolution (grouped 1x1, channel shuffle, grouped 1x1; 4 groups) instead of
# a dense linear layer: 2C^2 + C^2 weights instead of 8C^2.
_base_ = '../fcos_cat_s_1x_coco.py'

model = dict(backbone=dict(
    projection_conv_cfg=dict(type='ShuffledGroupedConv2d', groups=4)))
