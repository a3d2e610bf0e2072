"""VBench (Huang et al., CVPR 2024) as a suite of ``vbench_<dimension>`` metrics.

:mod:`aigve.vbench.suite` holds the dimension names, VBench's normalisation constants and the Quality /
Semantic / Total scores; :mod:`aigve.vbench.prompts` the standard prompt suite (``VBench_full_info.json``).
The dimension metrics themselves are catalogue metrics (:mod:`aigve.metrics.vbench` and others).
"""

from aigve.vbench.suite import (
    DIMENSIONS,
    QUALITY,
    SEMANTIC,
    SuiteScores,
    dimension_values,
    results_suite_scores,
    suite_scores,
)

__all__ = [
    "DIMENSIONS",
    "QUALITY",
    "SEMANTIC",
    "SuiteScores",
    "dimension_values",
    "results_suite_scores",
    "suite_scores",
]
