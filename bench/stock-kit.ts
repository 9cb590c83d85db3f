import * as A from "@automerge/automerge";
import type { Repo } from "@automerge/automerge-repo";

/** What the stock children share: ways around the HAZARDS of automerge-repo 2.5.6. */

/** `repo.shutdown()` can throw in 2.5.6 (HAZARDS); the process exits right after, so a failure changes nothing. */
export async function shutdown(repo: Repo): Promise<void> {
  await repo.shutdown().catch(() => undefined);
}

/**
 * The HAZARDS workaround: grow Automerge's wasm memory once instead of in thousands of small
 * steps that each cost Node a full GC. Loading bytes that are no document copies them into
 * wasm memory (growing it) and fails at once on the header.
 */
export function preGrow(mb: number): void {
  if (mb <= 0) return;
  try {
    A.load(new Uint8Array(mb * 1024 * 1024));
  } catch {
    // Expected: the bytes only serve to grow the memory.
  }
}
