# Demo: Mask R-CNN with a small CAT on the generated shapes dataset (box and
# mask mAP), CPU-sized. Reuses the real Mask R-CNN CAT config; only data,
# widths, anchor sizes (the objects are 12-60 px) and schedule differ.
_base_ = '../mask-rcnn_cat_s_1x_coco.py'
custom_imports = dict(imports=['mmcat', 'mmcat.datasets'],
                      allow_failed_imports=False)

dataset_type = 'CocoDemoDataset'
data_root = 'data/coco_demo/'
num_classes = 6
image_size = (128, 128)
width = 64

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, depths=(1, 1, 1, 1),
                  num_heads=(1, 2, 4, 8)),
        patch_size=4,  # tiles the 32/16/8/4-pixel stage maps of 128-px images
        drop_path_rate=0.,
        # 128-px maps are small: keep each MLP's activations for backward
        # instead of recomputing their GELU (the default saves memory at
        # detection sizes).
        act_with_cp=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width,
                  anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256,
                       num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width,
                       num_classes=num_classes)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# 6 epochs of the demo's 1200 training images: 900 steps of 8 images.
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# fused: torch's single-kernel AdamW (CPU and CUDA) instead of a dozen
# small operations per parameter tensor; the same update.
optim_wrapper = dict(optimizer=dict(lr=5e-4, fused=True),
                     clip_grad=dict(max_norm=10.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5)
]
# Seeded: a rerun on the same machine gives the same figures.
randomness = dict(seed=0)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs))
