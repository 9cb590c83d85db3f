import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { unsettledEntities } from "../../src/connectors/connector-status.js";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { Outbox } from "../../src/connectors/outbox.js";
import { openProjectionDb, type ProjectionDb } from "../../src/projection/projection-db.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function open(path: string): Promise<{ projection: ProjectionDb; outbox: Outbox }> {
  const projection = await openProjectionDb({ path });
  cleanups.push(() => projection.close());
  return { projection, outbox: new Outbox(connectorDb(projection.db)) };
}

describe("the outbox", () => {
  it("marks what it holds pending to its system, per entity, in entity_sync_status", async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const { projection, outbox } = await open(join(temp.dir, "projection.sqlite"));
    const db = connectorDb(projection.db);
    await db.insertInto("remote_sync").values({ doc_url: "automerge:b", system: "canvas", state: "in_sync", local_heads: null, remote_version: null, synced_at: null }).execute();
    await outbox.enqueue("discourse", "automerge:a", "create");
    await outbox.enqueue("canvas", "automerge:b", "update");
    expect(await unsettledEntities(db)).toEqual([
      { doc_url: "automerge:a", canvas: null, discourse: "pending" },
      { doc_url: "automerge:b", canvas: "pending", discourse: null },
    ]);
  });

  it("keeps one open entry per document and system, a create staying a create and a delete winning", async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const { outbox } = await open(join(temp.dir, "projection.sqlite"));
    const first = (await outbox.enqueue("canvas", "automerge:a", "create"))!;
    expect((await outbox.enqueue("canvas", "automerge:a", "update"))!.id).toBe(first.id);
    expect((await outbox.enqueue("canvas", "automerge:a", "update"))!.operation).toBe("create");
    expect((await outbox.enqueue("discourse", "automerge:a", "update"))!.id).not.toBe(first.id);
    expect((await outbox.enqueue("canvas", "automerge:a", "delete"))!.operation).toBe("delete");
    expect((await outbox.due("canvas")).map((e) => e.doc_url)).toEqual(["automerge:a"]);
  });

  it("waits out a retry time, and closes an entry with the remote id it got", async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    let now = new Date("2026-09-01T12:00:00Z");
    const projection = await openProjectionDb({ path: join(temp.dir, "projection.sqlite") });
    cleanups.push(() => projection.close());
    const db = connectorDb(projection.db);
    const outbox = new Outbox(db, () => now);
    const entry = (await outbox.enqueue("discourse", "automerge:post", "create"))!;
    await outbox.begin(entry.id);
    await outbox.failed(entry.id, "503 Service Unavailable", { retryAt: new Date("2026-09-01T12:01:00Z") });
    expect(await outbox.due("discourse")).toEqual([]);
    now = new Date("2026-09-01T12:02:00Z");
    const [due] = await outbox.due("discourse");
    expect(due).toMatchObject({ id: entry.id, attempts: 1, last_error: "503 Service Unavailable" });
    // Two syncs that both found it due: only the first takes it and sends.
    expect(await Promise.all([outbox.begin(entry.id), outbox.begin(entry.id)])).toEqual([expect.objectContaining({ id: entry.id, status: "sending" }), undefined]);
    await outbox.sent(entry.id, { type: "post", id: "1002" });
    expect(await db.selectFrom("remote_ids").selectAll().execute()).toEqual([{ system: "discourse", remote_type: "post", remote_id: "1002", doc_url: "automerge:post" }]);
    expect(await outbox.counts()).toEqual([{ system: "discourse", status: "sent", count: 1 }]);
  });

  it("leaves an entry in doubt, not lost and not pending, when the process dies between sending and recording", async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const path = join(temp.dir, "projection.sqlite");
    // A child enqueues, begins sending, and is killed before it can record the result.
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../fixtures/outbox-writer.ts"), path], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("sending") && resolve()));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    const { outbox } = await open(path);
    const doubtful = await outbox.inDoubt("canvas");
    expect(doubtful).toHaveLength(1);
    expect(doubtful[0]).toMatchObject({ doc_url: "automerge:assignment", operation: "create", attempts: 1 });
    expect(doubtful[0]!.idempotency_key).toMatch(/^[0-9a-f-]{36}$/);
    expect(await outbox.due("canvas")).toEqual([]);
  });
});
