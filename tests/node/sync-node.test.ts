import { afterEach, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { docUrlOf } from "../../src/crdt/ids.js";

let classroom: TestClassroom | undefined;
afterEach(async () => {
  await classroom?.stop();
  classroom = undefined;
});

async function postCount(node: { engine: { db: import("kysely").Kysely<import("../../src/projection/database.js").Database> } }, text: string): Promise<number> {
  const row = await sql<{ n: number }>`select count(*) as n from posts where message = ${text}`.execute(node.engine.db);
  return row.rows[0]?.n ?? 0;
}

describe("nodes over real WebSockets", () => {
  it("a change on one node shows up in the SQL projection of two others", async () => {
    classroom = await TestClassroom.start();
    const teacher = classroom.authority;
    const a = await classroom.join(demoUser("student", 0), "student");
    const b = await classroom.join(demoUser("student", 1), "student");
    a.connect(teacher.url!);
    b.connect(teacher.url!);
    await eventually(() => a.status().inSync && a.status().peers.length === 1 && b.status().inSync && b.status().peers.length === 1, "students in sync");

    const topic = (await teacher.engine.docs.records({ kind: "discussion_topic" }))[0]!;
    const course = classroom.course;
    const text = `A reply from student A at ${Date.now()}`;
    await a.engine.docs.create("post", { course, topic: docUrlOf(topic.id), author: demoUser("student", 0), message: text, parent: null });
    await eventually(async () => (await postCount(teacher, text)) === 1 && (await postCount(b, text)) === 1, "the post in both other projections");
    expect(await postCount(a, text)).toBe(1);
  });
});
