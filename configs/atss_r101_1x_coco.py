# Baseline of atss_cat_b_1x_coco.py: ATSS R-101 (model zoo: 41.5 box mAP);
# atss_r50_1x_coco.py with a deeper backbone.
_base_ = './atss_r50_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet101')))
