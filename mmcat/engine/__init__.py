"""Training-time additions to mmengine: hooks and safe checkpoint writes."""
from .atomic_io import enable_atomic_local_writes
from .hooks import InvalidLossHook

__all__ = ['InvalidLossHook', 'enable_atomic_local_writes']
