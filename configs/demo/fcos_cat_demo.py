# Demo: FCOS with a small CAT on the generated shapes dataset, CPU-sized.
# Reuses the real FCOS CAT config; only data, widths and schedule differ.
_base_ = '../fcos_cat_s_1x_coco.py'
custom_imports = dict(imports=['mmcat', 'mmcat.datasets'],
                      allow_failed_imports=False)

data_root = 'data/coco_demo/'
# CocoDemoDataset: MMDetection's CocoDataset with the generated classes, and
# an error that says how to make the data when it is missing.
dataset_type = 'CocoDemoDataset'
num_classes = 6
image_size = (128, 128)

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, depths=(1, 1, 1, 1),
                  num_heads=(1, 2, 4, 8)),
        # 128-px images give stage maps of 32, 16, 8 and 4 pixels: patches of
        # 4 tile them exactly (with the paper's 7, most of stages 3-4 would be
        # zero padding taking part in attention).
        patch_size=4,
        # The position table at the 32x32 grid of 128-px images: used as
        # learnt, not resized at every step.
        pretrain_img_size=image_size[0],
        drop_path_rate=0.,
        # 128-px maps are small: keep each MLP's activations for backward
        # instead of recomputing their GELU (the default saves memory at
        # detection sizes).
        act_with_cp=False,
        init_cfg=None),
    # stages 2-4 (out_indices=(1, 2, 3) of the FCOS CAT config)
    neck=dict(in_channels=[64, 128, 256], out_channels=64),
    bbox_head=dict(
        num_classes=num_classes, in_channels=64, feat_channels=64,
        stacked_convs=2,
        # Half of FCOS's COCO ranges: with COCO's, every object of these
        # 128-px images (26-64 px) falls on P3 alone; halved, the larger ones
        # are also learnt on P4/P5 (4 epochs: mAP 0.026 -> 0.035; quartered:
        # 0.002).
        regress_ranges=((-1, 32), (32, 64), (64, 128), (128, 256),
                        (256, 1e8)),
        # FCOS's improvements (MMDetection's fcos_..._center-normbbox-
        # centeronreg-giou config): positives near box centres, regression
        # in units of the level's stride, centre-ness on the regression
        # branch, GIoU. Here they turn 6 epochs' mAP 0.109 into 0.166.
        center_sampling=True,
        center_sample_radius=1.5,
        norm_on_bbox=True,
        centerness_on_reg=True,
        conv_bias=True,
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
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

# 8 epochs of the 1200 training images: 1200 steps of 8 images (7.5 min of
# CAT training on a 2-core CPU; mAP 0.166 after 6 epochs, 0.233 after 8).
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# From scratch, batch 8: AdamW 1e-3 (8 epochs: 0.233; 5e-4: 0.200).
# fused: torch's single-kernel AdamW (CPU and CUDA) instead of a dozen
# small operations per parameter tensor; the same update.
optim_wrapper = dict(optimizer=dict(lr=1e-3, fused=True),
                     clip_grad=dict(max_norm=10.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    # Cosine decay at every step (stepped by epoch, the lr would change 8 times).
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=5e-6, convert_to_iter_based=True)
]
# tools/test.py --tta: MMDetection's DetTTAModel (its RetinaNet recipe: three
# scales, each with and without a horizontal flip, boxes merged by NMS), at
# the demo's image size.
tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[
             [dict(type='Resize', scale=s, keep_ratio=True)
              for s in (image_size, (96, 96), (192, 192))],
             [dict(type='RandomFlip', prob=1.),
              dict(type='RandomFlip', prob=0.)],
             [dict(type='LoadAnnotations', with_bbox=True)],
             [dict(type='PackDetInputs',
                   meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                              'scale_factor', 'flip', 'flip_direction'))]])
]
# tools/infer.py draws boxes from this score on. FCOS scores a box by class
# probability times centre-ness, so this small, briefly trained detector's
# best boxes on validation images score about 0.2-0.26, under
# DetInferencer's default of 0.3.
infer_score_thr = 0.15
# Seeded: a rerun on the same machine gives the same figures.
randomness = dict(seed=0)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs))
