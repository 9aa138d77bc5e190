# Baseline of mask-rcnn_cat_s_1x_coco.py: MMDetection's Mask R-CNN R-50 (model
# zoo: 38.2 box / 34.7 mask mAP). Neck, heads, data pipeline, schedule and
# batch (8 GPUs x 2 images) are those of the CAT configs; the backbone and the
# optimizer are MMDetection's: every ResNet baseline keeps the optimizer of its
# model-zoo config (SGD here, lr 0.02), the recipe ResNets were tuned with and
# that gave the zoo's number, so that number is what this config should
# reproduce.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
