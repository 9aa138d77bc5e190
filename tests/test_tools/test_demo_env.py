"""``tools/demo.py`` runs its training processes with the user's environment
plus what they left unset: passive OpenMP waiting, and torch threads on the
CPUs the data-loader workers leave free."""
import os.path as osp

from tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = 'configs/demo/fcos_cat_demo.py'


def test_training_threads_leave_the_loader_workers_their_cpus(
        tmp_path) -> None:
    demo = load_tool('tools/demo.py')
    config = osp.join(ROOT, DEMO_CONFIG)          # 2 loader workers
    assert demo.training_threads(config, cpus=2) == 1
    assert demo.training_threads(config, cpus=1) == 1
    assert demo.training_threads(config, cpus=8) == 6
    no_workers = tmp_path / 'no_workers.py'
    no_workers.write_text(
        f"_base_ = '{config}'\n"
        "train_dataloader = dict(num_workers=0, persistent_workers=False)\n")
    assert demo.training_threads(str(no_workers), cpus=4) == 4


def test_child_env_keeps_what_the_user_set(monkeypatch) -> None:
    demo = load_tool('tools/demo.py')
    monkeypatch.setattr(demo, '_cpus', lambda: 2)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.delenv('OMP_WAIT_POLICY', raising=False)
    env = demo._child_env(DEMO_CONFIG)
    assert env['OMP_NUM_THREADS'] == '1'
    assert env['OMP_WAIT_POLICY'] == 'PASSIVE'

    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    monkeypatch.setenv('OMP_WAIT_POLICY', 'ACTIVE')
    env = demo._child_env(DEMO_CONFIG)
    assert env['OMP_NUM_THREADS'] == '3'
    assert env['OMP_WAIT_POLICY'] == 'ACTIVE'
