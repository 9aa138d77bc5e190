# Semantic FPN with a CAT-S backbone, ADE20K, 512x512 crops, 80k iterations
# (paper: 40.6 mIoU, 42.1 with multi-scale + flip testing; 41M parameters):
# sem-fpn_cat_s_160k_ade20k-512x512.py with half the iterations.
_base_ = './sem-fpn_cat_s_160k_ade20k-512x512.py'

param_scheduler = _base_.warmup_poly_80k
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
