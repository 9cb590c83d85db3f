// Embedding Ordo Sync: a course and an assignment, changed offline, queried with SQL.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "ordo-sync";

const dataDir = mkdtempSync(join(tmpdir(), "ordo-embed-"));
const engine = await Engine.open({ dataDir, create: true });
try {
  const course = await engine.docs.create("course", { name: "Biology 101", courseCode: "BIO-101" });
  const lab = await engine.docs.create("assignment", { course: course.url, title: "Lab 1", pointsPossible: 10, published: true });

  // A typed change: text fields merge character by character with other peers' edits.
  await engine.docs.change<"assignment">(lab.url, (draft) => {
    draft.title = "Lab 1: Cells";
    draft.description = "Draw a plant cell and label its organelles.";
    draft.dueAt = "2026-09-04T23:59:00Z";
  });

  await engine.whenProjected();
  const rows = await engine.db
    .selectFrom("assignments")
    .select(["title", "due_at", "points_possible"])
    .where("course_url", "=", course.url)
    .execute();
  console.log(JSON.stringify(rows));
} finally {
  await engine.close();
  rmSync(dataDir, { recursive: true, force: true });
}
