# Baseline of cascade-rcnn_cat_b_1x_coco.py: Cascade R-CNN R-101 (model zoo:
# 42.0 box mAP); cascade-rcnn_r50_1x_coco.py with a deeper backbone.
_base_ = './cascade-rcnn_r50_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet101')))
