# Ablation (paper Table 5): multi-head CPSA, 7 heads of dimension 7 over the
# 49 values of a patch, instead of one head (no better in the paper).
_base_ = '../fcos_cat_s_1x_coco.py'

model = dict(backbone=dict(cpsa_num_heads=7))
