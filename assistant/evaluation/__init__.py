"""The evaluation: answer a domain's held-out questions with each strategy, score and store every answer,
and rebuild reports from the stored records.

    store.py     runs, records and arena votes in one sqlite file (typed reads of a run's config)
    runner.py    `assistant eval`: evaluate, resume, rescore (through the public Assistant API)
    tasks.py, metrics.py, arithmetic.py, buckets.py   scoring: labels, TAT-QA EM/F1, derivations, error buckets
    summary.py, elo.py, report.py, charts.py          per-strategy figures, Elo, the markdown report and charts
    advise.py    `assistant advise`: the base -> few-shot -> CoT -> RAG -> adapter ladder

Training adapters for a data-size sweep is orchestration (assistant.jobs.sweep), not part of this package.
Tests: `.venv/bin/pytest tests/evaluation -q`.
"""
