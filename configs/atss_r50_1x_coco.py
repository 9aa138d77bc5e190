# Baseline of atss_cat_s_1x_coco.py: MMDetection's ATSS R-50 (model zoo: 39.4
# box mAP). Neck, head, data pipeline, schedule and batch (8 GPUs x 2 images)
# are those of the CAT configs; the backbone and the optimizer are
# MMDetection's: every ResNet baseline keeps the optimizer of its model-zoo
# config (SGD here, lr 0.01), the recipe ResNets were tuned with and that gave
# the zoo's number, so that number is what this config should reproduce.
_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
