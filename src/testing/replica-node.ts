import { seedDemoCourse } from "../demo/demo-course.js";
import type { DocUrl } from "../crdt/ids.js";
import { Engine } from "../engine.js";
import type { Principal } from "../net/principal.js";
import { Replicator } from "../replication/replicator.js";
import { makeTempDir } from "./temp-dir.js";

/**
 * An engine and its replicator for `identity`, on a fresh directory, for replication tests over
 * in-memory links; with `seed`, a small demo course. `close` stops and removes it.
 */
export async function replicaNode(identity: Principal, seed = false): Promise<{ engine: Engine; replicator: Replicator; course?: DocUrl; close: () => Promise<void> }> {
  const temp = makeTempDir();
  // Students keep no catalog partition: only staff write them.
  const engine = await Engine.open({ dataDir: temp.dir, create: true, maintainsCatalog: identity.role === "student" ? () => false : undefined });
  const course = seed ? (await seedDemoCourse(engine.docs, { students: 3, assignments: 2, topics: 1, postsPerTopic: 3 })).course : undefined;
  const replicator = new Replicator({ store: engine.docs, identity });
  await replicator.start();
  const close = async () => {
    replicator.close();
    await engine.close();
    temp.remove();
  };
  return { engine, replicator, course, close };
}
