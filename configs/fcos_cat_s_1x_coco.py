# FCOS with a CAT-S backbone, COCO 2017, 1x schedule (paper: 40.0 box mAP).
# Recipe of the CAT paper: AdamW lr 1e-4, wd 0.05 (none on position tables and
# norms), drop-path 0.2, 8 GPUs x 2 images, 12 epochs with steps at 8 and 11.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['mmcat'], allow_failed_imports=False)

# ImageNet-1K CAT-S weights: the authors' file or its conversion by
# tools/model_converters/cat2mmcat.py. Set to None to train from scratch.
pretrained = 'checkpoints/cat_small_in1k.pth'

model = dict(
    # CAT was pretrained on RGB images normalised with ImageNet statistics.
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='CAT',
        arch='small',
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
        }))

# Paper: 8 GPUs x 2 images. auto_scale_lr rescales lr for other batch sizes
# when training with --auto-scale-lr.
train_dataloader = dict(batch_size=2, num_workers=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
