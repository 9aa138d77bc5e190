# Demo: Semantic FPN with a small CAT on the generated ADE20K-format scenes,
# CPU-sized. Reuses the real Semantic FPN CAT config; only data, widths and
# schedule differ.
_base_ = '../sem-fpn_cat_s_80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmcat', 'mmcat.datasets'],
                      allow_failed_imports=False)

# ADE20KDemoDataset: MMSegmentation's ADE20KDataset with the generated classes
# (wall, floor and six shapes; label 0 "other" is ignored as in ADE20K).
dataset_type = 'ADE20KDemoDataset'
data_root = 'data/ade_demo/ADEChallengeData2016'
num_classes = 8
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, depths=(1, 1, 1, 1),
                  num_heads=(1, 2, 4, 8)),
        patch_size=4,  # tiles the 32/16/8/4-pixel stage maps of 128-px images
        pretrain_img_size=crop_size[0],  # position table at the 32x32 grid
        drop_path_rate=0.,
        # 128-px maps are small: keep each MLP's activations for backward
        # instead of recomputing their GELU (the default saves memory at
        # detection sizes).
        act_with_cp=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    decode_head=dict(in_channels=[64, 64, 64, 64], channels=64,
                     num_classes=num_classes, norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    dataset=dict(
        type=dataset_type, data_root=data_root,
        data_prefix=dict(img_path='images/training',
                         seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    dataset=dict(
        type=dataset_type, data_root=data_root,
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# 1200 steps of 8 images at AdamW 1e-3 (9 min of CAT training on a 2-core
# CPU): mIoU 27.2, the shapes starting to be segmented; 600 steps at 5e-4
# learnt wall and floor only (21.1; CE + Dice loss the same, 21.0).
max_iters = 1200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# fused: torch's single-kernel AdamW (CPU and CUDA) instead of a dozen
# small operations per parameter tensor; the same update.
optim_wrapper = dict(optimizer=dict(lr=1e-3, fused=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0., power=1.0, begin=50, end=max_iters,
         by_epoch=False)
]
# Seeded: a rerun on the same machine gives the same figures.
randomness = dict(seed=0)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=max_iters))
