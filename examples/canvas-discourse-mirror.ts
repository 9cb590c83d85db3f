// A course on Canvas, its forum on Discourse, and a node that keeps both in step: import the
// course, write a reply offline, sync, and see the reply on both sides, once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine, connectorDb, syncCanvas, syncDiscourse, type CanvasSettings, type DiscourseSettings, type DocUrl } from "ordo-sync";
import { DEFAULT_DISCOURSE_API_KEY, FakeCanvas, FakeDiscourse } from "ordo-sync/testing";

const deadline = setTimeout(() => {
  console.error("timed out");
  process.exit(1);
}, 30_000);

const canvas = await FakeCanvas.start();
const discourse = await FakeDiscourse.start();
const dataDir = mkdtempSync(join(tmpdir(), "ordo-mirror-"));
const engine = await Engine.open({ dataDir, create: true });
try {
  const store = engine.docs;
  const db = connectorDb(engine.db);
  const canvasSettings: CanvasSettings = { url: canvas.url, token: canvas.token, courseId: "4201" };

  // 1. Import the course from Canvas, then connect its Discourse category as the course's forum.
  await syncCanvas({ store, db, settings: canvasSettings });
  const course = (await engine.docs.records({ kind: "course" }))[0]!;
  const courseUrl = `automerge:${course.id}` as DocUrl;
  const discourseSettings: DiscourseSettings = { url: discourse.url, apiKey: DEFAULT_DISCOURSE_API_KEY, username: "system", categoryId: "12", course: courseUrl };
  await syncDiscourse({ store, db, settings: discourseSettings });
  const topic = (await store.list(courseUrl, "discussion_topic")).find((t) => t.title === "Introduce yourself")!;
  console.log(`"${topic.title}" is Canvas topic ${topic.external.canvas} and Discourse topic ${topic.external.discourse}`);

  // 2. Offline: a student replies on this node. Nothing leaves it yet.
  await engine.whenProjected();
  const priya = await engine.db.selectFrom("users").select("doc_url").where("name", "=", "Priya Natarajan").executeTakeFirstOrThrow();
  const text = "Offline reply: our group measured osmosis in potato slices.";
  await store.create("post", { course: courseUrl, topic: topic.url, author: priya.doc_url, message: text });

  // 3. Back online: one sync with each system sends the reply to both.
  const toCanvas = await syncCanvas({ store, db, settings: canvasSettings });
  const toDiscourse = await syncDiscourse({ store, db, settings: discourseSettings });
  console.log(`sync: ${toCanvas.pushed.created} created in Canvas, ${toDiscourse.pushed.created} created in Discourse`);

  // 4. Each side, read through its own API.
  const entries = (await (await fetch(`${canvas.url}/api/v1/courses/4201/discussion_topics/${topic.external.canvas}/view`, { headers: { authorization: `Bearer ${canvas.token}` } })).json()) as { view: Array<{ message?: string }>; new_entries?: Array<{ message?: string }> };
  const inCanvas = [...entries.view, ...(entries.new_entries ?? [])].filter((e) => e.message?.includes(text)).length;
  const thread = (await (await fetch(`${discourse.url}/t/${topic.external.discourse}.json`, { headers: { "api-key": DEFAULT_DISCOURSE_API_KEY, "api-username": "system" } })).json()) as { post_stream: { posts: Array<{ cooked: string }> } };
  const inDiscourse = thread.post_stream.posts.filter((p) => p.cooked.includes(text)).length;
  console.log(`Canvas shows the reply ${inCanvas} time(s); Discourse shows it ${inDiscourse} time(s)`);

  // 5. Syncing again sends nothing: neither side's copy comes back as a change.
  const again = [await syncCanvas({ store, db, settings: canvasSettings }), await syncDiscourse({ store, db, settings: discourseSettings })];
  console.log(`second sync: ${again.map((r) => r.pushed.created).reduce((a, b) => a + b)} created, ${again.map((r) => r.pulled.updated).reduce((a, b) => a + b)} documents updated`);
} finally {
  await engine.close();
  await canvas.close();
  await discourse.close();
  rmSync(dataDir, { recursive: true, force: true });
  clearTimeout(deadline);
}
