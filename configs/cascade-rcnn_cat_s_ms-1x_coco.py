# Cascade R-CNN with a CAT-S backbone, COCO 2017, multi-scale 1x (paper: 45.2
# box mAP, 82M parameters): cascade-rcnn_cat_s_1x_coco.py trained with short
# sides 480..800 (step 32), long side <= 1333 (configs/_base_/coco_ms-1x.py).
_base_ = ['./cascade-rcnn_cat_s_1x_coco.py', './_base_/coco_ms-1x.py']

train_pipeline = _base_.ms_1x_det_train_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
