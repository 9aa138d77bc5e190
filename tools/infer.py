"""Run a trained detector or segmentor on your own images, a folder or a video.

Goes through MMDetection's ``DetInferencer`` (boxes, instance masks) or
MMSegmentation's ``MMSegInferencer`` (colour maps), as the config's
``default_scope`` says, and writes under ``--out`` (default
``outputs/infer``):

* ``vis/<name>.jpg``: the picture with the predictions drawn (a video gives
  ``vis/<name>.mp4``);
* ``preds/<name>.json``: the predictions (detection: class, score and box in
  pixels of the input, instance masks as COCO RLE; segmentation: the class
  of every label and its share of the pixels) and, for segmentation,
  ``preds/<name>.png``, the label map.

The default score threshold (detection only) is the config's
``infer_score_thr`` when it sets one, else 0.3 (``DetInferencer``'s own);
``--score-thr`` overrides both. An image where nothing reaches the threshold
gets a line with its best score, so the threshold can be set from it.

Examples::

    python tools/infer.py configs/demo/fcos_cat_demo.py \\
        work_dirs/demo/det/cat/epoch_8.pth data/coco_demo/val2017/
    python tools/infer.py CONFIG CKPT street.mp4 --score-thr 0.5 --device cuda
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from mmengine.config import Config

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')
#: ``DetInferencer``'s own default, used when the config sets none.
FALLBACK_SCORE_THR = 0.3


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Run a model on images, a folder of images or a video')
    parser.add_argument('config', help='the config the model was trained with')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('input', help='an image, a folder of images, a video')
    parser.add_argument('--out', default='outputs/infer',
                        help='where vis/ and preds/ go')
    parser.add_argument(
        '--score-thr', type=float, default=None,
        help='draw detections from this score on (default: the config\'s '
        f'infer_score_thr, else {FALLBACK_SCORE_THR})')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda or cuda:N (default: cuda if there '
                        'is one)')
    return parser.parse_args(argv)


def default_score_thr(cfg: Config) -> Tuple[float, str]:
    """The score threshold a config's model is drawn with, and where it
    comes from (for the log)."""
    thr = cfg.get('infer_score_thr', None)
    if thr is not None:
        return float(thr), "the config's infer_score_thr"
    return FALLBACK_SCORE_THR, "DetInferencer's default"


def list_inputs(path: str) -> List[str]:
    """The images of a folder (sorted), or the one file given."""
    if osp.isdir(path):
        files = sorted(
            osp.join(path, f) for f in os.listdir(path)
            if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise FileNotFoundError(
                f'no image ({", ".join(IMAGE_EXTS)}) in the folder {path}')
        return files
    if not osp.isfile(path):
        raise FileNotFoundError(f'input {path} does not exist')
    return [path]


def video_frames(path: str) -> Iterator[np.ndarray]:
    """The frames of a video, BGR uint8 (H, W, 3)."""
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise RuntimeError(f'cannot open the video {path} (OpenCV)')
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


class Predictor:
    """One inferencer for the config's task, one call per image.

    Args:
        cfg: the model's config.
        checkpoint: its weights.
        device: where to run; None picks cuda if available.
        score_thr: detection score from which predictions are drawn.
    """

    def __init__(self, cfg: Config, checkpoint: str,
                 device: Optional[str], score_thr: float) -> None:
        self.scope = cfg.get('default_scope', 'mmdet')
        self.score_thr = score_thr
        if self.scope == 'mmseg':
            from mmseg.apis import MMSegInferencer
            self.inferencer = MMSegInferencer(
                model=cfg, weights=checkpoint, device=device)
        elif self.scope == 'mmdet':
            from mmdet.apis import DetInferencer
            self.inferencer = DetInferencer(
                model=cfg, weights=checkpoint, device=device,
                show_progress=False)
        else:
            raise ValueError(f'default_scope {self.scope!r}: tools/infer.py '
                             "runs 'mmdet' and 'mmseg' configs")
        self.classes = list(
            self.inferencer.model.dataset_meta.get('classes', ()))

    def __call__(self, image) -> Tuple[Dict, np.ndarray]:
        """Predict ``image`` (a path, or a BGR array); returns the
        predictions as plain data and the drawn picture (RGB for a path, the
        input's channel order for an array)."""
        if self.scope == 'mmseg':
            out = self.inferencer(image, return_vis=True)
            return self._seg_dict(out['predictions']), out['visualization']
        out = self.inferencer(image, return_vis=True, no_save_vis=True,
                              pred_score_thr=self.score_thr)
        pred = out['predictions'][0]
        pred['label_names'] = [self._name(i) for i in pred['labels']]
        pred['score_thr'] = self.score_thr
        pred['num_drawn'] = sum(s >= self.score_thr for s in pred['scores'])
        return pred, out['visualization'][0]

    def _name(self, label: int) -> str:
        return self.classes[label] if label < len(self.classes) else str(
            label)

    def _seg_dict(self, label_map: np.ndarray) -> Dict:
        labels, counts = np.unique(label_map, return_counts=True)
        total = int(label_map.size)
        return dict(
            shape=list(label_map.shape),
            classes=self.classes,
            pixel_share={
                self._name(int(k)): round(int(c) / total, 6)
                for k, c in zip(labels, counts)
            },
            label_map=label_map)

    def nothing_drawn(self, pred: Dict) -> Optional[str]:
        """The line for a detection picture with nothing drawn, else None."""
        if self.scope != 'mmdet' or pred['num_drawn']:
            return None
        if not pred['scores']:
            return (f'nothing drawn: no prediction at all (threshold '
                    f'{self.score_thr:g})')
        best = max(pred['scores'])
        return (f'nothing drawn: best score {best:.3f} < threshold '
                f'{self.score_thr:g} (set --score-thr to draw more)')


def save(pred: Dict, vis: np.ndarray, out_dir: str, name: str,
         vis_is_rgb: bool = True) -> Dict[str, str]:
    """Write ``vis/<name>.jpg`` and ``preds/<name>.json`` (and the label
    map ``preds/<name>.png`` of a segmentation); returns their paths."""
    import mmcv
    files = dict(vis=osp.join(out_dir, 'vis', name + '.jpg'),
                 json=osp.join(out_dir, 'preds', name + '.json'))
    mmcv.imwrite(vis[..., ::-1] if vis_is_rgb else vis, files['vis'])
    pred = dict(pred)
    label_map = pred.pop('label_map', None)
    if label_map is not None:
        files['label_map'] = osp.join(out_dir, 'preds', name + '.png')
        mmcv.imwrite(label_map.astype(np.uint8), files['label_map'])
        pred['label_map'] = osp.basename(files['label_map'])
    os.makedirs(osp.dirname(files['json']), exist_ok=True)
    with open(files['json'], 'w') as f:
        json.dump(pred, f)
    return files


def run_video(predictor: Predictor, path: str, out_dir: str) -> None:
    """Predict every frame; write ``vis/<name>.mp4`` and one JSON of the
    frames' predictions."""
    import cv2
    name = osp.splitext(osp.basename(path))[0]
    fps = cv2.VideoCapture(path).get(cv2.CAP_PROP_FPS) or 25
    os.makedirs(osp.join(out_dir, 'vis'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'preds'), exist_ok=True)
    vis_path = osp.join(out_dir, 'vis', name + '.mp4')
    writer, frames = None, []
    for frame in video_frames(path):
        # An array input is drawn in its own (BGR) channel order: the frame
        # goes to the video writer as it comes.
        pred, vis = predictor(frame)
        if writer is None:
            writer = cv2.VideoWriter(vis_path,
                                     cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                     (vis.shape[1], vis.shape[0]))
        writer.write(np.ascontiguousarray(vis))
        pred.pop('label_map', None)
        frames.append(pred)
    if writer is None:
        raise RuntimeError(f'the video {path} has no frame OpenCV can read')
    writer.release()
    json_path = osp.join(out_dir, 'preds', name + '.json')
    with open(json_path, 'w') as f:
        json.dump(dict(frames=frames), f)
    print(f'{path}: {len(frames)} frames -> {vis_path}, {json_path}')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from mmcat.engine import setup_runtime
    setup_runtime()  # mmengine's checkpoints load under weights_only
    cfg = Config.fromfile(args.config)
    if args.score_thr is not None:
        thr, source = args.score_thr, '--score-thr'
    else:
        thr, source = default_score_thr(cfg)
    predictor = Predictor(cfg, args.checkpoint, args.device, thr)
    if predictor.scope == 'mmdet':
        print(f'score threshold {thr:g} ({source})')
    if args.input.lower().endswith(VIDEO_EXTS):
        run_video(predictor, args.input, args.out)
        return
    for path in list_inputs(args.input):
        pred, vis = predictor(path)
        name = osp.splitext(osp.basename(path))[0]
        files = save(pred, vis, args.out, name)
        note = predictor.nothing_drawn(pred)
        drawn = (f'{pred["num_drawn"]} drawn'
                 if predictor.scope == 'mmdet' else 'colour map')
        print(f'{path}: {note or drawn} -> {files["vis"]}, {files["json"]}')


if __name__ == '__main__':
    main()
