"""Tandem: PyTorch training jobs that survive Ascend interconnect faults on Kubernetes.

The import root only maps the sub-packages (see pyproject.toml); it imports nothing heavy,
so `import tandem.operator` stays free of torch.
"""

__version__ = "0.1.0"
