# ATSS with a CAT-B backbone, COCO 2017, 1x (paper: 42.5 box mAP, 59M
# parameters). Everything but the backbone size is atss_cat_s_1x_coco.py.
_base_ = './atss_cat_s_1x_coco.py'

pretrained = 'checkpoints/cat_base_in1k.pth'

model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None))
