-- What the connectors need to tell a remote change from a local one, and to take webhooks.
--
-- remote_sync.base: per document and system, the fields as they stood at the last sync, on
--   both sides (JSON `{"local": {...}, "remote": {...}}`). A field that differs from its
--   `local` base changed here; one whose remote value differs from its `remote` base changed
--   there; both is a conflict. Keeping the remote side as the system returned it (Canvas
--   rewrites links, Discourse re-renders) is what stops a mirrored change from echoing.
-- webhook_events: event ids already taken, per system, so a replayed delivery does nothing.
-- entity_sync_status: one row per document a connector knows, with its state per system
--   (pending, in_sync, conflict; NULL where the system does not hold it).

-- migrate:up

ALTER TABLE remote_sync ADD COLUMN base TEXT;

CREATE TABLE webhook_events (
  system TEXT NOT NULL CHECK (system IN ('canvas', 'discourse')),
  event_id TEXT NOT NULL,
  received_at TEXT NOT NULL,
  PRIMARY KEY (system, event_id)
) STRICT;

CREATE VIEW entity_sync_status AS
SELECT
  doc_url,
  MAX(CASE WHEN system = 'canvas' THEN state END) AS canvas,
  MAX(CASE WHEN system = 'discourse' THEN state END) AS discourse
FROM remote_sync
GROUP BY doc_url;

-- migrate:down

DROP VIEW entity_sync_status;
DROP TABLE webhook_events;
ALTER TABLE remote_sync DROP COLUMN base;
