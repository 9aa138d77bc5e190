"""Import a script of ``tools/`` as a module, for the tests that call its
functions directly (the scripts are not a package)."""
import importlib.util
import os.path as osp
from types import ModuleType

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(path: str) -> ModuleType:
    """A fresh module executed from ``REPO_ROOT/path`` (e.g.
    ``'tools/train.py'``); each call runs the script's top level again."""
    full = osp.join(REPO_ROOT, path)
    if not osp.isfile(full):
        raise FileNotFoundError(f'no script {path} under {REPO_ROOT}')
    name = 'mmcat_script_' + osp.splitext(path)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
