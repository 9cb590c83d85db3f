-- What the projection knows about itself between runs. `store_generation` is the document
-- store's write counter at the moment the projection was last complete (a clean shutdown):
-- when it still matches on the next start, nothing changed and no catch-up is needed.
-- Reverting the migration drops the marker, so the next start catches up in full.

-- migrate:up

CREATE TABLE projection_state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- migrate:down

DROP TABLE projection_state;
