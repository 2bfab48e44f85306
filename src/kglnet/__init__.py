"""KGL-Net cross-spectral patch matching."""
__version__ = "0.1.0"
