"""The evaluation harness: pure metrics (label parsing, accuracy, macro-F1, the official TAT-QA EM/F1,
bootstrap confidence intervals, retrieval recall and reciprocal rank, latency percentiles), a safe
evaluator for model-written arithmetic derivations, and Elo ratings of strategies from pairwise games;
evaluation runs and reports that drive real strategies build on these modules later.
"""
