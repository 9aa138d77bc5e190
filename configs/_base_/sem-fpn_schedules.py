# Learning-rate schedules of the ADE20K Semantic FPN configs, CAT's and their
# ResNet baselines' alike: 1500 iterations of linear warm-up, then poly decay
# (power 1.0) to 0 at the last iteration. The CAT paper gives "poly decay,
# 1500 warm-up iterations"; the curve is the one MMSegmentation's Swin
# configs use with the same numbers (mmseg::swin/swin-*_upernet_*_ade20k-*).
# Used through ``_base_.<name>``.
warmup_poly_160k = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=160000,
        by_epoch=False),
]
warmup_poly_80k = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=80000,
        by_epoch=False),
]
