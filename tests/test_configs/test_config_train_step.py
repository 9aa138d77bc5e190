"""Every config that test_config_run.py does not run through a Runner trains
one step on the CPU: CAT-T / CAT-B, the ResNet baselines, ms-1x, 160k, the
ablation and the demo configs.

A step is the config's model, optimizer wrapper (parameter groups included)
and train pipeline on one batch of the tiny samples
(:func:`config_testkit.train_one_step`); the loop, hooks and test of each
method's Runner are run for its CAT-S config in test_config_run.py.
"""
import math

import pytest
from config_testkit import (RUNNER_CONFIGS, apply_options, config_names, load,
                            sample_options, train_one_step)

import mmcat  # noqa: F401  (registers CAT)

STEP = ([n for n in config_names() if n not in RUNNER_CONFIGS] +
        config_names('ablation') + config_names('demo'))


@pytest.mark.parametrize('name', STEP)
def test_one_training_step(name: str, coco_root: str, demo_coco_root: str,
                           ade_root: str, tmp_path) -> None:
    cfg = load(name)
    if cfg.default_scope == 'mmseg':
        root = ade_root
    else:
        root = demo_coco_root if name.startswith('demo') else coco_root
    apply_options(cfg, sample_options(cfg, root, str(tmp_path)))
    losses, parts = train_one_step(cfg)
    assert losses and all(math.isfinite(v) for v in losses.values()), losses
    assert {'backbone', 'neck'} < set(parts), parts
    untrained = [part for part, (changed, _) in parts.items() if not changed]
    assert untrained == [], parts
