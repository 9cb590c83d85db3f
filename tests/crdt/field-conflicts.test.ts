import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { fieldConflicts, fieldConflictsAfter, noteTouchedFields } from "../../src/crdt/schema/document.js";
import { createRandom } from "../../src/util/random.js";

const KEYS = ["title", "body", "points", "tags", "meta"];

interface Replica {
  doc: A.Doc<Record<string, unknown>>;
  /** Conflicts kept up to date incrementally, as the store does from a document's stored view. */
  conflicts: Record<string, unknown[]>;
}

/** Applies a peer's changes to a replica, its conflicts following from the patches alone. */
function step(replica: Replica, apply: (doc: A.Doc<Record<string, unknown>>, patchCallback: A.PatchCallback<Record<string, unknown>>) => A.Doc<Record<string, unknown>>): void {
  const touched = new Set<string>();
  replica.doc = apply(replica.doc, (patches) => noteTouchedFields(patches, touched));
  replica.conflicts = fieldConflictsAfter(replica.doc, replica.conflicts, touched);
}

function edit(next: () => number, doc: Record<string, unknown>): void {
  const key = KEYS[Math.floor(next() * KEYS.length)]!;
  const roll = next();
  if (roll < 0.15) delete doc[key];
  else if (roll < 0.35) doc[key] = Math.floor(next() * 100);
  else if (roll < 0.55) doc[key] = new A.ImmutableString(`v${Math.floor(next() * 10)}`);
  else if (roll < 0.7) doc[key] = { inner: Math.floor(next() * 5) };
  else if (roll < 0.8) doc[key] = [Math.floor(next() * 5)];
  else if (roll < 0.9 && typeof doc[key] === "object" && doc[key] !== null && !Array.isArray(doc[key])) (doc[key] as Record<string, unknown>).inner = Math.floor(next() * 5);
  else doc[key] = null;
}

describe("conflicts kept up to date from patches", () => {
  it("always equal probing every field, over random concurrent edits merged in random orders", () => {
    let conflictedSteps = 0;
    for (let seed = 1; seed <= Number(process.env.CONFLICT_SEEDS ?? 60); seed++) {
      const next = createRandom(seed);
      const origin = A.from<Record<string, unknown>>({ title: new A.ImmutableString("t") });
      const replicas: Replica[] = ["aa", "bb", "cc", "dd"].map((actor) => ({ doc: A.clone(origin, { actor }), conflicts: {} }));
      for (let round = 0; round < 60; round++) {
        const target = replicas[Math.floor(next() * replicas.length)]!;
        if (next() < 0.5) {
          // A local change is described by probing every field (its patches omit a write that
          // leaves the value as it was, even when that write ends a conflict).
          target.doc = A.change(target.doc, (d) => edit(next, d));
          target.conflicts = fieldConflicts(target.doc);
        } else {
          const source = replicas[Math.floor(next() * replicas.length)]!;
          if (source === target) continue;
          // Sometimes only the source's last change, which may wait for changes it depends on.
          const roll = next();
          const lastChange = roll < 0.2 ? A.getLastLocalChange(source.doc) : undefined;
          const data = lastChange ?? A.saveSince(source.doc, roll < 0.6 ? A.getHeads(target.doc).filter((h) => A.hasHeads(source.doc, [h])) : []);
          step(target, (doc, patchCallback) => A.loadIncremental(doc, data, { patchCallback }));
        }
        expect(target.conflicts, `seed ${seed}, round ${round}`).toEqual(fieldConflicts(target.doc));
        if (Object.keys(target.conflicts).length > 0) conflictedSteps++;
      }
    }
    // The walk must reach conflicts often, or it proves nothing.
    expect(conflictedSteps).toBeGreaterThan(200);
  });
});
