import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { Repo } from "@automerge/automerge-repo";
import { runStorageAdapterTests } from "@automerge/automerge-repo/helpers/tests/storage-adapter-tests.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DamagedChunk, DocRecord } from "../../src/crdt/doc-storage.js";
import type { DocumentId, DocUrl } from "../../src/crdt/ids.js";
import {
  encodeStorageKey,
  openSqliteStorage,
  StorageError,
  type SqliteStorageOptions,
} from "../../src/crdt/sqlite-storage-adapter.js";

const NOW = "2025-03-01T08:00:00.000Z";
const clock = () => new Date(NOW);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ordo-sqlite-storage-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A store over a real file in a fresh directory, closed and deleted after the test. */
function setup(options: Partial<SqliteStorageOptions> = {}) {
  const file = path.join(tempDir(), "store.db");
  const damage: DamagedChunk[] = [];
  const open = () => {
    const storage = openSqliteStorage({ path: file, clock, onDamage: (chunk) => damage.push(chunk), ...options });
    cleanups.push(() => storage.close());
    return storage;
  };
  return { file, damage, storage: open(), reopen: open };
}

/** A second, independent connection to the file, as another process or a disk fault would touch it. */
function withRaw<T>(file: string, run: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return run(db);
  } finally {
    db.close();
  }
}

const bytes = (...values: number[]) => new Uint8Array(values);
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest();

function record(id: string, overrides: Partial<DocRecord> = {}): DocRecord {
  return {
    id: id as DocumentId,
    kind: "assignment",
    course: "automerge:course1" as DocUrl,
    audience: "course",
    owner: null,
    heads: "h1",
    deleted: false,
    status: "ok",
    problem: null,
    updatedAt: NOW,
    ...overrides,
  };
}

describe("SqliteStorageAdapter: automerge-repo's contract", () => {
  runStorageAdapterTests(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ordo-sqlite-contract-"));
    const adapter = openSqliteStorage({ path: path.join(dir, "store.db") });
    return {
      adapter,
      teardown: async () => {
        await adapter.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }, "SQLite file");
});

describe("SqliteStorageAdapter keys and ranges", () => {
  it("returns a plain Uint8Array copy of exactly the saved bytes, even when given a subarray", async () => {
    const { storage } = setup();
    const backing = bytes(9, 9, 1, 2, 3, 9, 9);
    await storage.save(["doc", "snapshot", "a"], backing.subarray(2, 5));
    const loaded = await storage.load(["doc", "snapshot", "a"]);
    expect(loaded).toStrictEqual(bytes(1, 2, 3));
    expect(Buffer.isBuffer(loaded)).toBe(false);
    expect(loaded?.buffer.byteLength).toBe(3);
  });

  it("matches whole key parts only, with no wildcards and no case folding", async () => {
    const { storage } = setup();
    const keys = [["ab"], ["ab", "x"], ["abc", "x"], ["ab!"], ["ab\u0001"], ["AB", "x"], ["a_", "z"], ["ab", "x", "y"], ["a%", "z"]];
    for (const [i, key] of keys.entries()) await storage.save(key, bytes(i + 1));
    const keysOf = async (prefix: string[]) => (await storage.loadRange(prefix)).map((chunk) => chunk.key);
    expect(await keysOf(["ab"])).toEqual([["ab"], ["ab", "x"], ["ab", "x", "y"]]);
    expect(await keysOf(["ab", "x"])).toEqual([["ab", "x"], ["ab", "x", "y"]]);
    expect(await keysOf(["a_"])).toEqual([["a_", "z"]]);
    expect(await keysOf(["a%"])).toEqual([["a%", "z"]]);
    expect(await keysOf(["AB"])).toEqual([["AB", "x"]]);

    await storage.removeRange(["ab"]);
    expect(await keysOf([])).toEqual([["abc", "x"], ["ab!"], ["ab\u0001"], ["AB", "x"], ["a_", "z"], ["a%", "z"]]);
  });

  it("keeps insertion order for loadRange and an overwritten chunk keeps its place", async () => {
    const { storage } = setup();
    await storage.save(["doc", "incremental", "z"], bytes(1));
    await storage.save(["doc", "incremental", "a"], bytes(2));
    await storage.save(["doc", "incremental", "m"], bytes(3));
    await storage.save(["doc", "incremental", "z"], bytes(4));
    expect(await storage.loadRange(["doc"])).toStrictEqual([
      { key: ["doc", "incremental", "z"], data: bytes(4) },
      { key: ["doc", "incremental", "a"], data: bytes(2) },
      { key: ["doc", "incremental", "m"], data: bytes(3) },
    ]);
  });

  it("treats an empty prefix as every chunk, but leaves the document records alone", async () => {
    const { storage } = setup();
    await storage.save(["a", "x"], bytes(1));
    await storage.save(["b"], bytes(2));
    await storage.commit({ records: [record("d1")] });
    expect(await storage.loadRange([])).toStrictEqual([
      { key: ["a", "x"], data: bytes(1) },
      { key: ["b"], data: bytes(2) },
    ]);
    await storage.removeRange([]);
    expect(await storage.loadRange([])).toStrictEqual([]);
    expect(await storage.record("d1" as DocumentId)).toEqual(record("d1"));
  });

  it("rejects ambiguous keys and empty chunks without storing anything", async () => {
    const { storage } = setup();
    await expect(storage.save([], bytes(1))).rejects.toMatchObject({ code: "ORDO_STORAGE_INVALID_KEY" });
    await expect(storage.save(["a\u001fb"], bytes(1))).rejects.toMatchObject({ code: "ORDO_STORAGE_INVALID_KEY" });
    await expect(storage.loadRange(["a\u001fb"])).rejects.toBeInstanceOf(StorageError);
    // A zero-length chunk would read back as a torn write.
    await expect(storage.save(["a"], new Uint8Array(0))).rejects.toMatchObject({ code: "ORDO_STORAGE_EMPTY_CHUNK" });
    expect(await storage.loadRange([])).toStrictEqual([]);
  });

  it("encodes keys so that no two keys share an encoding", () => {
    expect(encodeStorageKey(["a", "b"])).toBe("a\u001fb");
    expect(encodeStorageKey(["a", ""])).not.toBe(encodeStorageKey(["a"]));
    expect(() => encodeStorageKey([])).toThrow(StorageError);
  });
});

const damageVariants: Array<{ name: string; reason: DamagedChunk["reason"]; corrupt: (data: Buffer) => Buffer }> = [
  { name: "truncated to half", reason: "length", corrupt: (data) => data.subarray(0, data.length >> 1) },
  { name: "emptied", reason: "empty", corrupt: () => Buffer.alloc(0) },
  {
    name: "with one bit flipped",
    reason: "checksum",
    corrupt: (data) => {
      const flipped = Buffer.from(data);
      flipped[3] = (flipped[3] ?? 0) ^ 0x10;
      return flipped;
    },
  },
];

describe.each(damageVariants)("SqliteStorageAdapter with a chunk $name", ({ reason, corrupt }) => {
  const DOC = "3fZ4hD8uKrJx2sVuN1yTq9";
  const chunkKeys = [
    [DOC, "snapshot", "s1"],
    [DOC, "incremental", "i1"],
    [DOC, "incremental", "i2"],
    [DOC, "incremental", "i3"],
  ];
  const payload = (i: number) => new Uint8Array(64).map((_, j) => (i * 31 + j * 7) % 256);
  const damagedKey = chunkKeys[2]!;

  async function setupDamaged() {
    const env = setup();
    for (const [i, key] of chunkKeys.entries()) await env.storage.save(key, payload(i));
    await env.storage.save(["other-doc", "snapshot", "s"], payload(9));
    const corrupted = withRaw(env.file, (db) => {
      const encoded = damagedKey.join("\u001f");
      const row = db.prepare<[string], { data: Buffer }>("SELECT data FROM chunks WHERE key = ?").get(encoded);
      const bad = corrupt(row!.data);
      expect(db.prepare("UPDATE chunks SET data = ? WHERE key = ?").run(bad, encoded).changes).toBe(1);
      return new Uint8Array(bad);
    });
    return { ...env, corrupted };
  }

  async function expectSetAside(env: Awaited<ReturnType<typeof setupDamaged>>) {
    const expected: DamagedChunk = { key: damagedKey, reason, detectedAt: NOW };
    expect(env.damage).toEqual([expected]);
    expect(await env.storage.damagedChunks()).toEqual([expected]);
    const kept = withRaw(env.file, (db) => db.prepare("SELECT key, data, size, checksum, reason, detected_at FROM damaged_chunks").all());
    expect(kept).toEqual([
      {
        key: damagedKey.join("\u001f"),
        data: Buffer.from(env.corrupted),
        size: 64,
        checksum: sha256(payload(2)),
        reason,
        detected_at: NOW,
      },
    ]);
  }

  it("loadRange returns every other chunk of the document intact and sets the damaged one aside", async () => {
    const env = await setupDamaged();
    const expectedChunks = chunkKeys.map((key, i) => ({ key, data: payload(i) })).filter((_, i) => i !== 2);
    expect(await env.storage.loadRange([DOC])).toStrictEqual(expectedChunks);
    await expectSetAside(env);
    expect(await env.storage.load(damagedKey)).toBeUndefined();

    // Reading again neither reports it twice nor changes what the document returns.
    expect(await env.storage.loadRange([DOC])).toStrictEqual(expectedChunks);
    expect(env.damage).toHaveLength(1);
  });

  it("load of the damaged key returns undefined and sets it aside; its neighbours load normally", async () => {
    const env = await setupDamaged();
    expect(await env.storage.load(damagedKey)).toBeUndefined();
    await expectSetAside(env);
    expect(await env.storage.load(chunkKeys[1]!)).toStrictEqual(payload(1));
    expect(await env.storage.load(chunkKeys[3]!)).toStrictEqual(payload(3));
  });

  it("removing the document's range keeps the damaged bytes", async () => {
    const env = await setupDamaged();
    await env.storage.loadRange([DOC]);
    await env.storage.removeRange([DOC]);
    await env.storage.remove(damagedKey);
    expect(await env.storage.loadRange([DOC])).toStrictEqual([]);
    expect(await env.storage.loadRange(["other-doc"])).toHaveLength(1);
    await expectSetAside(env);
  });

  it("stores a fresh chunk saved under the damaged key normally", async () => {
    const env = await setupDamaged();
    await env.storage.load(damagedKey);
    await env.storage.save(damagedKey, payload(7));
    expect(await env.storage.load(damagedKey)).toStrictEqual(payload(7));
    expect(await env.storage.damagedChunks()).toHaveLength(1);
  });
});

describe("SqliteStorageAdapter.commit", () => {
  it("lands chunk saves, chunk removes and record upserts together", async () => {
    const { storage } = setup();
    await storage.save(["d1", "incremental", "old"], bytes(1));
    await storage.commit({
      save: [
        { key: ["d1", "snapshot", "s"], data: bytes(2) },
        { key: ["d2", "snapshot", "s"], data: bytes(3) },
      ],
      remove: [["d1", "incremental", "old"]],
      records: [record("d1"), record("d2", { kind: "quiz" })],
    });
    expect(await storage.loadRange([])).toStrictEqual([
      { key: ["d1", "snapshot", "s"], data: bytes(2) },
      { key: ["d2", "snapshot", "s"], data: bytes(3) },
    ]);
    expect(await storage.records()).toEqual([record("d1"), record("d2", { kind: "quiz" })]);
  });

  it("leaves nothing of a batch behind when it fails midway", async () => {
    const { storage } = setup();
    await storage.save(["d0", "snapshot", "s"], bytes(1));
    await storage.commit({ records: [record("d0", { heads: "before" })] });

    const failing = storage.commit({
      save: [{ key: ["d1", "snapshot", "s"], data: bytes(2) }],
      remove: [["d0", "snapshot", "s"]],
      records: [record("d0", { heads: "after" }), record("d1", { kind: null as unknown as string })],
    });
    await expect(failing).rejects.toMatchObject({
      code: "ORDO_STORAGE_WRITE_FAILED",
      cause: expect.objectContaining({ code: "SQLITE_CONSTRAINT_NOTNULL" }),
    });
    expect(await storage.loadRange([])).toStrictEqual([{ key: ["d0", "snapshot", "s"], data: bytes(1) }]);
    expect(await storage.records()).toEqual([record("d0", { heads: "before" })]);
  });

  it("rejects a batch with an invalid key before writing any of it", async () => {
    const { storage } = setup();
    const failing = storage.commit({
      save: [
        { key: ["d1", "snapshot", "s"], data: bytes(2) },
        { key: ["d1\u001fbad"], data: bytes(3) },
      ],
      records: [record("d1")],
    });
    await expect(failing).rejects.toMatchObject({ code: "ORDO_STORAGE_INVALID_KEY" });
    expect(await storage.loadRange([])).toStrictEqual([]);
    expect(await storage.record("d1" as DocumentId)).toBeUndefined();
  });
});

describe("SqliteStorageAdapter records", () => {
  const course1 = "automerge:course1" as DocUrl;
  const course2 = "automerge:course2" as DocUrl;
  const all = [
    record("d5", { course: course1, kind: "assignment" }),
    record("d1", { course: course1, kind: "quiz" }),
    record("d4", { course: course2, kind: "assignment" }),
    record("d3", { course: course1, kind: "assignment", status: "invalid", problem: "schemaVersion: too new" }),
    record("d2", { course: course1, kind: "assignment", deleted: true }),
    record("c1", { course: null, kind: "catalog", owner: "automerge:owner" as DocUrl }),
  ];
  const ids = (records: DocRecord[]) => records.map((r) => r.id);

  it("filters by course, kind and status, leaves deleted ones out unless asked, and orders by id", async () => {
    const { storage } = setup();
    await storage.commit({ records: all });
    expect(ids(await storage.records())).toEqual(["c1", "d1", "d3", "d4", "d5"]);
    expect(ids(await storage.records({ includeDeleted: true }))).toEqual(["c1", "d1", "d2", "d3", "d4", "d5"]);
    expect(ids(await storage.records({ course: course1 }))).toEqual(["d1", "d3", "d5"]);
    expect(ids(await storage.records({ course: course1, kind: "assignment" }))).toEqual(["d3", "d5"]);
    expect(ids(await storage.records({ course: course1, kind: "assignment", includeDeleted: true }))).toEqual(["d2", "d3", "d5"]);
    expect(ids(await storage.records({ kind: "assignment", status: "ok" }))).toEqual(["d4", "d5"]);
    expect(ids(await storage.records({ status: "invalid" }))).toEqual(["d3"]);
    expect(ids(await storage.records({ kind: "catalog" }))).toEqual(["c1"]);
  });

  it("reads back every field of a record, and an upsert replaces it", async () => {
    const { storage } = setup();
    await storage.commit({ records: all });
    expect(await storage.record("d3" as DocumentId)).toEqual(all[3]);
    expect(await storage.record("d2" as DocumentId)).toEqual(all[4]);
    expect(await storage.record("c1" as DocumentId)).toEqual(all[5]);
    expect(await storage.record("nope" as DocumentId)).toBeUndefined();

    const replaced = record("d3", {
      course: course2,
      heads: "h2,h3",
      status: "ok",
      problem: null,
      deleted: true,
      updatedAt: "2025-03-02T00:00:00.000Z",
    });
    await storage.commit({ records: [replaced] });
    expect(await storage.record("d3" as DocumentId)).toEqual(replaced);
  });
});

describe("SqliteStorageAdapter file", () => {
  it("keeps chunks, records and damaged chunks across a reopen", async () => {
    const env = setup();
    await env.storage.save(["d1", "snapshot", "s"], bytes(1, 2));
    await env.storage.save(["d1", "incremental", "i"], bytes(3, 4));
    await env.storage.commit({ records: [record("d1")] });
    withRaw(env.file, (db) => db.prepare("UPDATE chunks SET data = x'00' WHERE key = ?").run("d1\u001fincremental\u001fi"));
    await env.storage.loadRange(["d1"]);
    await env.storage.close();

    const reopened = env.reopen();
    expect(await reopened.loadRange(["d1"])).toStrictEqual([{ key: ["d1", "snapshot", "s"], data: bytes(1, 2) }]);
    expect(await reopened.record("d1" as DocumentId)).toEqual(record("d1"));
    expect(await reopened.damagedChunks()).toEqual([{ key: ["d1", "incremental", "i"], reason: "length", detectedAt: NOW }]);
  });

  it("is in WAL mode and records its schema version", () => {
    const { file } = setup();
    withRaw(file, (db) => {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.pragma("user_version", { simple: true })).toBe(2);
    });
  });

  it("counts every write in its generation, and nothing else", async () => {
    const env = setup();
    const start = await env.storage.generation();
    await env.storage.commit({ save: [{ key: ["d1", "snapshot", "s"], data: bytes(1) }], records: [record("d1")] });
    await env.storage.save(["d1", "incremental", "i"], bytes(2));
    await env.storage.remove(["d1", "incremental", "i"]);
    await env.storage.removeRange(["d2"]);
    expect(await env.storage.generation()).toBe(start + 4);
    await env.storage.loadRange(["d1"]);
    await env.storage.records();
    await env.storage.sync();
    expect(await env.storage.generation()).toBe(start + 4);
  });

  it("upgrades a file of the first schema, and keeps a record's view out of listings", async () => {
    const env = setup();
    await env.storage.close();
    withRaw(env.file, (db) => {
      db.exec("ALTER TABLE documents DROP COLUMN view");
      db.pragma("user_version = 1");
    });
    const upgraded = env.reopen();
    withRaw(env.file, (db) => expect(db.pragma("user_version", { simple: true })).toBe(2));
    await upgraded.commit({ records: [record("d1", { view: '{"entity":{}}' })] });
    expect((await upgraded.record("d1" as DocumentId))?.view).toBe('{"entity":{}}');
    expect((await upgraded.records())[0]).not.toHaveProperty("view");
  });

  it("refuses a file written by a newer schema, naming the path", () => {
    const env = setup();
    void env.storage.close();
    withRaw(env.file, (db) => db.pragma("user_version = 99"));
    expect(() => env.reopen()).toThrow(
      expect.objectContaining({ code: "ORDO_STORAGE_SCHEMA_TOO_NEW", message: expect.stringContaining(env.file) }),
    );
  });

  it("says which path and why when the directory does not exist", () => {
    const missing = path.join(tempDir(), "no-such-dir", "store.db");
    let error: unknown;
    try {
      openSqliteStorage({ path: missing });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: "ORDO_STORAGE_OPEN_FAILED", cause: expect.any(Error) });
    expect((error as Error).message).toContain(missing);
    expect((error as Error).message).toMatch(/directory does not exist/);
  });

  it("says which path and why when the file is not a database", () => {
    const file = path.join(tempDir(), "notes.txt");
    fs.writeFileSync(file, "this is not a database ".repeat(200));
    let error: unknown;
    try {
      openSqliteStorage({ path: file });
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: "ORDO_STORAGE_OPEN_FAILED", cause: expect.objectContaining({ code: "SQLITE_NOTADB" }) });
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/not a database/);
  });
});

describe("SqliteStorageAdapter.sync", () => {
  const barriers = (file: string) =>
    withRaw(file, (db) => db.prepare<[], { value: number }>("SELECT value FROM meta WHERE key = 'sync_barriers'").get()?.value ?? 0);

  it("commits a barrier with synchronous=FULL and goes back to NORMAL", async () => {
    const { file, storage } = setup();
    const pragma = vi.spyOn(Database.prototype, "pragma");
    await storage.save(["d1"], bytes(1));
    await storage.sync();
    expect(pragma.mock.calls.map(([source]) => source)).toEqual(["synchronous = FULL", "synchronous = NORMAL"]);
    expect(barriers(file)).toBe(1);
  });

  it("lets concurrent calls made in the same tick share one barrier", async () => {
    const { file, storage } = setup();
    await storage.save(["d1"], bytes(1));
    await expect(Promise.all([storage.sync(), storage.sync(), storage.sync()])).resolves.toHaveLength(3);
    expect(barriers(file)).toBe(1);
    await storage.sync();
    expect(barriers(file)).toBe(2);
  });

  it("still resolves a barrier requested just before close", async () => {
    const { file, storage } = setup();
    const synced = storage.sync();
    await storage.close();
    await expect(synced).resolves.toBeUndefined();
    expect(barriers(file)).toBe(1);
  });
});

describe("SqliteStorageAdapter.close", () => {
  it("can be called twice, and every later call rejects with ORDO_STORAGE_CLOSED", async () => {
    const { storage } = setup();
    await storage.close();
    await expect(storage.close()).resolves.toBeUndefined();
    const calls: Array<() => Promise<unknown>> = [
      () => storage.load(["a"]),
      () => storage.save(["a"], bytes(1)),
      () => storage.remove(["a"]),
      () => storage.loadRange(["a"]),
      () => storage.removeRange(["a"]),
      () => storage.commit({ records: [record("d1")] }),
      () => storage.record("d1" as DocumentId),
      () => storage.records(),
      () => storage.sync(),
      () => storage.damagedChunks(),
    ];
    for (const call of calls) {
      const error = await call().then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: "ORDO_STORAGE_CLOSED" });
    }
  });
});

describe("SqliteStorageAdapter under automerge-repo", () => {
  // HAZARDS (Storage): with the stock file-system adapter, one torn incremental chunk made every
  // change of the document disappear on reload. Here it costs only the changes that depend on it.
  it("a torn incremental chunk costs only the changes after it, and its bytes are kept", async () => {
    const env = setup();
    let seed = 42;
    // A pseudo-random string that compresses badly keeps the snapshot larger than 20 small
    // incremental chunks, so automerge-repo does not compact them away.
    const nextChar = () => String.fromCharCode(33 + ((seed = (seed * 48_271) % 2_147_483_647) % 90));
    const blob = Array.from({ length: 4000 }, nextChar).join("");
    const repo = new Repo({ storage: env.storage, network: [] });
    const handle = repo.create<{ n: number[]; blob: string }>({ n: [], blob });
    await repo.flush();
    for (let i = 0; i < 20; i++) {
      handle.change((doc) => {
        doc.n.push(i);
      });
      await repo.flush();
    }
    await repo.shutdown();

    const chunks = await env.storage.loadRange([handle.documentId]);
    expect(chunks.map((chunk) => chunk.key[1])).toEqual(["snapshot", ...Array<string>(20).fill("incremental")]);
    const torn = chunks[11]!; // the change that pushed 10
    withRaw(env.file, (db) =>
      db.prepare("UPDATE chunks SET data = substr(data, 1, length(data) / 2) WHERE key = ?").run(torn.key.join("\u001f")),
    );
    await env.storage.close();

    const storage = env.reopen();
    const reloaded = new Repo({ storage, network: [] });
    const found = await reloaded.find<{ n: number[]; blob: string }>(handle.url);
    expect(found.doc().n).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(found.doc().blob).toBe(blob);
    await reloaded.shutdown();
    expect(await storage.damagedChunks()).toEqual([{ key: torn.key, reason: "length", detectedAt: NOW }]);
  });
});
