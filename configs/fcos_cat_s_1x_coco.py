# FCOS with a CAT-S backbone, COCO 2017, 1x schedule (paper: 40.0 box mAP,
# 45M parameters). The CAT paper's recipe (configs/_base_/cat.py):
# AdamW lr 1e-4, wd 0.05 (none on position tables and norms), drop-path 0.2,
# 8 GPUs x 2 images, 12 epochs with lr steps at 8 and 11. Neck, head, data
# pipeline and schedule are MMDetection's FCOS ones, as in fcos_r50_1x_coco.py.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    './_base_/cat.py'
]
custom_imports = dict(imports=['mmcat'], allow_failed_imports=False)

# ImageNet-1K CAT-S weights: the authors' file or its conversion by
# tools/model_converters/cat2mmcat.py. Set to None to train from scratch.
pretrained = 'checkpoints/cat_small_in1k.pth'

model = dict(
    data_preprocessor=_base_.cat_data_preprocessor,
    # The FPN starts at stage 2, as MMDetection's does with ResNet: only
    # stages 2-4 give outputs (stage 1 would add an output norm that gets no
    # gradient), and the FPN takes them from its first level.
    backbone=dict(
        _base_.cat_backbone,
        _delete_=True,
        out_indices=(1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)
        if pretrained else None),
    neck=dict(in_channels=_base_.cat_s_in_channels[1:], start_level=0))

optim_wrapper = dict(_delete_=True, **_base_.cat_det_optim_wrapper)

# Paper: 8 GPUs x 2 images (the MMDetection default, stated for clarity).
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
