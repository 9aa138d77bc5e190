"""Export a CAT model (backbone, single-stage detector or Semantic FPN) to
ONNX or a ``torch.export`` program that runs at any input size.

    python tools/deployment/export.py CONFIG [CHECKPOINT] --format onnx \\
        --out model.onnx [--backbone-only] [--shape H W] [--no-verify]

What is exported (input: a normalised (B, 3, H, W) float image, H and W
dynamic):

- ``--backbone-only``: the backbone's stage outputs ``feat0..featK``.
- single-stage detectors (FCOS, RetinaNet, ATSS): the raw head outputs, per
  level ``cls_score_i``, ``bbox_pred_i`` (and ``centerness_i`` for FCOS).
  Score threshold and NMS run after the session through the model's own
  ``predict_by_feat`` (:func:`mmcat.deployment.detections_from_outputs`;
  ``tools/deployment/ort_infer.py`` runs a file on an image), so the boxes
  are MMDetection's.
- Semantic FPN (and other encoder-decoder segmentors): ``seg_logits``
  (B, num_classes, H, W), resized to the input.
- two-stage detectors: refused, naming the RoI heads, with MMDeploy as the
  route (RoIAlign and the per-image proposal loop are no standard ONNX ops).

ONNX goes through the TorchScript-based exporter (``dynamo=False``) with
dynamic H and W: the CAT layers pad unconditionally under a tracer and the
position table is resized by :func:`bicubic_resize_nhwc_traceable`, so no size
of the example input is baked into the graph. ``--verify`` (on by default)
runs the file (onnxruntime, or the exported program) against PyTorch eager at
several sizes and fails above ``--tolerance``. The output file is written to
a temporary name and renamed on success only.

``--format torch-export`` saves a ``torch.export`` program (``.pt2``) with
``Dim`` for the batch, H and W. Its graph is the one for stage maps of two or
more patches per side, so it takes H and W above ``patch stride x patch
size`` of the last stage (225 for the paper's CAT: 32 x 7 + 1; see
:func:`program_min_size`); torch checks that bound on every call. Smaller
images: pad them (MMDetection's preprocessor pads to a multiple of 32 anyway)
or use the ONNX file, which takes any size. The output names and that bound
are stored in the file (``mmcat.deployment.PROGRAM_META``), for
``tools/deployment/ort_infer.py``, which runs either format on an image.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import sys
import tempfile
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import numpy as np
import torch
import torch.nn as nn

FORMATS = ('onnx', 'torch-export')
#: Sizes every export is checked at besides ``--shape``: square, odd stage
#: maps, maps smaller than a patch, a large odd size.
VERIFY_SIZES: Tuple[Tuple[int, int], ...] = ((224, 224), (97, 61), (33, 45),
                                             (513, 771))
SINGLE_STAGE_HEADS = ('FCOSHead', 'RetinaHead', 'ATSSHead')


class ExportError(RuntimeError):
    """A model, checkpoint or argument that cannot be exported as asked."""


# ----------------------------------------------------------------- wrappers
class BackboneOutputs(nn.Module):
    """image (B, 3, H, W) -> the backbone's stage maps, as a tuple."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.backbone(img))


class DenseHeadOutputs(nn.Module):
    """image -> a single-stage detector's raw head outputs, flattened level
    by level: (cls_score_0, ..., bbox_pred_0, ..., [centerness_0, ...])."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = self.detector.bbox_head(self.detector.extract_feat(img))
        return tuple(t for group in outs for t in group)


class SegLogits(nn.Module):
    """image (B, 3, H, W) -> per-pixel logits (B, num_classes, H, W)."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        from mmseg.models.utils import resize
        seg = self.segmentor
        logits = seg.decode_head.forward(seg.extract_feat(img))
        return resize(logits, size=img.shape[2:], mode='bilinear',
                      align_corners=seg.decode_head.align_corners)


def model_kind(model: nn.Module, backbone_only: bool) -> str:
    """'backbone', 'single-stage', 'segmentor'; raise for the rest."""
    if backbone_only:
        if not hasattr(model, 'backbone'):
            raise ExportError(f'{type(model).__name__} has no backbone')
        return 'backbone'
    if hasattr(model, 'decode_head'):
        return 'segmentor'
    if hasattr(model, 'roi_head'):
        raise ExportError(
            f'{type(model).__name__} is a two-stage detector: its RoI head '
            f'({type(model.roi_head).__name__}: RoIAlign over a per-image '
            f'list of proposals, then per-class NMS) has no standard-ONNX '
            f'form here. Export --backbone-only, or use MMDeploy with a '
            f'detection config for the RoI heads (see docs/deploy.md).')
    head = getattr(model, 'bbox_head', None)
    if head is not None and hasattr(head, 'predict_by_feat'):
        return 'single-stage'
    raise ExportError(f'cannot export {type(model).__name__}: neither a '
                      f'backbone, a single-stage detector nor a segmentor')


def wrap(model: nn.Module, kind: str) -> nn.Module:
    """The module that is exported for ``kind``."""
    if kind == 'backbone':
        return BackboneOutputs(model.backbone).eval()
    if kind == 'segmentor':
        return SegLogits(model).eval()
    return DenseHeadOutputs(model).eval()


def output_names(wrapped: nn.Module, kind: str,
                 example: torch.Tensor) -> List[str]:
    """Names of the graph outputs, from one eager run."""
    with torch.no_grad():
        outs = wrapped(example)
    if kind == 'segmentor':
        return ['seg_logits']
    if kind == 'backbone':
        return [f'feat{i}' for i in range(len(outs))]
    levels = len(wrapped.detector.bbox_head.prior_generator.strides)
    groups = ['cls_score', 'bbox_pred', 'centerness']
    return [f'{groups[i // levels]}_{i % levels}' for i in range(len(outs))]


@contextlib.contextmanager
def export_ready(model: nn.Module) -> Iterator[nn.Module]:
    """The plain forward of every CAT inside, with its position table resized
    by traceable matrix products (a size-dependent ``F.interpolate`` would be
    traced as a constant)."""
    from mmcat.models import CAT, plain_forward
    from mmcat.models.layers.resize import bicubic_resize_nhwc_traceable
    cats = [m for m in model.modules() if isinstance(m, CAT)]
    upsamples = [m for m in model.modules()
                 if type(m).__name__ == 'Upsample' and not m.size
                 and hasattr(m, 'scale_factor')]
    for up in upsamples:  # mmseg's Upsample turns its size into ints
        up.forward = (lambda x, up=up: torch.nn.functional.interpolate(
            x, scale_factor=up.scale_factor, mode=up.mode,
            align_corners=up.align_corners))
    for cat in cats:
        cat.resized_pos_embed = (
            lambda hw, cat=cat: bicubic_resize_nhwc_traceable(
                cat.absolute_pos_embed, hw))
    try:
        with plain_forward(model):
            yield model
    finally:
        for cat in cats:
            del cat.resized_pos_embed
        for up in upsamples:
            del up.forward


# ------------------------------------------------------------------ export
def export_onnx(wrapped: nn.Module, example: torch.Tensor, path: str,
                names: List[str], opset: int = 17) -> None:
    """TorchScript-based ONNX export with dynamic batch, H and W."""
    axes: Dict[str, Dict[int, str]] = {'img': {0: 'batch', 2: 'height',
                                               3: 'width'}}
    axes.update({n: {0: 'batch'} for n in names})
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer warnings on shape ints
        torch.onnx.export(wrapped, (example,), path, dynamo=False,
                          input_names=['img'], output_names=names,
                          dynamic_axes=axes, opset_version=opset,
                          do_constant_folding=True)


def program_min_size(model: nn.Module) -> int:
    """The smallest H and W a ``torch.export`` program of ``model`` takes.

    The program is traced for stage maps of at least two patches per side
    (for one patch torch's shape checks would pick another graph), i.e. a
    last-stage map above N: H > P * 2**(stages - 1) * N for every CAT."""
    from mmcat.models import CAT
    sizes = [1]
    for cat in (m for m in model.modules() if isinstance(m, CAT)):
        stride = cat.patch_embed.patch_size * 2**(cat.num_stages - 1)
        patch = cat.stages[-1].blocks[0].cpsa.attn.patch_size
        sizes.append(stride * patch + 1)
    return max(sizes)


def program_shape(min_size: int) -> Tuple[int, int]:
    """A default example input for ``torch.export``: above ``min_size``,
    and H != W (equal example sizes would tie the two dimensions)."""
    return (max(256, min_size), max(320, min_size + 64))


def export_program(wrapped: nn.Module, example: torch.Tensor, path: str,
                   min_size: int, names: List[str]) -> None:
    """``torch.export`` with ``Dim`` for the batch, H and W, saved as a .pt2
    file (``example`` has a batch of 2: an example batch of 1 would fix it)
    with the output names and ``min_size`` beside it, for the runners."""
    from mmcat.deployment import PROGRAM_META
    b = torch.export.Dim('batch', min=1, max=1024)
    h = torch.export.Dim('H', min=min_size, max=8192)
    w = torch.export.Dim('W', min=min_size, max=8192)
    program = torch.export.export(wrapped, (example,),
                                  dynamic_shapes=({0: b, 2: h, 3: w},))
    meta = json.dumps(dict(outputs=names, min_size=min_size))
    torch.export.save(program, path, extra_files={PROGRAM_META: meta})


def run_exported(path: str, fmt: str,
                 img: torch.Tensor) -> List[np.ndarray]:
    """Run an exported file on ``img``; its outputs as numpy arrays."""
    if fmt == 'onnx':
        sess = _ort_session(path)
        return sess.run(None, {'img': img.numpy()})
    from mmcat.deployment import run_program
    return run_program(_program(path), img)


_SESSIONS: Dict[str, object] = {}


def _loaded(path: str, load: Callable[[str], object]):
    """``load(path)``, once per version of the file (verification runs the
    same file at several sizes)."""
    key = f'{path}:{os.stat(path).st_mtime_ns}'
    if key not in _SESSIONS:
        _SESSIONS[key] = load(path)
    return _SESSIONS[key]


def _program(path: str):
    """The ``torch.export`` program at ``path``, as a module."""
    return _loaded(path, lambda p: torch.export.load(p).module())


def _ort_session(path: str):
    import onnxruntime as ort
    return _loaded(path, lambda p: ort.InferenceSession(
        p, providers=['CPUExecutionProvider']))


def verify(wrapped: nn.Module, path: str, fmt: str,
           inputs: Sequence[Tuple[str, torch.Tensor]],
           tolerance: float) -> float:
    """Largest |exported - eager| / max(1, max|eager|) over all outputs
    and inputs; raise
    :class:`ExportError` above ``tolerance``."""
    worst = 0.
    for name, img in inputs:
        with torch.no_grad():
            ref = wrapped(img)
        ref = ref if isinstance(ref, (tuple, list)) else (ref, )
        got = run_exported(path, fmt, img)
        if len(got) != len(ref):
            raise ExportError(f'{name}: {len(got)} outputs, eager gives '
                              f'{len(ref)}')
        # relative to each output's scale (untrained box regressions reach
        # hundreds of pixels), absolute below 1
        diff = max(float(np.abs(g - r.numpy()).max() /
                         max(1., float(r.abs().max())))
                   if r.numel() else 0. for g, r in zip(got, ref))
        print(f'verify {name} {tuple(img.shape[2:])}: max |diff| '
              f'{diff:.2e}')
        worst = max(worst, diff)
        if not diff <= tolerance:
            raise ExportError(
                f'{name} {tuple(img.shape)}: the exported model differs '
                f'from PyTorch by {diff:.3e} > tolerance {tolerance:g}')
    return worst


def program_verify_sizes(min_size: int) -> Tuple[Tuple[int, int], ...]:
    """Sizes a ``torch.export`` program is checked at: the smallest it takes
    and odd and large ones above it."""
    m = min_size
    sizes = ((m, m), (m + 62, 2 * m + 1), (513, 771), (800, 1344))
    return tuple(s for s in sizes if min(s) >= m)


def verify_inputs(shape: Tuple[int, int],
                  image: Optional[str] = None,
                  cfg=None,
                  sizes: Sequence[Tuple[int, int]] = VERIFY_SIZES,
                  min_size: int = 1) -> List[Tuple[str, torch.Tensor]]:
    """Random inputs at ``shape`` and ``sizes``, and a real image (normalised
    as the config's data preprocessor does, zero-padded on the bottom/right
    up to ``min_size`` when smaller) when given."""
    gen = torch.Generator().manual_seed(0)
    sizes = [tuple(shape)] + [s for s in sizes if s != tuple(shape)]
    inputs = [('random', torch.randn(1, 3, *s, generator=gen))
              for s in sizes]
    inputs.append(('random batch of 3',
                   torch.randn(3, 3, *shape, generator=gen)))
    if image:
        img = load_image(image, cfg)
        h, w = img.shape[2:]
        img = torch.nn.functional.pad(
            img, (0, max(0, min_size - w), 0, max(0, min_size - h)))
        inputs.insert(0, (osp.basename(image), img))
    return inputs


def load_image(path: str, cfg=None) -> torch.Tensor:
    """(1, 3, H, W) float image, normalised with the config's
    ``data_preprocessor`` mean/std (BGR -> RGB when it says so)."""
    import mmcv
    img = mmcv.imread(path).astype(np.float32)           # H, W, 3 BGR
    pre = (cfg.model.get('data_preprocessor', {}) if cfg is not None
           else {})
    if pre.get('bgr_to_rgb', False):
        img = img[..., ::-1]
    mean = np.array(pre.get('mean', [0., 0., 0.]), np.float32)
    std = np.array(pre.get('std', [1., 1., 1.]), np.float32)
    img = (img - mean) / std
    return torch.from_numpy(np.ascontiguousarray(
        img.transpose(2, 0, 1)))[None]


# -------------------------------------------------------------------- main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='trained weights (default: the config\'s '
                        'initialisation)')
    parser.add_argument('--format', default='onnx',
                        help=f'one of {FORMATS}')
    parser.add_argument('--out', required=True, help='file to write')
    parser.add_argument('--shape', type=int, nargs=2, default=None,
                        metavar=('H', 'W'),
                        help='example input size (default: 224 x 224 for '
                        'onnx, 256 x 320 for torch-export)')
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument('--dynamic', action='store_true', default=True,
                        help='dynamic batch, H and W (the default)')
    parser.add_argument('--verify', dest='verify', action='store_true',
                        default=True)
    parser.add_argument('--no-verify', dest='verify', action='store_false')
    parser.add_argument('--verify-image', default=None,
                        help='a real image to verify on (default: the '
                        'first of the demo data when it is there; \'\': '
                        'random inputs only)')
    parser.add_argument('--tolerance', type=float, default=1e-4)
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--min-size', type=int, default=None,
                        help='smallest H and W of a torch-export program '
                        '(default and lowest: the model\'s, 225 for CAT)')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    if args.format not in FORMATS:
        raise ExportError(f'unknown --format {args.format!r}; choose one of '
                          f'{list(FORMATS)}')
    if args.shape is not None and min(args.shape) < 1:
        raise ExportError(f'--shape must be at least 1 x 1 pixels, got '
                          f'{args.shape[0]} x {args.shape[1]}')
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise ExportError(f'checkpoint {args.checkpoint!r} not found')
    if not osp.isfile(args.config):
        raise ExportError(f'config {args.config!r} not found')


def build_model(config: str, checkpoint: Optional[str]):
    """(cfg, model in eval mode with ``checkpoint`` loaded strictly)."""
    from mmcat.analysis.config_model import model_from_config
    from mmcat.engine import setup_runtime
    setup_runtime()
    built = model_from_config(config)
    model = built.model
    if checkpoint:
        from mmengine.runner import load_checkpoint
        try:
            load_checkpoint(model, checkpoint, map_location='cpu',
                            strict=True)
        except Exception as e:  # noqa: BLE001 - named in the message
            raise ExportError(
                f'checkpoint {checkpoint!r} does not fit {config}: '
                f'{type(e).__name__}: {str(e)[:600]}') from e
    return built.cfg, model.eval()


def default_image(cfg) -> Optional[str]:
    """The first validation image of the config's data, when present."""
    try:
        ds = cfg.val_dataloader.dataset
        prefix = ds.data_prefix.get('img', ds.data_prefix.get('img_path'))
        folder = osp.join(ds.data_root, prefix)
        names = sorted(os.listdir(folder))
        return osp.join(folder, names[0]) if names else None
    except Exception:  # noqa: BLE001 - no data: random inputs only
        return None


def export_sizes(args: argparse.Namespace, model: nn.Module
                 ) -> Tuple[Tuple[int, int], int, Tuple[Tuple[int, int], ...]]:
    """(example shape, smallest H and W, sizes to verify at) for ``args``."""
    if args.format == 'onnx':
        return tuple(args.shape or (224, 224)), 1, VERIFY_SIZES
    lowest = program_min_size(model)
    min_size = lowest if args.min_size is None else args.min_size
    if min_size < lowest:
        raise ExportError(
            f'--min-size {min_size} is below {lowest}, the smallest H and W '
            f'a torch-export program of this model takes (every stage needs '
            f'two patches per side); export ONNX for smaller inputs')
    shape = tuple(args.shape or program_shape(min_size))
    if min(shape) < min_size:
        raise ExportError(
            f'--shape {shape[0]} {shape[1]} is below {min_size}, the '
            f'smallest H and W of this torch-export program; give a larger '
            f'example size')
    return shape, min_size, program_verify_sizes(min_size)


def _give_mode(tmp: str, target: str) -> None:
    """Give the temporary file (created 0600) the permissions a plain write
    of ``target`` would have (the umask's, or the replaced file's)."""
    from mmcat.engine.atomic_io import file_mode_for
    try:
        os.chmod(tmp, file_mode_for(target))
    except OSError:  # a filesystem without chmod: keep mkstemp's mode
        pass


def export(args: argparse.Namespace) -> float:
    """Export as ``args`` say; the largest verified difference (0 when
    ``--no-verify``)."""
    check_args(args)
    cfg, model = build_model(args.config, args.checkpoint)
    kind = model_kind(model, args.backbone_only)
    wrapped = wrap(model, kind)
    shape, min_size, sizes = export_sizes(args, model)
    example = torch.randn(1 if args.format == 'onnx' else 2, 3, *shape)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    suffix = '.onnx' if args.format == 'onnx' else '.pt2'  # torch.load asks
    fd, tmp = tempfile.mkstemp(prefix='.export-', suffix=f'.tmp{suffix}',
                               dir=out_dir)
    os.close(fd)
    worst = 0.
    try:
        with export_ready(wrapped), torch.no_grad():
            names = output_names(wrapped, kind, example)
            if args.format == 'onnx':
                export_onnx(wrapped, example, tmp, names, args.opset)
            else:
                export_program(wrapped, example, tmp, min_size, names)
        print(f'exported {kind} of {args.config} ({args.format}): '
              f'outputs {names}')
        if args.verify:
            image = (default_image(cfg) if args.verify_image is None
                     else args.verify_image or None)
            inputs = verify_inputs(shape, image, cfg, sizes, min_size)
            with torch.no_grad():
                worst = verify(wrapped, tmp, args.format, inputs,
                               args.tolerance)
            print(f'verified: max |diff| {worst:.2e} <= {args.tolerance:g}')
        _give_mode(tmp, args.out)
        os.replace(tmp, args.out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print(f'wrote {args.out}')
    return worst


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        export(args)
    except ExportError as e:
        print(f'export.py: error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
