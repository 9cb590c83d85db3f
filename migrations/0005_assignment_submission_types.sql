-- How students hand an assignment in: `assignments.submission_types` holds the document's
-- `submissionTypes` as a JSON array of strings (`["online_text_entry","online_upload"]`).
-- Existing rows take what an assignment document that never set the field reads as; the
-- assignments' recorded heads are then forgotten, and with them the marker of a complete
-- projection, so the next start projects every assignment again from its document (one a
-- newer node wrote may already carry the field). Reverting drops the column and nothing else.

-- migrate:up

ALTER TABLE assignments ADD COLUMN submission_types TEXT NOT NULL DEFAULT '["online_text_entry"]';

UPDATE doc_heads SET heads = '' WHERE kind = 'assignment';

DELETE FROM projection_state WHERE key = 'store_generation';

-- migrate:down

ALTER TABLE assignments DROP COLUMN submission_types;
