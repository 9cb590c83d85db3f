import { join } from "node:path";
import { DocStore } from "../crdt/doc-store.js";
import { openSqliteStorage } from "../crdt/sqlite-storage-adapter.js";
import { makeTempDir } from "./temp-dir.js";

/** A document store over SQLite in a fresh directory, for tests; `close` removes it all. */
export function openTempStore(): { store: DocStore; close: () => Promise<void> } {
  const temp = makeTempDir("ordo-store-");
  const storage = openSqliteStorage({ path: join(temp.dir, "store.sqlite") });
  const store = new DocStore({ storage });
  return {
    store,
    close: async () => {
      await store.close();
      await storage.close();
      temp.remove();
    },
  };
}
