# Cascade R-CNN with a CAT-B backbone, COCO 2017, 1x (paper: 44.8 box mAP, 96M
# parameters). Everything but the backbone size is
# cascade-rcnn_cat_s_1x_coco.py.
_base_ = './cascade-rcnn_cat_s_1x_coco.py'

pretrained = 'checkpoints/cat_base_in1k.pth'

model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None))
