// The projection layer's public surface: documents in, SQL tables out.
export type * from "./database.js";
export { OWNED_TABLES } from "./database.js";
export {
  DEFAULT_BUSY_TIMEOUT_MS,
  DEFAULT_CACHE_SIZE_KIB,
  DEFAULT_MIGRATIONS_FOLDER,
  DEFAULT_STATEMENT_CACHE_SIZE,
  openProjectionDb,
  type MigrationStatus,
  type OpenProjectionDbOptions,
  type ProjectionDb,
} from "./projection-db.js";
export { MigrationError, MigrationFileError, ProjectionError } from "./projection-errors.js";
export {
  createProjectionRunner,
  DEFAULT_BATCH_SIZE,
  DEFAULT_MAX_PARAMETERS,
  type ApplyResult,
  type CatchUpOptions,
  type CatchUpProgress,
  type CatchUpResult,
  type DocMark,
  type ListedDoc,
  type ProjectionChange,
  type ProjectionRunner,
  type ProjectionRunnerOptions,
  type ProjectionSource,
} from "./projection-runner.js";
export {
  assignmentsDue,
  courseRoster,
  DEFAULT_MAX_SEARCH_TERMS,
  DEFAULT_SEARCH_LIMIT,
  searchText,
  studentSubmissions,
  topicThread,
  type RosterEntry,
  type SearchHit,
  type SearchOptions,
  type StudentSubmission,
  type ThreadPost,
  type TimeBound,
} from "./queries.js";
export { isProjectedKind, projectSnapshot, type RowSet } from "./snapshot-projector.js";
export { SqlFileMigrationProvider } from "./sql-file-migration-provider.js";
export { dumpTables } from "./table-dump.js";
