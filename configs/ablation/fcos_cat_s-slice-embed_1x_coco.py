# Ablation (paper Table 5): the "slice" patch embedding -- space-to-depth by 4,
# then a 1x1 convolution -- instead of the 4x4 stride-4 convolution. Same
# parameters and multiplications; the paper found both perform the same.
# A 4x4 conv checkpoint maps onto it exactly with
# mmcat.models.layers.convs.conv_weight_to_slice_weight.
_base_ = '../fcos_cat_s_1x_coco.py'

model = dict(backbone=dict(embed_conv_cfg=dict(type='SliceConv2d')))
