"""Figures, one module per figure family (matplotlib/seaborn)."""
