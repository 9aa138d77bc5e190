from .cat import CAT, CATStage

__all__ = ['CAT', 'CATStage']
