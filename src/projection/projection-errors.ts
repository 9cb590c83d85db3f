import { OrdoError } from "../util/errors.js";

/** Why a migration file could not be read: a missing marker, an unreadable folder. */
export class MigrationFileError extends OrdoError {
  constructor(
    message: string,
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super("ORDO_MIGRATION_FILE", message, options);
    this.name = "MigrationFileError";
  }
}

/**
 * A migration that failed. Each migration runs inside a savepoint, so the database is left
 * as it was before that migration; `cause` holds the SQL error.
 */
export class MigrationError extends OrdoError {
  constructor(
    message: string,
    /** The migration that failed, when the migrator got as far as running one. */
    readonly migrationName: string | null,
    readonly direction: "Up" | "Down",
    options?: { cause?: unknown },
  ) {
    super("ORDO_MIGRATION", message, options);
    this.name = "MigrationError";
  }
}

/** A document the projection cannot handle, e.g. a kind this version does not know. */
export class ProjectionError extends OrdoError {
  constructor(
    message: string,
    readonly docUrl: string | null,
    options?: { cause?: unknown },
  ) {
    super("ORDO_PROJECTION", message, options);
    this.name = "ProjectionError";
  }
}
