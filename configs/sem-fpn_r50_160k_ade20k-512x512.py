# Baseline of sem-fpn_cat_s_160k_ade20k-512x512.py: MMSegmentation's Semantic
# FPN R-50 (ResNetV1c; model zoo: 37.49 mIoU, 39.09 multi-scale + flip).
# Neck, head, data pipeline, lr schedule and batch (4 GPUs x 4 images) are
# those of the CAT configs; the backbone and the optimizer are
# MMSegmentation's: every ResNet baseline keeps the optimizer of its
# model-zoo config (SGD lr 0.01, momentum 0.9, wd 5e-4), the recipe ResNets
# were tuned with. The lr curve is the CAT configs' (1500 warm-up iterations,
# then poly decay to 0, power 1.0) where the zoo's run used poly 0.9 to 1e-4
# without warm-up, so expect a result near, not equal to, the zoo's number.
_base_ = [
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
    './_base_/sem-fpn_schedules.py'
]

param_scheduler = _base_.warmup_poly_160k

train_dataloader = dict(batch_size=4)
auto_scale_lr = dict(enable=False, base_batch_size=16)
