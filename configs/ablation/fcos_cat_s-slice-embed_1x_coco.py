# Ablation (paper Table 5): the "slice" patch embedding -- space-to-depth by 4,
# then a 1x1 convolution -- instead of the 4x4 stride-4 convolution. Same
# parameters and multiplications; the paper found both perform the same.
# The ImageNet 4x4 convolution loads onto it exactly: CAT maps the weight
# (mmcat.models.layers.convs.conv_weight_to_slice_weight) when it loads.
_base_ = '../fcos_cat_s_1x_coco.py'

model = dict(backbone=dict(embed_conv_cfg=dict(type='SliceConv2d')))
