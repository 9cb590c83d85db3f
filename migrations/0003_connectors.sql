-- What the Canvas and Discourse connectors keep between runs. None of it is projected from
-- documents, so a rebuild of the projection leaves it alone: it is the node's own record of
-- what it sent where, which survives restarts.
--
-- remote_ids: which remote object a local document is, per system (an assignment's Canvas id,
--   a course's Discourse category, a discussion's Discourse topic, a post's Discourse post).
-- outbox: local changes waiting to reach a system, one row per (document, system) at most
--   while pending; `idempotency_key` marks what was sent, so a retry after a crash finds the
--   object it may already have created instead of creating a second.
-- remote_sync: per document and system, whether it is pending, in sync or in conflict, and
--   what was last seen on each side.
-- remote_conflicts: every conflict found and how it was resolved, for `ordo conflicts`.
-- conflict_strategies: the strategy per course and kind of entity.

-- migrate:up

CREATE TABLE remote_ids (
  system TEXT NOT NULL CHECK (system IN ('canvas', 'discourse')),
  remote_type TEXT NOT NULL,
  remote_id TEXT NOT NULL,
  doc_url TEXT NOT NULL,
  PRIMARY KEY (system, remote_type, remote_id)
) STRICT;
CREATE UNIQUE INDEX remote_ids_by_doc ON remote_ids (doc_url, system, remote_type);

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  system TEXT NOT NULL CHECK (system IN ('canvas', 'discourse')),
  doc_url TEXT NOT NULL,
  operation TEXT NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
  status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'conflict')),
  idempotency_key TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  not_before TEXT,
  remote_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX outbox_due ON outbox (system, status, not_before, id);
CREATE UNIQUE INDEX outbox_one_open_per_doc ON outbox (system, doc_url) WHERE status IN ('pending', 'sending');

CREATE TABLE remote_sync (
  doc_url TEXT NOT NULL,
  system TEXT NOT NULL CHECK (system IN ('canvas', 'discourse')),
  state TEXT NOT NULL CHECK (state IN ('pending', 'in_sync', 'conflict')),
  local_heads TEXT,
  remote_version TEXT,
  synced_at TEXT,
  PRIMARY KEY (doc_url, system)
) STRICT;

CREATE TABLE remote_conflicts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  doc_url TEXT NOT NULL,
  system TEXT NOT NULL CHECK (system IN ('canvas', 'discourse')),
  field TEXT NOT NULL,
  local_value TEXT,
  remote_value TEXT,
  strategy TEXT NOT NULL,
  resolution TEXT NOT NULL,
  detected_at TEXT NOT NULL
) STRICT;
CREATE INDEX remote_conflicts_by_doc ON remote_conflicts (doc_url, detected_at);

CREATE TABLE conflict_strategies (
  course_url TEXT NOT NULL,
  kind TEXT NOT NULL,
  strategy TEXT NOT NULL CHECK (strategy IN ('prefer_canvas', 'prefer_discourse', 'prefer_recent', 'merge_prefer_canvas', 'merge_prefer_discourse')),
  PRIMARY KEY (course_url, kind)
) STRICT;

-- migrate:down

DROP TABLE conflict_strategies;
DROP TABLE remote_conflicts;
DROP TABLE remote_sync;
DROP TABLE outbox;
DROP TABLE remote_ids;
