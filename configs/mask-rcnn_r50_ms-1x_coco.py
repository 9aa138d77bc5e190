# Baseline of mask-rcnn_cat_s_ms-1x_coco.py: mask-rcnn_r50_1x_coco.py (SGD, as
# MMDetection trains it) with the CAT configs' multi-scale training: short
# sides 480..800 (step 32), long side <= 1333 (configs/_base_/coco_ms-1x.py).
_base_ = ['./mask-rcnn_r50_1x_coco.py', './_base_/coco_ms-1x.py']

train_pipeline = _base_.ms_1x_ins_train_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
