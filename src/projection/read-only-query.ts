import { existsSync } from "node:fs";
import BetterSqlite3 from "better-sqlite3";
import { OrdoError } from "../util/errors.js";

/** Why a query was refused or failed; `code` tells programs which. */
export class QueryError extends OrdoError {
  declare readonly code: "ORDO_QUERY_WRITES" | "ORDO_QUERY_INVALID" | "ORDO_QUERY_NO_DATABASE";
  constructor(code: QueryError["code"], message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "QueryError";
  }
}

export interface QueryResult {
  columns: string[];
  rows: Array<Record<string, unknown>>;
}

/**
 * Runs one SQL statement against the projection through a read-only connection. A
 * statement that would write is refused before it runs (SQLite tells us whether a prepared
 * statement is read-only), and the connection itself cannot write either.
 */
export function runReadOnlyQuery(path: string, statement: string): QueryResult {
  if (!existsSync(path)) throw new QueryError("ORDO_QUERY_NO_DATABASE", `no projection database at ${path}`);
  const sqlite = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    let prepared;
    try {
      prepared = sqlite.prepare(statement);
    } catch (cause) {
      throw new QueryError("ORDO_QUERY_INVALID", (cause as Error).message, { cause });
    }
    if (!prepared.readonly || !prepared.reader) {
      throw new QueryError("ORDO_QUERY_WRITES", "only statements that read are allowed (SELECT, WITH ... SELECT, read-only PRAGMA)");
    }
    try {
      const rows = prepared.all() as Array<Record<string, unknown>>;
      return { columns: prepared.columns().map((c) => c.name), rows };
    } catch (cause) {
      throw new QueryError("ORDO_QUERY_INVALID", (cause as Error).message, { cause });
    }
  } finally {
    sqlite.close();
  }
}
