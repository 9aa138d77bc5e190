# Baseline of sem-fpn_cat_s_80k_ade20k-512x512.py:
# sem-fpn_r50_160k_ade20k-512x512.py with half the iterations.
_base_ = './sem-fpn_r50_160k_ade20k-512x512.py'

param_scheduler = _base_.warmup_poly_80k
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
