import { deflateRawSync } from "node:zlib";
import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { isWholeAutomergeData } from "../../src/crdt/chunk-frames.js";
import { DocStore } from "../../src/crdt/doc-store.js";
import type { DamagedChunk } from "../../src/crdt/doc-storage.js";
import type { DocumentId } from "../../src/crdt/ids.js";
import { PowerLossStorage } from "../../src/testing/power-loss-storage.js";
import type { Logger } from "../../src/util/logger.js";

/** A random source that answers `script` in order: a crash with exactly the damage a test wants. */
function scripted(...script: number[]): () => number {
  return () => script.shift() ?? 0.5;
}

/** The crash cuts the one unsynced transaction at its first write (the chunk) and garbles one byte of it. */
const GARBLE_FIRST_WRITE = [0.9, 0, 0.9, 0, 0.5, 0.5];

/** Counts the chunks the loader reports it could not read. */
function unreadableCounter(): { logger: Logger; unreadable: () => number } {
  let count = 0;
  const logger: Logger = {
    debug() {},
    info() {},
    error() {},
    warn(obj: object) {
      count += (obj as { chunks?: number }).chunks ?? 0;
    },
  };
  return { logger, unreadable: () => count };
}

/** A course and a page, synced; then a change to the page committed but not synced, and the power goes. */
async function garbledChange(checksums: boolean, onDamage?: (chunk: DamagedChunk) => void) {
  const disk = new PowerLossStorage({ checksums, onDamage });
  const store = new DocStore({ storage: disk, compaction: { quietMs: 60_000, latestMs: 60_000 } });
  const course = await store.create("course", { name: "Biology" });
  const page = await store.create("page", { course: course.url, title: "synced", body: "" }, { durable: true });
  await store.change<"page">(page.url, (draft) => (draft.title = "unsynced"));
  const { storage, report } = disk.crash(scripted(...GARBLE_FIRST_WRITE), "torn-writes");
  await store.close().catch(() => undefined);
  expect(report.garbled).toHaveLength(1);
  return { storage, page: page.url, garbled: report.garbled[0]! };
}

describe("a chunk damaged by a power loss", () => {
  it("is reported and kept, never taken as loaded and compacted away, by storage that checks no checksums", async () => {
    const { storage, page, garbled } = await garbledChange(false);
    const { logger, unreadable } = unreadableCounter();
    const store = new DocStore({ storage, logger });

    // Automerge's loadIncremental takes the garbled chunk without an error; the loader must not.
    expect((await store.snapshot(page, { fromDocument: true }))?.entity).toMatchObject({ title: "synced" });
    expect(unreadable()).toBe(1);
    for (let i = 0; i < 8; i++) await store.change<"page">(page, (draft) => (draft.title = `after ${i}`));
    await store.close();

    expect(storage.storedKeys([garbled[0] as DocumentId]).map((key) => key.join("/"))).toContain(garbled.join("/"));
    const reopened = new DocStore({ storage });
    expect(await reopened.find<"page">(page)).toMatchObject({ title: "after 7" });
    await reopened.close();
  });

  it("is set aside and reported by storage that checks checksums, and the document keeps every other change", async () => {
    const reported: DamagedChunk[] = [];
    const { storage, page, garbled } = await garbledChange(true, (chunk) => reported.push(chunk));
    const store = new DocStore({ storage });

    expect((await store.snapshot(page, { fromDocument: true }))?.entity).toMatchObject({ title: "synced" });
    expect(reported.map((chunk) => [chunk.key.join("/"), chunk.reason])).toEqual([[garbled.join("/"), "checksum"]]);
    expect(await storage.damagedChunks()).toHaveLength(1);
    await store.close();
  });
});

describe("isWholeAutomergeData", () => {
  const doc = A.change(A.from<Record<string, unknown>>({ title: "a" }), (d) => (d.body = "x".repeat(600)));
  const saved = A.save(doc);
  const changes = A.saveSince(doc, []);

  it("accepts documents, changes and compressed changes as Automerge writes them", () => {
    expect(isWholeAutomergeData(saved)).toBe(true);
    expect(isWholeAutomergeData(changes)).toBe(true);
    expect(isWholeAutomergeData(compressed(A.getAllChanges(doc)[1]!))).toBe(true);
  });

  it("refuses empty, torn and garbled bytes, and bytes after the last chunk", () => {
    expect(isWholeAutomergeData(new Uint8Array())).toBe(false);
    for (const cut of [1, 8, 12, saved.byteLength - 1]) expect(isWholeAutomergeData(saved.slice(0, cut))).toBe(false);
    for (let at = 0; at < changes.byteLength; at += 5) {
      const garbled = changes.slice();
      garbled[at] = garbled[at]! ^ 0x40;
      expect(isWholeAutomergeData(garbled), `byte ${at} garbled`).toBe(false);
    }
    expect(isWholeAutomergeData(Uint8Array.from([...saved, 0]))).toBe(false);
    const change = compressed(A.getAllChanges(doc)[1]!);
    change[change.byteLength - 2] = change[change.byteLength - 2]! ^ 1;
    expect(isWholeAutomergeData(change)).toBe(false);
  });
});

/** A change chunk in Automerge's compressed form (type 2: the body deflated, the checksum of the original). */
function compressed(change: Uint8Array): Uint8Array {
  let length = 0;
  let at = 9;
  for (let shift = 0; ; shift += 7) {
    const byte = change[at++]!;
    length += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) break;
  }
  const body = deflateRawSync(change.subarray(at, at + length));
  const uleb: number[] = [];
  for (let rest = body.byteLength; ; ) {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    uleb.push(rest > 0 ? low | 0x80 : low);
    if (rest === 0) break;
  }
  return Uint8Array.from([...change.subarray(0, 8), 2, ...uleb, ...body]);
}
