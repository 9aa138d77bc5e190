# The CAT paper's training recipes as named values. CAT configs
# list this file next to an MMDetection / MMSegmentation base and pick the
# values up as ``_base_.<name>``: names of their own cannot clash with the
# keys of those bases (mmengine forbids one key in two sibling bases).

# CAT-S; CAT-T / CAT-B configs change ``arch``. Drop-path 0.2 for every size:
# the rate of the paper's detection recipe (it gives none for segmentation,
# which uses the same), not the ImageNet rates (0.1 / 0.2 / 0.3).
cat_backbone = dict(
    type='CAT', arch='small', drop_path_rate=0.2, out_indices=(0, 1, 2, 3))
# FPN in_channels: the four stage widths C_1 * 2**i (C_1 = 96 for S and B).
cat_s_in_channels = [96, 192, 384, 768]
cat_t_in_channels = [64, 128, 256, 512]

# CAT was pretrained on RGB images normalised with ImageNet statistics
# (MMDetection's pytorch-style ResNet bases and MMSegmentation's already
# normalise so; FCOS's caffe-style base does not).
cat_data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)

# No weight decay on the position table, the relative position tables and
# the norms (every parameter whose name contains one of these keys).
cat_no_decay = {
    'absolute_pos_embed': dict(decay_mult=0.),
    'relative_position_bias_table': dict(decay_mult=0.),
    'norm': dict(decay_mult=0.),
}

# COCO: AdamW lr 1e-4, wd 0.05, for 16 images per step (8 GPUs x 2);
# ``--auto-scale-lr`` rescales the lr for another total batch.
cat_det_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys=cat_no_decay))

# ADE20K: AdamW lr 6e-5, wd 0.05, for 16 images per step (4 GPUs x 4).
cat_seg_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys=cat_no_decay))
