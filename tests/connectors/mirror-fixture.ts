import { connectorDb } from "../../src/connectors/connector-tables.js";
import { syncCanvas, syncDiscourse } from "../../src/connectors/connector-sync.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import { DEFAULT_DISCOURSE_API_KEY, FakeCanvas, FakeDiscourse } from "../../src/testing/lms-fakes.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

/** A node connected to a fake Canvas course and the fake forum of that course. */
export async function mirroredCourse(cleanups: Array<() => Promise<void> | void>) {
  const canvas = await FakeCanvas.start();
  const discourse = await FakeDiscourse.start();
  const temp = makeTempDir();
  const engine = await Engine.open({ dataDir: temp.dir, create: true });
  cleanups.push(() => canvas.close(), () => discourse.close(), temp.remove, () => engine.close());
  const store = engine.docs;
  const db = connectorDb(engine.db);
  const canvasSettings = { url: canvas.url, token: canvas.token, courseId: "4201" };
  await syncCanvas({ store, db, settings: canvasSettings });
  const course = `automerge:${(await store.records({ kind: "course" }))[0]!.id}` as DocUrl;
  const discourseSettings = { url: discourse.url, apiKey: DEFAULT_DISCOURSE_API_KEY, username: "system", categoryId: "12", course };
  const both = async () => [await syncCanvas({ store, db, settings: canvasSettings }), await syncDiscourse({ store, db, settings: discourseSettings })] as const;
  await both();
  const writes = () => [...canvas.requests, ...discourse.requests].filter((r) => r.method !== "GET");
  const canvasApi = async <T>(method: string, path: string, form?: Record<string, string>): Promise<T> => {
    const response = await fetch(`${canvas.url}/api/v1/courses/4201${path}`, { method, headers: { authorization: `Bearer ${canvas.token}`, ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}) }, body: form ? new URLSearchParams(form).toString() : undefined });
    return (await response.json()) as T;
  };
  const discourseApi = async <T>(method: string, path: string, user: string, json?: unknown): Promise<T> => {
    const response = await fetch(`${discourse.url}${path}`, { method, headers: { "api-key": DEFAULT_DISCOURSE_API_KEY, "api-username": user, ...(json ? { "content-type": "application/json" } : {}) }, body: json ? JSON.stringify(json) : undefined });
    return (await response.json()) as T;
  };
  return { store, db, course, both, writes, canvasApi, discourseApi, canvas, discourse, canvasSettings, discourseSettings };
}
