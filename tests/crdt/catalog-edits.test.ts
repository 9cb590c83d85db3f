import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { applyCatalogEdits, catalogEditsChangeAnything, initialCatalog, type CatalogEdit } from "../../src/crdt/catalog.js";
import { documentIdOf, newDocUrl } from "../../src/crdt/ids.js";

describe("catalog edits", () => {
  const course = newDocUrl();
  const listed = documentIdOf(newDocUrl());
  const other = documentIdOf(newDocUrl());
  const partition = A.change(A.from(initialCatalog(course, "course")), (d: Record<string, unknown>) => applyCatalogEdits(d, [{ op: "put", id: listed, kind: "page", deleted: false }]));

  it("tells edits that change nothing from edits that change something, in order", () => {
    const cases: Array<[CatalogEdit[], boolean]> = [
      [[{ op: "put", id: listed, kind: "page", deleted: false }], false],
      [[{ op: "drop", id: other }], false],
      [[{ op: "put", id: other, kind: "page", deleted: false }], true],
      [[{ op: "put", id: listed, kind: "page", deleted: true }], true],
      [[{ op: "drop", id: listed }], true],
      // Dropped, then put back: the check must not stop at the put, which alone would be a no-op.
      [[{ op: "drop", id: listed }, { op: "put", id: listed, kind: "page", deleted: false }], true],
    ];
    for (const [edits, changes] of cases) {
      expect(catalogEditsChangeAnything(partition, edits)).toBe(changes);
      const next = A.change(A.clone(partition), (d: Record<string, unknown>) => applyCatalogEdits(d, edits));
      // Applying the edits agrees with the check.
      expect(A.getHeads(next)).toEqual(changes ? expect.not.arrayContaining(A.getHeads(partition)) : A.getHeads(partition));
    }
  });
});
