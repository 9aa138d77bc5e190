# Baseline of mask-rcnn_cat_b_1x_coco.py: Mask R-CNN R-101 (model zoo: 40.0 box
# / 36.1 mask mAP); mask-rcnn_r50_1x_coco.py with a deeper backbone.
_base_ = './mask-rcnn_r50_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet101')))
