# Ablation: a depthwise separable patch embedding (depthwise 4x4 stride 4 per
# input channel, then 1x1 to C_1): 3*16 + 3*96 weights instead of 3*16*96.
# The ImageNet 4x4 convolution does not map onto it: that convolution is
# trained from scratch (fresh_embed_conv) and the rest of CAT-S is loaded.
_base_ = '../fcos_cat_s_1x_coco.py'

model = dict(backbone=dict(
    embed_conv_cfg=dict(type='DepthwiseSeparableConv2d'),
    fresh_embed_conv=True))
