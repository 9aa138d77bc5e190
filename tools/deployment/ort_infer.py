"""Run an exported detector or segmentor on one image and draw its
predictions: an ONNX file in onnxruntime, or a ``torch.export`` program.

    python tools/deployment/ort_infer.py MODEL.onnx IMAGE --config CONFIG \\
        --out vis.png [--score-thr T] [--json preds.json]
    python tools/deployment/ort_infer.py MODEL.pt2 IMAGE --config CONFIG \\
        --out vis.png

The image goes through the config's test pipeline and data preprocessor
(resize, normalise, pad), the exported model, and the model's own
post-processing (:func:`mmcat.deployment.load_exported`): boxes in pixels of
the image, or a label map at its size. The picture is drawn by the config's
visualizer (MMDetection's DetLocalVisualizer, MMSegmentation's
SegLocalVisualizer). Detections are drawn from ``--score-thr`` on (default:
the config's ``infer_score_thr``, else 0.3). Bad input (a file that is not
an export, a config that does not fit it, a missing image, an image below a
program's smallest size) exits with code 2 and says why.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

import numpy as np

#: DetInferencer's default, used when the config sets no infer_score_thr.
FALLBACK_SCORE_THR = 0.3


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('exported', help='file written by export.py: '
                        '.onnx, or .pt2 (--format torch-export)')
    parser.add_argument('image')
    parser.add_argument('--config', required=True,
                        help='the config the file was exported from')
    parser.add_argument('--out', required=True, help='picture to write')
    parser.add_argument('--score-thr', type=float, default=None,
                        help='draw detections from this score on (default: '
                        f'the config\'s infer_score_thr, else '
                        f'{FALLBACK_SCORE_THR})')
    parser.add_argument('--json', default=None,
                        help='also write the predictions here')
    return parser.parse_args(argv)


def predictions_dict(sample, classes: Sequence[str],
                     score_thr: float) -> Dict:
    """Plain data of a prediction: detections at or above ``score_thr``
    (box x1, y1, x2, y2 in pixels of the image), or the label map's share of
    pixels per class."""
    def name(i: int) -> str:
        return classes[i] if i < len(classes) else str(i)

    if 'pred_sem_seg' in sample:
        labels = sample.pred_sem_seg.data[0].cpu().numpy()
        ids, counts = np.unique(labels, return_counts=True)
        return dict(shape=list(labels.shape), pixel_share={
            name(int(i)): round(int(c) / labels.size, 6)
            for i, c in zip(ids, counts)})
    pred = sample.pred_instances
    keep = pred.scores >= score_thr
    return dict(score_thr=score_thr,
                bboxes=pred.bboxes[keep].tolist(),
                scores=pred.scores[keep].tolist(),
                labels=pred.labels[keep].tolist(),
                label_names=[name(int(i)) for i in pred.labels[keep]])


def run(args: argparse.Namespace) -> Dict:
    """Predict, draw and write; the predictions as plain data."""
    import mmcv
    from mmengine.config import Config

    from mmcat.deployment import DeploymentError, load_exported
    from mmcat.visualization import config_visualizer
    for what, path in (('config', args.config), ('image', args.image),
                       ('exported file', args.exported)):
        if not osp.isfile(path):
            raise DeploymentError(f'{what} {path!r} not found')
    cfg = Config.fromfile(args.config)
    model = load_exported(args.exported, cfg)
    sample = model.predict(args.image)
    thr = args.score_thr
    if thr is None:
        thr = cfg.get('infer_score_thr', None)
        thr = FALLBACK_SCORE_THR if thr is None else float(thr)
    visualizer = config_visualizer(cfg)
    image = mmcv.imread(args.image, channel_order='rgb')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    extra = dict(pred_score_thr=thr) if model.kind == 'detector' else {}
    visualizer.add_datasample(osp.basename(args.image), image, sample,
                              draw_gt=False, out_file=args.out, **extra)
    preds = predictions_dict(
        sample, visualizer.dataset_meta.get('classes', ()), thr)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(preds, f)
    if model.kind == 'detector':
        print(f'{len(preds["scores"])} detections at score >= {thr:g}')
    print(f'wrote {args.out}' + (f', {args.json}' if args.json else ''))
    return preds


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mmcat.deployment import DeploymentError
    args = parse_args(argv)
    try:
        run(args)
    except DeploymentError as e:
        print(f'ort_infer.py: error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
