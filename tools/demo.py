"""mmcat's main job, on a laptop-class CPU with data it makes itself.

Generates a COCO-format dataset of shapes (if absent), trains FCOS with a
small CAT backbone and the same FCOS with a ResNet-18 of about the same size,
both from scratch with the same data, optimizer and schedule, evaluates both
with the COCO metric (pycocotools, through MMDetection's CocoMetric), and puts
the results side by side: a table on the terminal, and under
``work_dirs/demo/<task>/``: ``comparison.png`` (loss curves and metrics),
``comparison.md``/``.json``, ``results.json`` and ``predictions.png`` (four
validation images, each row the ground truth, CAT's and ResNet-18's
predictions, drawn by the config's visualizer at its ``infer_score_thr``).

    python tools/demo.py                  # detection: CAT vs ResNet (FCOS)
    python tools/demo.py --task seg       # Semantic FPN on ADE20K-format data
    python tools/demo.py --task mask      # Mask R-CNN (mask mAP)
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Sized for a 2-core CPU: 1200 training images of 128 px with 1-4 objects of
# 20-50 % of the side (scale variation, overlaps, occlusion, textures, noise).
# The equivalent command line: tools/generate_demo_data.py --num-train 1200
# --max-objects 4 --min-scale 0.2 --max-scale 0.5
DEMO_SCENES = dict(max_objects=4, min_scale=0.2, max_scale=0.5)
DEMO_NUM_TRAIN = 1200
DEMO_NUM_VAL = 100

TASKS = {
    # task: (dataset kind, [(run name, config)], headline metric)
    'det': ('coco', [('CAT', 'configs/demo/fcos_cat_demo.py'),
                     ('ResNet-18', 'configs/demo/fcos_r18_demo.py')],
            'coco/bbox_mAP'),
    'mask': ('coco', [('CAT', 'configs/demo/mask-rcnn_cat_demo.py'),
                      ('ResNet-18', 'configs/demo/mask-rcnn_r18_demo.py')],
             'coco/segm_mAP'),
    'seg': ('ade', [('CAT', 'configs/demo/sem-fpn_cat_demo.py'),
                    ('ResNet-18', 'configs/demo/sem-fpn_r18_demo.py')],
            'mIoU'),
}


def _data_spec(seed: int) -> dict:
    """What the demo data is made from: a different spec means other data."""
    from dataclasses import asdict

    from mmcat.datasets.synthetic import SceneConfig
    return dict(seed=seed, num_train=DEMO_NUM_TRAIN, num_val=DEMO_NUM_VAL,
                scenes=json.loads(json.dumps(asdict(
                    SceneConfig(**DEMO_SCENES)))))


def ensure_data(kind: str, data_dir: str, seed: int) -> None:
    """Generate the demo dataset of ``kind`` unless the same one (seed,
    counts and scene parameters, recorded in ``demo_data.json`` next to it)
    is already there."""
    from mmcat.datasets.synthetic import (ADE_DIR, COCO_DIR, SceneConfig,
                                          write_ade, write_coco)
    root = osp.join(data_dir, COCO_DIR if kind == 'coco' else ADE_DIR)
    writer = write_coco if kind == 'coco' else write_ade
    stamp = osp.join(root, 'demo_data.json')
    spec = _data_spec(seed)
    if osp.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == spec:
                print(f'[demo] using the {kind} demo data in {root}')
                return
        print(f'[demo] {root} was made with other settings than '
              f'DEMO_SCENES / seed {seed}: making it again')
    print(f'[demo] generating the {kind} demo data in {data_dir} '
          f'(seed {seed}, {DEMO_NUM_TRAIN} + {DEMO_NUM_VAL} images) ...',
          flush=True)
    start = time.time()
    summary = writer(data_dir, seed=seed, num_train=DEMO_NUM_TRAIN,
                     num_val=DEMO_NUM_VAL, cfg=SceneConfig(**DEMO_SCENES))
    with open(stamp, 'w') as f:
        json.dump(spec, f, indent=1, sort_keys=True)
    print(f'[demo] done in {time.time() - start:.0f} s: {summary}')


def _child_env() -> dict:
    """Environment of the training processes. OpenMP threads that spin while
    waiting make a run 5-10x slower as soon as anything else uses the CPU
    (measured here: 8-33 s per step instead of 1-4 s); passive waiting costs
    little on an idle machine."""
    env = dict(os.environ)
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    return env


def train(config: str, work_dir: str, extra: list) -> float:
    """Train ``config`` in a subprocess (its log streams to the terminal);
    returns the wall time in seconds."""
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
           '--work-dir', work_dir] + extra
    print(f'[demo] $ {" ".join(cmd)}', flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True, env=_child_env())
    return time.time() - start


def evaluate_untrained(config: str, work_dir: str) -> dict:
    """COCO/mIoU metrics of the model before training (same init as the
    training run), for the 'it really learnt' comparison."""
    cmd = [sys.executable, '-c', (
        'import sys; from mmengine.config import Config; import mmcat; '
        'from mmcat.engine import build_runner, cap_cpu_threads; '
        'cfg = Config.fromfile(sys.argv[1]); cfg.work_dir = sys.argv[2]; '
        'cap_cpu_threads(cfg, "test_dataloader"); '
        'runner = build_runner(cfg); runner.model.init_weights(); '
        # default=float: MMSegmentation's IoUMetric returns numpy floats.
        'import json; print("METRICS" + json.dumps(runner.test(), '
        'default=float))'),
        config, work_dir]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=_child_env())
    if proc.returncode:
        # Its output was captured: show why it failed.
        sys.stderr.write(proc.stderr[-5000:])
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    line = [x for x in proc.stdout.splitlines()
            if x.startswith('METRICS')][-1]
    return json.loads(line[len('METRICS'):])


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint a training run wrote last (mmengine's record)."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def write_predictions(runs: list, dirs: list, out_dir: str,
                      cfg_options: list) -> str:
    """``predictions.png``: the first validation images, each row the ground
    truth, then every run's predictions from its last checkpoint."""
    from mmengine.config import DictAction

    from mmcat.visualization import load_model, write_prediction_sheet
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(cfg_options).cfg_options
    cfgs, models = [], []
    for (name, config), work_dir in zip(runs, dirs):
        cfg, model = load_model(config, last_checkpoint(work_dir), options)
        cfgs.append(cfg)
        models.append((name, model))
    # data, pipeline, visualizer and score threshold: the CAT run's config
    path = osp.join(out_dir, 'predictions.png')
    write_prediction_sheet(path, cfgs[0], models, num_images=4)
    print(f'[demo] {path}: ground truth and predictions of '
          f'{", ".join(n for n, _ in runs)}', flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description='Train CAT and a ResNet baseline on generated data and '
        'compare them')
    parser.add_argument('--task', choices=sorted(TASKS), default='det')
    parser.add_argument('--data-dir', default='data',
                        help='where the demo datasets are (or go)')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='passed to tools/train.py for every run')
    args = parser.parse_args()

    kind, runs, headline = TASKS[args.task]
    os.chdir(ROOT)
    ensure_data(kind, args.data_dir, args.seed)
    out_dir = osp.join(args.work_dir, args.task)
    extra = ['--cfg-options', f'randomness.seed={args.seed}'] + \
        args.cfg_options
    times, dirs = {}, []
    for name, config in runs:
        work_dir = osp.join(out_dir, name.lower().replace('-', ''))
        times[name] = train(config, work_dir, extra)
        dirs.append(work_dir)

    print('[demo] evaluating the untrained CAT model for reference ...',
          flush=True)
    untrained = evaluate_untrained(runs[0][1],
                                   osp.join(out_dir, 'cat_untrained'))
    # An untrained detector has no detections above the score threshold:
    # MMDetection's CocoMetric then returns nothing, i.e. an mAP of 0.
    untrained = untrained or {headline: 0.0}

    from mmcat.analysis import compare_runs
    result = compare_runs(dirs, names=[n for n, _ in runs], out_dir=out_dir)
    summary = dict(
        task=args.task, headline_metric=headline,
        metrics={name: result['runs'][name]['metrics'] for name, _ in runs},
        untrained_cat=untrained, train_seconds=times,
        configs=dict(runs), files=result['files'])
    summary['files']['predictions'] = write_predictions(
        runs, dirs, out_dir, extra)
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(summary, f, indent=2)

    print('\n' + result['text'])
    cat = summary['metrics'][runs[0][0]].get(headline)
    print(f'\n{headline}: CAT {cat}, untrained CAT '
          f'{untrained.get(headline)}, '
          + ', '.join(f'{n} {summary["metrics"][n].get(headline)}'
                      for n, _ in runs[1:]))
    print('training time: ' + ', '.join(f'{n} {t / 60:.1f} min'
                                        for n, t in times.items()))
    print(f'written: {result["files"]["png"]}, {result["files"]["md"]}, '
          f'{osp.join(out_dir, "results.json")}, '
          f'{summary["files"]["predictions"]}')


if __name__ == '__main__':
    main()
