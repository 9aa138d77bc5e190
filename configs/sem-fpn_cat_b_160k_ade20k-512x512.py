# Semantic FPN with a CAT-B backbone, ADE20K, 512x512 crops, 160k iterations
# (paper: 43.2 mIoU (44.9 multi-scale + flip), 55M parameters).
# Everything but the backbone size is sem-fpn_cat_s_160k_ade20k-512x512.py.
_base_ = './sem-fpn_cat_s_160k_ade20k-512x512.py'

pretrained = 'checkpoints/cat_base_in1k.pth'

model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None))
