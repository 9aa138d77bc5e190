# Semantic FPN with a CAT-S backbone, ADE20K, 512x512 crops, 160k iterations
# (paper: 42.2 mIoU, 42.8 with multi-scale + flip testing; 41M parameters).
# The CAT paper's recipe: AdamW lr 6e-5, wd 0.05 (none on position tables and
# norms; configs/_base_/cat.py), drop-path 0.2, linear warm-up for 1500
# iterations then poly decay (configs/_base_/sem-fpn_schedules.py), 16 images
# per step (4 GPUs x 4, like MMSegmentation's 4xb4 Semantic FPN configs).
# Neck, head and data pipeline are MMSegmentation's, as in
# sem-fpn_r50_160k_ade20k-512x512.py.
_base_ = [
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
    './_base_/cat.py', './_base_/sem-fpn_schedules.py'
]
custom_imports = dict(imports=['mmcat'], allow_failed_imports=False)

# ImageNet-1K CAT-S weights: the authors' file or its conversion by
# tools/model_converters/cat2mmcat.py. Set to None to train from scratch.
pretrained = 'checkpoints/cat_small_in1k.pth'

model = dict(
    # The segmentor's ``pretrained`` names ResNet weights; CAT loads its own
    # through init_cfg.
    pretrained=None,
    backbone=dict(
        _delete_=True,
        **_base_.cat_backbone,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None),
    neck=dict(in_channels=_base_.cat_s_in_channels))

optim_wrapper = dict(_delete_=True, **_base_.cat_seg_optim_wrapper)
param_scheduler = _base_.warmup_poly_160k

# 4 GPUs x 4 images = 16 images per step, as in the paper.
train_dataloader = dict(batch_size=4)
auto_scale_lr = dict(enable=False, base_batch_size=16)
