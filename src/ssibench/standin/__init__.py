"""The stand-in device: prove that training and evaluation are GPU-ready on a CPU-only machine."""
