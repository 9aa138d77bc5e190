# Mask R-CNN with a CAT-S backbone, COCO 2017, multi-scale 1x (paper: 41.6 box
# / 38.6 mask mAP, 57M parameters): mask-rcnn_cat_s_1x_coco.py trained with
# short sides 480..800 (step 32), long side <= 1333
# (configs/_base_/coco_ms-1x.py).
_base_ = ['./mask-rcnn_cat_s_1x_coco.py', './_base_/coco_ms-1x.py']

train_pipeline = _base_.ms_1x_ins_train_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
