# Baseline of cascade-rcnn_cat_b_ms-1x_coco.py: cascade-rcnn_r50_ms-1x_coco.py
# with a deeper backbone.
_base_ = './cascade-rcnn_r50_ms-1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet101')))
