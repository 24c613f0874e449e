"""advrepro: reproduce the figures of the theory papers on adversarial examples of neural networks."""

__version__ = "0.1.0"
