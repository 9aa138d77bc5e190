# Baseline of fcos_cat_b_1x_coco.py: FCOS R-101 (caffe-style ResNet, model
# zoo: 39.1 box mAP); fcos_r50_1x_coco.py with a deeper backbone.
_base_ = './fcos_r50_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron/resnet101_caffe')))
