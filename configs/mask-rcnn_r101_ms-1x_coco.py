# Baseline of mask-rcnn_cat_b_ms-1x_coco.py: mask-rcnn_r50_ms-1x_coco.py with a
# deeper backbone.
_base_ = './mask-rcnn_r50_ms-1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet101')))
