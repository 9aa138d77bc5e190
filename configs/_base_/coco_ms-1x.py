# Multi-scale ("ms") training of the CAT paper: each image is resized so its
# short side is one of 480, 512, ..., 800 (drawn uniformly) and its long side
# is at most 1333. Testing stays single-scale (1333, 800). Used by the
# ``*_ms-1x_coco.py`` configs through ``_base_.<name>``.
ms_1x_scales = [(1333, short) for short in range(480, 801, 32)]

ms_1x_det_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=ms_1x_scales, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
ms_1x_ins_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize', scales=ms_1x_scales, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
