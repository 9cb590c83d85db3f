-- The projection: documents materialized into tables so apps can query them with SQL.
-- Everything here is derived data: dropping it and projecting again gives the same rows.
--
-- Conventions:
-- * Every entity row is keyed by the URL of the document it comes from (`doc_url`) and is
--   owned by that document alone: projecting a document replaces exactly its rows.
-- * References to other documents (`*_url`) are plain TEXT, never foreign keys: documents
--   sync in any order, so a submission may arrive before its assignment.
-- * Times are ISO-8601 UTC strings, so they sort as text; booleans are INTEGER 0/1.
-- * STRICT tables reject a value of the wrong type instead of silently storing it, so a
--   projector bug shows up as an error rather than as rows that differ between peers.

-- migrate:up

CREATE TABLE courses (
  doc_url TEXT PRIMARY KEY NOT NULL,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  name TEXT NOT NULL,
  course_code TEXT NOT NULL,
  term TEXT,
  start_at TEXT,
  end_at TEXT,
  time_zone TEXT NOT NULL,
  published INTEGER NOT NULL CHECK (published IN (0, 1))
) STRICT;

CREATE TABLE users (
  doc_url TEXT PRIMARY KEY NOT NULL,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  name TEXT NOT NULL,
  sortable_name TEXT NOT NULL,
  email TEXT,
  login_id TEXT,
  avatar_url TEXT
) STRICT;

CREATE TABLE enrollments (
  doc_url TEXT PRIMARY KEY NOT NULL,
  course_url TEXT,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  user_url TEXT,
  role TEXT NOT NULL,
  state TEXT NOT NULL,
  observee_url TEXT
) STRICT;

-- A course's roster, teachers first.
CREATE INDEX enrollments_by_course_role ON enrollments (course_url, role);
-- A user's courses.
CREATE INDEX enrollments_by_user ON enrollments (user_url);

CREATE TABLE modules (
  doc_url TEXT PRIMARY KEY NOT NULL,
  course_url TEXT,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  name TEXT NOT NULL,
  position REAL NOT NULL,
  published INTEGER NOT NULL CHECK (published IN (0, 1))
) STRICT;

CREATE INDEX modules_by_course_position ON modules (course_url, position);

-- One row per entry of a module's item list; `position` is the index in that list.
-- The module's row and its items come from the same document and are written together,
-- so this is the one place where a foreign key holds by construction.
CREATE TABLE module_items (
  module_url TEXT NOT NULL REFERENCES modules (doc_url) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  item_id TEXT NOT NULL,
  type TEXT NOT NULL,
  title TEXT NOT NULL,
  target_url TEXT,
  url TEXT,
  indent REAL NOT NULL,
  PRIMARY KEY (module_url, position)
) STRICT, WITHOUT ROWID;

-- Where a document is linked from ("which modules contain this assignment").
CREATE INDEX module_items_by_target ON module_items (target_url);

CREATE TABLE assignments (
  doc_url TEXT PRIMARY KEY NOT NULL,
  course_url TEXT,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  title TEXT NOT NULL,
  description TEXT NOT NULL,
  due_at TEXT,
  unlock_at TEXT,
  lock_at TEXT,
  points_possible REAL,
  published INTEGER NOT NULL CHECK (published IN (0, 1)),
  position REAL NOT NULL,
  grading_type TEXT NOT NULL
) STRICT;

CREATE INDEX assignments_by_course_due ON assignments (course_url, due_at);

CREATE TABLE submissions (
  doc_url TEXT PRIMARY KEY NOT NULL,
  course_url TEXT,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  assignment_url TEXT,
  student_url TEXT,
  body TEXT NOT NULL,
  url TEXT,
  attempt REAL NOT NULL,
  submitted_at TEXT,
  state TEXT NOT NULL
) STRICT;

CREATE INDEX submissions_by_assignment ON submissions (assignment_url);
CREATE INDEX submissions_by_student ON submissions (student_url);

CREATE TABLE grades (
  doc_url TEXT PRIMARY KEY NOT NULL,
  course_url TEXT,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  submission_url TEXT,
  assignment_url TEXT,
  student_url TEXT,
  score REAL,
  grade TEXT,
  graded_at TEXT,
  grader_url TEXT,
  -- JSON array of { author, body, createdAt, id }, keys sorted.
  comments TEXT NOT NULL
) STRICT;

CREATE INDEX grades_by_submission ON grades (submission_url);
CREATE INDEX grades_by_student ON grades (student_url);

CREATE TABLE discussion_topics (
  doc_url TEXT PRIMARY KEY NOT NULL,
  course_url TEXT,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  title TEXT NOT NULL,
  message TEXT NOT NULL,
  author_url TEXT,
  published INTEGER NOT NULL CHECK (published IN (0, 1)),
  locked INTEGER NOT NULL CHECK (locked IN (0, 1)),
  announcement INTEGER NOT NULL CHECK (announcement IN (0, 1)),
  posted_at TEXT,
  position REAL NOT NULL
) STRICT;

CREATE INDEX discussion_topics_by_course_position ON discussion_topics (course_url, position);

CREATE TABLE posts (
  doc_url TEXT PRIMARY KEY NOT NULL,
  course_url TEXT,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  topic_url TEXT,
  parent_url TEXT,
  author_url TEXT,
  message TEXT NOT NULL,
  edited_at TEXT,
  deleted INTEGER NOT NULL CHECK (deleted IN (0, 1))
) STRICT;

-- A topic's thread in order.
CREATE INDEX posts_by_topic_created ON posts (topic_url, created_at);

CREATE TABLE pages (
  doc_url TEXT PRIMARY KEY NOT NULL,
  course_url TEXT,
  canvas_id TEXT,
  discourse_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  slug TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  published INTEGER NOT NULL CHECK (published IN (0, 1)),
  front_page INTEGER NOT NULL CHECK (front_page IN (0, 1))
) STRICT;

-- Not UNIQUE: two peers may create a page with the same slug while offline; both documents
-- exist and both rows must be projectable.
CREATE INDEX pages_by_course_slug ON pages (course_url, slug);

-- What the projection last did with each document: lets it resume after a restart and
-- skip documents whose heads have not moved. `projected_at` is the only column that
-- differs between peers holding the same documents.
CREATE TABLE doc_heads (
  doc_url TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL,
  heads TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('projected', 'deleted', 'invalid')),
  projected_at TEXT NOT NULL
) STRICT;

-- Concurrent values Automerge holds for a top-level field, so apps can show and resolve them.
CREATE TABLE conflicts (
  doc_url TEXT NOT NULL,
  field TEXT NOT NULL,
  "values" TEXT NOT NULL,
  PRIMARY KEY (doc_url, field)
) STRICT, WITHOUT ROWID;

-- Full-text search. `search_rows` holds the rows (keyed by document); `search` is an
-- external-content FTS5 index over it, kept in step by the triggers below. Writing through
-- the content table lets a document's row be found by its indexed `doc_url`, where deleting
-- from a plain FTS5 table by an UNINDEXED column would scan every row. The integer id is a
-- local storage detail: it depends on insertion order and is never compared between peers.
-- (Not named `search_content`: FTS5 treats `<table>_content` as its own shadow table, which
-- SQLite's defensive mode makes read-only.)
CREATE TABLE search_rows (
  id INTEGER PRIMARY KEY,
  doc_url TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  course_url TEXT,
  title TEXT NOT NULL,
  body TEXT NOT NULL
) STRICT;

-- remove_diacritics 2: "resume" finds "résumé" (option 1 leaves some letters that carry
-- more than one diacritic unfolded).
CREATE VIRTUAL TABLE search USING fts5 (
  doc_url UNINDEXED,
  kind UNINDEXED,
  course_url UNINDEXED,
  title,
  body,
  content = 'search_rows',
  content_rowid = 'id',
  tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER search_rows_after_insert AFTER INSERT ON search_rows BEGIN
  INSERT INTO search (rowid, doc_url, kind, course_url, title, body)
  VALUES (new.id, new.doc_url, new.kind, new.course_url, new.title, new.body);
END;

CREATE TRIGGER search_rows_after_delete AFTER DELETE ON search_rows BEGIN
  INSERT INTO search (search, rowid, doc_url, kind, course_url, title, body)
  VALUES ('delete', old.id, old.doc_url, old.kind, old.course_url, old.title, old.body);
END;

CREATE TRIGGER search_rows_after_update AFTER UPDATE ON search_rows BEGIN
  INSERT INTO search (search, rowid, doc_url, kind, course_url, title, body)
  VALUES ('delete', old.id, old.doc_url, old.kind, old.course_url, old.title, old.body);
  INSERT INTO search (rowid, doc_url, kind, course_url, title, body)
  VALUES (new.id, new.doc_url, new.kind, new.course_url, new.title, new.body);
END;

-- migrate:down

DROP TRIGGER search_rows_after_update;
DROP TRIGGER search_rows_after_delete;
DROP TRIGGER search_rows_after_insert;
DROP TABLE search;
DROP TABLE search_rows;
DROP TABLE conflicts;
DROP TABLE doc_heads;
DROP TABLE pages;
DROP TABLE posts;
DROP TABLE discussion_topics;
DROP TABLE grades;
DROP TABLE submissions;
DROP TABLE assignments;
DROP TABLE module_items;
DROP TABLE modules;
DROP TABLE enrollments;
DROP TABLE users;
DROP TABLE courses;
