# Baseline of retinanet_cat_b_1x_coco.py: RetinaNet R-101 (model zoo: 38.5 box
# mAP); retinanet_r50_1x_coco.py with a deeper backbone.
_base_ = './retinanet_r50_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet101')))
