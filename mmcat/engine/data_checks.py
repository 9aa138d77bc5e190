"""Data errors that say where the data should be and which file is bad.

* :func:`check_dataset_paths`: before a dataset is built, its ``data_root``,
  ``ann_file`` and ``data_prefix`` folders must exist; a missing one is a
  FileNotFoundError naming the path, the config key and how to get the data
  (the demo generator, or where COCO / ADE20K come from). mmdet's and
  mmseg's datasets would fail later on the first missing file with the path
  alone.
* :class:`NameSampleOnError`: a dataset pipeline that fails on a sample (a
  corrupt image, say) raises an error naming the sample's files. mmcv's
  ``LoadImageFromFile`` names the image only for some failures: an empty
  file (cv2), anything with ``imdecode_backend='pillow'`` and unreadable
  segmentation maps come with no file name at all.
* :func:`check_data_on_build` makes a Runner do both for every data loader
  it builds (train, val, test), when it builds it.
"""
from typing import Any, Dict, Iterator, List, Optional, Tuple

from mmengine import fileio
from mmengine.utils import is_abs

__all__ = [
    'NameSampleOnError', 'check_data_on_build', 'check_dataset_paths',
    'name_sample_errors'
]

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _leaf_datasets(cfg: Any, where: str) -> Iterator[Tuple[str, dict]]:
    """(config key, config) of each dataset inside wrappers such as
    ConcatDataset (``datasets``), RepeatDataset or ClassBalancedDataset
    (``dataset``)."""
    if not isinstance(cfg, dict):
        return
    if isinstance(cfg.get('dataset'), dict):
        yield from _leaf_datasets(cfg['dataset'], f'{where}.dataset')
    elif isinstance(cfg.get('datasets'), (list, tuple)):
        for i, sub in enumerate(cfg['datasets']):
            yield from _leaf_datasets(sub, f'{where}.datasets[{i}]')
    else:
        yield where, cfg


def _expected_paths(cfg: dict) -> List[Tuple[str, str]]:
    """(key, path) of what a dataset config reads, joined to ``data_root``
    as mmengine's BaseDataset joins them."""
    root = cfg.get('data_root') or ''
    backend_args = cfg.get('backend_args')

    def joined(path: str) -> str:
        if root and not is_abs(path):
            return fileio.join_path(root, path, backend_args=backend_args)
        return path

    paths = []
    if root:
        paths.append(('data_root', root))
    ann_file = cfg.get('ann_file')
    if isinstance(ann_file, str) and ann_file:
        paths.append(('ann_file', joined(ann_file)))
    prefix = cfg.get('data_prefix') or {}
    if isinstance(prefix, dict):
        paths += [(f'data_prefix.{k}', joined(v)) for k, v in prefix.items()
                  if isinstance(v, str) and v]
    return paths


def _data_kind(dataset_type: Any) -> Optional[str]:
    name = dataset_type if isinstance(dataset_type, str) else getattr(
        dataset_type, '__name__', '')
    name = name.lower()
    if 'coco' in name:
        return 'coco'
    if 'ade' in name:
        return 'ade'
    return None


def check_dataset_paths(dataset_cfg: Any, where: str = 'dataset') -> None:
    """Raise FileNotFoundError if a folder or file a dataset config reads is
    missing, saying where it is expected and how to get the data.

    Args:
        dataset_cfg: a dataset config (wrappers included); anything else
            (an already built dataset) is not checked.
        where: its key in the config, for the message
            (``'train_dataloader.dataset'``).
    """
    for key, cfg in _leaf_datasets(dataset_cfg, where):
        for field, path in _expected_paths(cfg):
            if fileio.exists(path, backend_args=cfg.get('backend_args')):
                continue
            fix = (f'(It is {key}.{field} of the config; point '
                   f'{key}.data_root at the data, e.g. with --cfg-options '
                   f'{key}.data_root=PATH.)')
            kind = _data_kind(cfg.get('type'))
            if kind is None:
                raise FileNotFoundError(
                    f'{path} does not exist: the {cfg.get("type")} dataset '
                    f'of {key} reads it. {fix}')
            from mmcat.datasets.missing import check_data_exists
            try:
                check_data_exists(path, kind, cfg.get('backend_args'))
            except FileNotFoundError as e:
                raise FileNotFoundError(f'{e}\n{fix}') from None


def _sample_files(data: Any) -> Dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items()
            if (k.endswith('_path') or k == 'sample_idx')
            and isinstance(v, (str, int))}


class NameSampleOnError:
    """Wrap a dataset's pipeline: an exception raised while preparing a
    sample is raised again (same type where possible) with the sample's
    index and file paths in its message, the original chained.

    Args:
        pipeline: the callable to wrap (a ``Compose``).
    """

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline

    def __call__(self, data: Any) -> Any:
        files = _sample_files(data)  # before transforms change ``data``
        try:
            return self.pipeline(data)
        except Exception as e:
            where = ', '.join(f'{k}={v!r}' for k, v in files.items())
            msg = (f'Could not prepare the sample {where}: '
                   f'{type(e).__name__}: {e}\nIf one of these files is '
                   f'damaged, re-encode or remove it; '
                   f'LoadImageFromFile(ignore_empty=True) skips unreadable '
                   f'images during training.')
            try:
                new = type(e)(msg)
            except Exception:
                new = RuntimeError(msg)
            raise new from e

    def __getattr__(self, name: str) -> Any:
        if name == 'pipeline':  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.pipeline!r})'


def name_sample_errors(dataset: Any, depth: int = 0) -> None:
    """Wrap the pipelines of ``dataset`` and the datasets it wraps."""
    if dataset is None or depth > 8:
        return
    pipeline = getattr(dataset, 'pipeline', None)
    if callable(pipeline) and not isinstance(pipeline, NameSampleOnError):
        dataset.pipeline = NameSampleOnError(pipeline)
    name_sample_errors(getattr(dataset, 'dataset', None), depth + 1)
    for sub in getattr(dataset, 'datasets', None) or ():
        name_sample_errors(sub, depth + 1)


def check_data_on_build(runner, cfg: Optional[dict] = None) -> None:
    """Make ``runner`` check each data loader's dataset paths right before
    building it (so ``tools/test.py`` needs only the test data) and name the
    files of a sample its pipeline fails on.

    Args:
        runner: a built ``Runner`` (its data loaders are still configs).
        cfg: the config the Runner was built from; its data loader entries
            name the loaders in messages.
    """
    loaders = [(key, cfg.get(key)) for key in _LOADERS] if cfg else []
    build = runner.build_dataloader

    def build_checked(dataloader, *args, **kwargs):
        if isinstance(dataloader, dict):
            # the Runner passes (copies of) the config's entries
            where = next((k for k, v in loaders if v == dataloader),
                         'dataloader')
            check_dataset_paths(dataloader.get('dataset'), f'{where}.dataset')
        loader = build(dataloader, *args, **kwargs)
        name_sample_errors(getattr(loader, 'dataset', None))
        return loader

    runner.build_dataloader = build_checked
