"""distkernel: Linux kernels handled like packages."""

__version__ = "0.1.0"
