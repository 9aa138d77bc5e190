from .invalid_loss import InvalidLossHook

__all__ = ['InvalidLossHook']
