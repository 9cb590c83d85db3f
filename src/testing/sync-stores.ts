import type { DocStore } from "../crdt/doc-store.js";
import { docUrlOf } from "../crdt/ids.js";

/**
 * Brings two stores to the same state by exchanging every document both ways, as two
 * peers would after a reconnection. Used to test merges without a network.
 */
export async function syncStores(a: DocStore, b: DocStore): Promise<void> {
  await copyAll(a, b);
  await copyAll(b, a);
}

async function copyAll(from: DocStore, to: DocStore): Promise<void> {
  for (const record of await from.records({ includeDeleted: true })) {
    const url = docUrlOf(record.id);
    const data = await from.export(url);
    if (data) await to.receive(url, data);
  }
  await to.flush();
}
