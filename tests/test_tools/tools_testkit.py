"""Tiny data, configs and a probe hook for the tests of ``tools/``.

The configs written here import this module (``custom_imports``), so the
processes started by ``tools/train.py`` register :class:`DumpParamsHook`;
the tests put this directory on ``PYTHONPATH`` for them.
"""
import json
import os
import os.path as osp
import signal
import socket
import struct
import subprocess
import zlib
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmcat.engine import register_mmengine_safe_globals

HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(osp.dirname(HERE))
CLASSES = ('square', 'bar')


@HOOKS.register_module(force=True)
class DumpParamsHook(Hook):
    """Save this rank's parameters before and after training.

    Writes ``rank{r}_init.pth`` and ``rank{r}_final.pth`` (parameter name to
    tensor; buffers are left out, DDP does not synchronise them here) and
    ``rank{r}_iters.json`` with the iteration the loop started and ended at.
    """

    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        self._start_iter = runner.iter
        self._dump(runner, 'init')

    def after_train(self, runner) -> None:
        self._dump(runner, 'final')
        path = osp.join(runner.work_dir, f'rank{runner.rank}_iters.json')
        with open(path, 'w') as f:
            json.dump(
                dict(
                    start_iter=self._start_iter,
                    end_iter=runner.iter,
                    world_size=runner.world_size,
                    wrapper=type(runner.model).__name__), f)

    @staticmethod
    def _dump(runner, tag: str) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        params = {
            name: p.detach().cpu().clone()
            for name, p in model.named_parameters()
        }
        torch.save(params, osp.join(runner.work_dir,
                                    f'rank{runner.rank}_{tag}.pth'))


def rank_iters(work_dir: str, rank: int = 0) -> dict:
    """What :class:`DumpParamsHook` recorded of rank ``rank``'s loop."""
    with open(osp.join(work_dir, f'rank{rank}_iters.json')) as f:
        return json.load(f)


def _write_png(path: str, img: np.ndarray) -> None:
    """Write an HxWx3 (RGB) or HxW (grey) uint8 image as PNG, with the
    standard library only."""
    h, w = img.shape[:2]
    color_type = 2 if img.ndim == 3 else 0
    raw = b''.join(b'\x00' + img[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return (struct.pack('>I', len(data)) + body +
                struct.pack('>I', zlib.crc32(body) & 0xffffffff))

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        header = struct.pack('>IIBBBBB', w, h, 8, color_type, 0, 0, 0)
        f.write(chunk(b'IHDR', header))
        f.write(chunk(b'IDAT', zlib.compress(raw)))
        f.write(chunk(b'IEND', b''))


def make_tiny_coco(root: str, num_images: int = 16, size: int = 64) -> str:
    """Write ``num_images`` noisy images with 1-2 filled boxes each.

    16 images cover 4 iterations of 2 processes x 2 images without an epoch
    boundary (mmengine's infinite loader sleeps 2 s at each).

    Layout: ``root/img/{i}.png`` and ``root/ann.json`` (COCO detection
    format, categories :data:`CLASSES`). Returns ``root``.
    """
    rng = np.random.default_rng(0)
    os.makedirs(osp.join(root, 'img'), exist_ok=True)
    images: List[Dict] = []
    annotations: List[Dict] = []
    for i in range(num_images):
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        for k in range(1 + i % 2):
            w, h = (int(v) for v in rng.integers(12, size // 2, 2))
            x, y = (int(v) for v in rng.integers(0, size - max(w, h), 2))
            img[y:y + h, x:x + w] = 200 if k == 0 else 120
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    category_id=k + 1,
                    bbox=[x, y, w, h],
                    area=w * h,
                    iscrowd=0,
                    segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
        _write_png(osp.join(root, 'img', f'{i}.png'), img)
        images.append(
            dict(id=i + 1, file_name=f'{i}.png', width=size, height=size))
    categories = [
        dict(id=k + 1, name=name) for k, name in enumerate(CLASSES)
    ]
    with open(osp.join(root, 'ann.json'), 'w') as f:
        json.dump(
            dict(images=images, annotations=annotations,
                 categories=categories), f)
    return root


def make_tiny_seg(root: str, num_images: int = 8, size: int = 64) -> str:
    """Write ``num_images`` noisy images with one bright rectangle each,
    and label maps marking it as class 1.

    Layout: ``root/img/{i}.png`` and ``root/ann/{i}.png``. Returns ``root``.
    """
    rng = np.random.default_rng(1)
    for sub in ('img', 'ann'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i in range(num_images):
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        label = np.zeros((size, size), dtype=np.uint8)
        w, h = (int(v) for v in rng.integers(12, size // 2, 2))
        x, y = (int(v) for v in rng.integers(0, size - max(w, h), 2))
        img[y:y + h, x:x + w] = 200
        label[y:y + h, x:x + w] = 1
        _write_png(osp.join(root, 'img', f'{i}.png'), img)
        _write_png(osp.join(root, 'ann', f'{i}.png'), label)
    return root


_HEAD = '''\
default_scope = {scope!r}
custom_imports = dict(imports=['tools_testkit'], allow_failed_imports=False)
data_root = {data_root!r}
work_dir = {work_dir!r}
'''

# What the det and seg configs share: loop, optimizer, hooks, environment.
# {kind} is 'Det' or 'Seg' (the visualizer and its hook).
_RUN = '''\
test_cfg = dict(type='TestLoop')

train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval=10000)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1{logger_args}),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval={ckpt_interval},
                    by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='{kind}VisualizationHook'))
custom_hooks = [dict(type='DumpParamsHook')]
# nccl on purpose: tools/train.py must switch to gloo on a CPU-only machine
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='{kind}LocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = {log_processor}
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False
'''

DET_CONFIG = _HEAD + '''\
classes = {classes!r}

model = dict(
    type='RetinaNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=8,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    neck=dict(
        type='FPN',
        in_channels=[16, 32, 64],
        out_channels=16,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5),
    bbox_head=dict(
        type='RetinaHead',
        num_classes=len(classes),
        in_channels=16,
        stacked_convs=1,
        feat_channels=16,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=1,
            ratios=[1.0],
            strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0,
            ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=100,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=20))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
dataset = dict(
    type='CocoDataset',
    data_root=data_root,
    metainfo=dict(classes=classes),
    ann_file='ann.json',
    data_prefix=dict(img='img/'))
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        **dataset,
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, test_mode=True, pipeline=test_pipeline))
test_evaluator = dict(
    type='CocoMetric', ann_file=data_root + '/ann.json', metric='bbox')
# two schedulers, so checkpoints carry their state (a Counter among it)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
    dict(type='MultiStepLR', by_epoch=False, milestones=[3], gamma=0.5),
]
''' + _RUN

SEG_CONFIG = _HEAD + '''\

model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(64, 64)),
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=8,
        base_channels=8,
        out_indices=(3, ),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    decode_head=dict(
        type='FCNHead',
        in_channels=64,
        channels=16,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=2,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=dict(classes=('background', 'box'),
                  palette=[[0, 0, 0], [255, 0, 0]]),
    img_suffix='.png',
    seg_map_suffix='.png',
    data_prefix=dict(img_path='img', seg_map_path='ann'),
    pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dataset)
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dataset)
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end={max_iters},
         by_epoch=False),
]
''' + _RUN


def _write_config(path: str, template: str, **values) -> str:
    with open(path, 'w') as f:
        f.write(template.format(**values))
    return path


def write_det_config(path: str,
                     data_root: str,
                     work_dir: str,
                     max_iters: int = 4,
                     ckpt_interval: Optional[int] = None) -> str:
    """Write a self-contained tiny RetinaNet (ResNet-18, 8 base channels)
    config for the data of :func:`make_tiny_coco`; returns ``path``."""
    return _write_config(
        path, DET_CONFIG, scope='mmdet', kind='Det', data_root=data_root,
        work_dir=work_dir, classes=CLASSES, max_iters=max_iters,
        ckpt_interval=ckpt_interval or max_iters, logger_args='',
        log_processor="dict(type='LogProcessor', window_size=1, "
        "by_epoch=False)")


def write_seg_config(path: str,
                     data_root: str,
                     work_dir: str,
                     max_iters: int = 2) -> str:
    """Write a self-contained tiny FCN (ResNetV1c-18, 8 base channels)
    config for the data of :func:`make_tiny_seg`; returns ``path``."""
    return _write_config(
        path, SEG_CONFIG, scope='mmseg', kind='Seg', data_root=data_root,
        work_dir=work_dir, max_iters=max_iters, ckpt_interval=max_iters,
        logger_args=', log_metric_by_epoch=False',
        log_processor='dict(by_epoch=False)')


def tool_env(**extra: str) -> Dict[str, str]:
    """Environment for a subprocess running ``tools/*``: the repository and
    this directory importable, one thread per process, and no override of
    torch's ``weights_only`` default (the tests depend on it)."""
    env = dict(os.environ)
    for key in ('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD',
                'TORCH_FORCE_WEIGHTS_ONLY_LOAD'):
        env.pop(key, None)
    paths = [REPO_ROOT, HERE]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['OMP_NUM_THREADS'] = '1'
    env['MKL_NUM_THREADS'] = '1'
    env.update(extra)
    return env


def load_checkpoint(path: str) -> dict:
    """A checkpoint the tools wrote, read as they read it: weights-only,
    with mmengine's own types allow-listed."""
    register_mmengine_safe_globals()
    return torch.load(path, map_location='cpu', weights_only=True)


def free_port() -> int:
    """A TCP port that was free a moment ago, for torchrun's master."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool(args: Sequence[str],
             log_path: str,
             timeout: float = 300,
             **env: str) -> int:
    """Run ``args`` from the repository root with :func:`tool_env`, output
    to ``log_path``; kill the whole process group on timeout.

    Returns:
        The exit code.
    """
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            list(args),
            cwd=REPO_ROOT,
            env=tool_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


def tail(path: str, n: int = 60) -> str:
    """The last ``n`` lines of a log, for assertion messages."""
    with open(path) as f:
        return ''.join(f.readlines()[-n:])
