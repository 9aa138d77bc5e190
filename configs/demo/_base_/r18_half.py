# The demos' baseline backbone: a half-width ResNet-18 (stage widths 32-256,
# 2.8M parameters, about the small CAT's 3.1M), trained from scratch like it.
# Used as ``_base_.r18_half_backbone`` (a name no detector/segmentor base has).
r18_half_backbone = dict(
    type='ResNet',
    depth=18,
    base_channels=32,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    style='pytorch',
    init_cfg=None)
r18_half_in_channels = [32, 64, 128, 256]
