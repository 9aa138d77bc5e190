from .invalid_loss import InvalidLossHook
from .rng_state import RNGStateHook

__all__ = ['InvalidLossHook', 'RNGStateHook']
