"""surrogap: the surrogate gap between contrastive and supervised losses.

Reproduces, checks and extends Bao, Nagano & Nozawa, "On the Surrogate Gap between
Contrastive and Supervised Losses", ICML 2022 (arXiv:2110.02501).
"""

__version__ = "0.1.0"
