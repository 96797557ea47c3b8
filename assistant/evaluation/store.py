"""Evaluation runs as data: one sqlite file under the data home (`runs/evaluations.sqlite`).

A run is a row of `runs` (id, domain, strategies, the full resolved config, the fingerprint of the index
and base model it used, limit, seed, status); every (question, strategy) answer is a row of `records`
(a `Record`); the app's arena votes are rows of `votes`. Reports, Elo tables and the router are rebuilt
from these rows, never from memory.

    store = RunStore.open(config)
    run = store.create_run("medical", ["base", "rag"], config_dict, fingerprint, limit=200, seed=0)
    store.add(Record(run.run_id, "pubmedqa:21645374", "rag", ...))
    store.records(run.run_id)
    run.settings.corpora, run.settings.model           # typed reads of the stored config (EvalSettings)
    run.made_with.model, run.made_with.index           # and of the stored fingerprint (Fingerprint)

The stored config and fingerprint stay plain JSON (`Run.config`, `Run.fingerprint`); `EvalSettings` and
`Fingerprint` are the one place that reads and writes their keys.

sqlite in WAL mode with a busy timeout lets an evaluation and the app's voters write at once; each
write is one short transaction, and the (run, strategy, item) key makes a resumed run skip, never
duplicate, what it already answered.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from assistant.config import Config
from assistant.errors import NotFoundError, unknown

DB_FILE = "evaluations.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    domain TEXT NOT NULL,
    strategies TEXT NOT NULL,
    config TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    item_limit INTEGER,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    strategy TEXT NOT NULL,
    item_id TEXT NOT NULL,
    data TEXT NOT NULL,
    correct INTEGER NOT NULL,
    PRIMARY KEY (run_id, strategy, item_id)
);
CREATE TABLE IF NOT EXISTS votes (
    vote_id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    domain TEXT NOT NULL,
    question TEXT NOT NULL,
    strategy_a TEXT NOT NULL,
    strategy_b TEXT NOT NULL,
    vote TEXT NOT NULL,
    data TEXT NOT NULL
);
"""

VOTES = ("A", "B", "tie", "both_bad")


@dataclass
class Record:
    """One question answered by one strategy in one run, scored."""

    run_id: str
    item_id: str
    strategy: str
    corpus: str
    answer_type: str  # the QA item's type: label, span, multi-span, arithmetic, count, free
    question: str
    gold: str
    answer: str = ""  # the model's text
    parsed: str | None = None  # the generated answer parsed (a label, a number, a span); None: unparseable
    scored: str | None = None  # closed labels: the option with the highest log-likelihood
    correct: bool = False  # the primary verdict: option scoring for labels, else the parsed answer
    em: float | None = None
    f1: float | None = None
    gold_ids: list[str] = field(default_factory=list)
    retrieved_ids: list[str] = field(default_factory=list)  # RAG strategies: ranked document ids
    prompt_tokens: int = 0
    output_tokens: int = 0
    latency: float = 0.0  # seconds for this strategy on this question (retrieval + generation + scoring)
    finish_reason: str = ""  # "stop" or "length"
    bucket: str = ""  # for wrong answers: why (see evaluation.buckets)
    error: str = ""  # a strategy that failed on this question: the message (counted wrong, never a crash)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class EvalSettings:
    """What a run's stored config says about the evaluation: the corpora asked for (empty: all of the
    domain's), how many questions were sampled, and the generation model the config named."""

    corpora: tuple[str, ...] = ()
    items: int | None = None
    model: str | None = None

    KEY = "_eval"  # the section `assistant eval` adds to the resolved config it stores

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EvalSettings:
        section = _mapping(config.get(cls.KEY))
        items = section.get("items")
        model = _mapping(config.get("generation")).get("model")
        return cls(tuple(str(c) for c in section.get("corpora") or ()), int(items) if items is not None else None,
                   None if model is None else str(model))

    def section(self) -> dict[str, Any]:
        """The "_eval" section stored with the run's config (the model is the config's own key)."""
        return {"corpora": list(self.corpora), "items": self.items}


@dataclass(frozen=True)
class IndexStamp:
    """The index a run's RAG strategies searched, as it was then."""

    name: str | None = None
    collection: str | None = None
    counts: Mapping[str, Any] = field(default_factory=dict)
    embedding: str | None = None  # the embedding model
    updated_at: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexStamp:
        return cls(data.get("name"), data.get("collection"), _mapping(data.get("counts")), data.get("embedding"),
                   data.get("updated_at"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "collection": self.collection, "counts": dict(self.counts),
                "embedding": self.embedding, "updated_at": self.updated_at}


def _stable(engine: Mapping[str, Any]) -> dict[str, Any]:
    """An engine identity without what may change between two sessions of the same engine: threads,
    library versions, measured rates (nested engines too)."""
    volatile = {"threads", "llama_cpp", "rates"}
    return {k: _stable(v) if isinstance(v, Mapping) else v for k, v in engine.items() if k not in volatile}


@dataclass(frozen=True)
class Fingerprint:
    """What a run's records depend on: the base model, the engine that ran it (backend, dtype or
    quantization, see Generator.identity), the machine and (RAG strategies) the index."""

    model: str | None = None
    machine: str | None = None
    index: IndexStamp | None = None
    engine: dict[str, Any] | None = None  # None: a run recorded before engines were (transformers fp32)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        index, engine = data.get("index"), data.get("engine")
        return cls(data.get("model"), data.get("machine"),
                   IndexStamp.from_dict(index) if isinstance(index, Mapping) else None,
                   dict(engine) if isinstance(engine, Mapping) else None)

    @property
    def backend(self) -> str:
        return str((self.engine or {}).get("backend", "transformers"))

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON: "index" only when a RAG strategy searched one."""
        out: dict[str, Any] = {"model": self.model, "machine": self.machine}
        if self.engine is not None:
            out["engine"] = self.engine
        if self.index is not None:
            out["index"] = self.index.to_dict()
        return out

    def engine_differs(self, engine: Mapping[str, Any]) -> str | None:
        """How `engine` differs from the one these records were made with ("backend llamacpp, not
        transformers"), None when it is the same (threads and library versions aside)."""
        before = {"answer_mode": "generate"} | _stable(self.engine or {"backend": "transformers"})  # older: generated
        now = {k: v for k, v in _stable(engine).items() if k in before}
        diffs = [f"{k} {now[k]}, not {before[k]}" for k in now if now[k] != before[k]]
        return "; ".join(diffs) or None


@dataclass(frozen=True)
class Run:
    run_id: str
    created: float
    domain: str
    strategies: list[str]
    config: dict[str, Any]
    fingerprint: dict[str, Any]
    limit: int | None
    seed: int
    status: str  # running, done
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. the data-size sweep's points

    @property
    def settings(self) -> EvalSettings:
        return EvalSettings.from_config(self.config)

    @property
    def made_with(self) -> Fingerprint:
        return Fingerprint.from_dict(self.fingerprint)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created)),
            "domain": self.domain,
            "strategies": self.strategies,
            "limit": self.limit,
            "seed": self.seed,
            "status": self.status,
        }


@dataclass(frozen=True)
class Vote:
    created: float
    domain: str
    question: str
    strategy_a: str
    strategy_b: str
    vote: str  # A, B, tie, both_bad
    data: dict[str, Any] = field(default_factory=dict)


def new_run_id(domain: str) -> str:
    """Sortable and readable: the domain, the UTC time, 4 random hex digits."""
    return f"{domain}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


class RunStore:
    """The sqlite file of runs, records and votes. Thread-safe; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(_SCHEMA)  # idempotent; executescript manages its own transaction

    @classmethod
    def open(cls, config: Config) -> RunStore:
        return cls(config.runs_dir / DB_FILE)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ---------------------------------------------------------------- runs
    def create_run(
        self,
        domain: str,
        strategies: Sequence[str],
        config: dict[str, Any],
        fingerprint: Fingerprint | dict[str, Any],
        *,
        limit: int | None,
        seed: int,
        run_id: str | None = None,
        note: str = "",
    ) -> Run:
        if isinstance(fingerprint, Fingerprint):
            fingerprint = fingerprint.to_dict()
        run = Run(run_id or new_run_id(domain), time.time(), domain, list(strategies), config, fingerprint, limit,
                  seed, "running", note)
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
                (run.run_id, run.created, domain, json.dumps(run.strategies), json.dumps(config, default=str),
                 json.dumps(fingerprint, default=str), limit, seed, run.status, note),
            )
        return run

    def set_strategies(self, run_id: str, strategies: Sequence[str]) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET strategies = ?, status = 'running' WHERE run_id = ?",
                       (json.dumps(list(strategies)), run_id))

    def update_meta(self, run_id: str, **items: Any) -> None:
        with self._tx() as db:
            (raw,) = db.execute("SELECT meta FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            meta = json.loads(raw) | items
            db.execute("UPDATE runs SET meta = ? WHERE run_id = ?", (json.dumps(meta, default=str), run_id))

    def finish_run(self, run_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET status = 'done' WHERE run_id = ?", (run_id,))

    @staticmethod
    def _run(row: tuple[Any, ...]) -> Run:
        run_id, created, domain, strategies, config, fingerprint, limit, seed, status, note, meta = row
        return Run(run_id, created, domain, json.loads(strategies), json.loads(config), json.loads(fingerprint),
                   limit, seed, status, note, json.loads(meta))

    def runs(self, domain: str | None = None) -> list[Run]:
        """Runs, newest first."""
        sql = "SELECT * FROM runs" + (" WHERE domain = ?" if domain else "") + " ORDER BY created DESC"
        return [self._run(r) for r in self._db().execute(sql, (domain,) if domain else ())]

    def get_run(self, run_id: str) -> Run:
        row = self._db().execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r.run_id for r in self.runs()][:10]
            if not known:
                raise NotFoundError(f"unknown run '{run_id}': there are no evaluation runs yet (`assistant eval`)")
            raise unknown("run", run_id, known)
        return self._run(row)

    def latest_run(self, domain: str | None = None) -> Run | None:
        found = self.runs(domain)
        return found[0] if found else None

    def delete_run(self, run_id: str) -> None:
        self.get_run(run_id)
        with self._tx() as db:
            db.execute("DELETE FROM records WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    # ---------------------------------------------------------------- records
    def add(self, record: Record) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
                (record.run_id, record.strategy, record.item_id, json.dumps(record.to_dict(), default=str),
                 int(record.correct)),
            )

    def done(self, run_id: str) -> set[tuple[str, str]]:
        """(strategy, item_id) pairs already answered in `run_id`: a resumed run skips them."""
        rows = self._db().execute("SELECT strategy, item_id FROM records WHERE run_id = ?", (run_id,))
        return {(s, i) for s, i in rows}

    def records(self, run_id: str, strategy: str | None = None) -> list[Record]:
        sql = "SELECT data FROM records WHERE run_id = ?" + (" AND strategy = ?" if strategy else "")
        args = (run_id, strategy) if strategy else (run_id,)
        return [Record.from_dict(json.loads(d)) for (d,) in self._db().execute(sql + " ORDER BY rowid", args)]

    # ---------------------------------------------------------------- votes
    def add_vote(self, vote: Vote) -> None:
        if vote.vote not in VOTES:
            raise unknown("vote", vote.vote, list(VOTES))
        with self._tx() as db:
            db.execute(
                "INSERT INTO votes (created, domain, question, strategy_a, strategy_b, vote, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (vote.created, vote.domain, vote.question, vote.strategy_a, vote.strategy_b, vote.vote,
                 json.dumps(vote.data, default=str)),
            )

    def votes(self, domain: str | None = None) -> list[Vote]:
        sql = "SELECT created, domain, question, strategy_a, strategy_b, vote, data FROM votes"
        sql += (" WHERE domain = ?" if domain else "") + " ORDER BY vote_id"
        rows = self._db().execute(sql, (domain,) if domain else ())
        return [Vote(c, d, q, a, b, v, json.loads(x)) for c, d, q, a, b, v, x in rows]


__all__ = ["DB_FILE", "VOTES", "EvalSettings", "Fingerprint", "IndexStamp", "Record", "Run", "RunStore", "Vote",
           "new_run_id"]
