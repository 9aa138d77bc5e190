# Baseline of cascade-rcnn_cat_s_1x_coco.py: MMDetection's Cascade R-CNN R-50
# (model zoo: 40.3 box mAP). Neck, heads, data pipeline, schedule and batch (8
# GPUs x 2 images) are those of the CAT configs; the backbone and the optimizer
# are MMDetection's: every ResNet baseline keeps the optimizer of its model-zoo
# config (SGD here, lr 0.02), the recipe ResNets were tuned with and that gave
# the zoo's number, so that number is what this config should reproduce.
_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
