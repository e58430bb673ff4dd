"""DiMR, reproduced: the multi-resolution diffusion network, its training, sampling and evaluation."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("dimr")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
