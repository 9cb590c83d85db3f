import type { Kysely } from "kysely";
import type { Database } from "./database.js";

const STORE_GENERATION = "store_generation";

/** The store generation the projection was complete at, if it recorded one. */
export async function readCompleteAt(db: Kysely<Database>): Promise<number | undefined> {
  const row = await db.selectFrom("projection_state").select("value").where("key", "=", STORE_GENERATION).executeTakeFirst();
  return row === undefined ? undefined : Number(row.value);
}

/** Records that every document up to this store generation is projected. */
export async function writeCompleteAt(db: Kysely<Database>, generation: number): Promise<void> {
  await db
    .insertInto("projection_state")
    .values({ key: STORE_GENERATION, value: String(generation) })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value: String(generation) }))
    .execute();
}

/** Forgets the marker: the next start catches up in full. Written before any projection work. */
export async function clearCompleteAt(db: Kysely<Database>): Promise<void> {
  await db.deleteFrom("projection_state").where("key", "=", STORE_GENERATION).execute();
}
