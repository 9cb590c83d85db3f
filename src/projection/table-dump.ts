import type { Kysely } from "kysely";
import type { Database } from "./database.js";

/**
 * Every projected table with its primary key (the dump's order). `search` stands for
 * `search_rows`: the FTS table shows the same rows without the local integer id, which
 * depends on insertion order and so legitimately differs between peers.
 */
const DUMPED_TABLES: ReadonlyArray<{ table: keyof Database; key: readonly string[] }> = [
  { table: "courses", key: ["doc_url"] },
  { table: "users", key: ["doc_url"] },
  { table: "enrollments", key: ["doc_url"] },
  { table: "modules", key: ["doc_url"] },
  { table: "module_items", key: ["module_url", "position"] },
  { table: "assignments", key: ["doc_url"] },
  { table: "submissions", key: ["doc_url"] },
  { table: "grades", key: ["doc_url"] },
  { table: "discussion_topics", key: ["doc_url"] },
  { table: "posts", key: ["doc_url"] },
  { table: "pages", key: ["doc_url"] },
  { table: "doc_heads", key: ["doc_url"] },
  { table: "conflicts", key: ["doc_url", "field"] },
  { table: "search", key: ["doc_url"] },
];

/** Columns left out of the dump: the time this node projected a document is its own business. */
const VOLATILE_COLUMNS: Partial<Record<keyof Database, readonly string[]>> = {
  doc_heads: ["projected_at"],
};

/**
 * A canonical text dump of every projected table: one `# table` line per table, then one
 * JSON line per row, rows in primary-key order, keys sorted. Two peers that projected the
 * same document states give byte-identical dumps, whatever order or path (incremental,
 * rebuild) got them there. Only `doc_heads.projected_at` is left out.
 */
export async function dumpTables(db: Kysely<Database>): Promise<string> {
  const lines: string[] = [];
  for (const { table, key } of DUMPED_TABLES) {
    lines.push(`# ${table}`);
    let query = db.selectFrom(table).selectAll();
    for (const column of key) query = query.orderBy(db.dynamic.ref(column));
    const skip = new Set(VOLATILE_COLUMNS[table] ?? []);
    for (const row of (await query.execute()) as Array<Record<string, unknown>>) {
      const canonical: Record<string, unknown> = {};
      for (const column of Object.keys(row).sort()) if (!skip.has(column)) canonical[column] = row[column];
      lines.push(JSON.stringify(canonical));
    }
  }
  return lines.join("\n") + "\n";
}
