# Semantic FPN with a CAT-B backbone, ADE20K, 512x512 crops, 80k iterations
# (paper: 42.2 mIoU (43.6 multi-scale + flip), 55M parameters).
# Everything but the backbone size is sem-fpn_cat_s_80k_ade20k-512x512.py.
_base_ = './sem-fpn_cat_s_80k_ade20k-512x512.py'

pretrained = 'checkpoints/cat_base_in1k.pth'

model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None))
