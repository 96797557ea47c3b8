"""The router's core: picks base, few-shot, RAG, an adapter or RAG plus an adapter for each question, and
says why. It is pure (no model, no retrieval, no storage: it imports nothing above config and types), so it
is tested on hand-made signals:

    signals.py      Signals (domain, retrieval confidence, question type, adapters and their scores),
                    question_type(), domain_of(), retrieval_signals(); Signals.to_features() for the learned policy
    policy.py       Decision (strategy, adapter, domain, reason, index_missing); RulePolicy (explainable
                    thresholds, works with no evaluation data)
    learned.py      LearnedPolicy: a scikit-learn classifier trained on evaluation records, a calibrated cost
                    weight; estimators.py (the classifiers), selection.py (cross-validated choice of method),
                    policy_file.py (the pickle + JSON sidecar)
    oracle.py       from scored answers: the correctness table, strategy costs, Adaptive-RAG training labels,
                    oracle / best-single accuracy, the share of the gap closed, a stable train/test split

    from assistant.router.signals import Signals, question_type
    from assistant.router.policy import RulePolicy
    decision = RulePolicy().decide(Signals("medical", 0.62, top_score=0.71, question_type="label",
                                           adapters=("medical-sft",)))
    decision.strategy, decision.reason   # "rag+adapter:medical-sft", "rag: top retrieval score 0.71 ..."

Routing a live question (its signals from the index, the policy in use) is `assistant.routing`, which
`Assistant` calls for strategy "auto"; learning a policy from runs is `assistant.jobs.router`.
Submodules are imported by name; this package imports none of them, so importing it costs nothing.
"""
