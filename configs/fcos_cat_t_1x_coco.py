# FCOS with a CAT-T backbone, COCO 2017, 1x (not in the paper). Everything but
# the backbone size (and so the FPN inputs) is fcos_cat_s_1x_coco.py.
_base_ = './fcos_cat_s_1x_coco.py'

pretrained = 'checkpoints/cat_tiny_in1k.pth'

model = dict(
    backbone=dict(
        arch='tiny',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None),
    neck=dict(in_channels=_base_.cat_t_in_channels[1:]))
