import { seedDemoCourse, type DemoOptions } from "../demo/demo-course.js";
import type { DocUrl } from "../crdt/ids.js";
import { Authority } from "../net/authority.js";
import type { Role } from "../net/principal.js";
import { SyncNode, type SyncNodeOptions } from "../node/sync-node.js";
import { makeTempDir } from "./temp-dir.js";

/**
 * Real nodes on loopback for tests: an authority node holding a seeded demo course, and
 * helpers to start more nodes with tokens that authority issued. `stop()` closes them all.
 */
export class TestClassroom {
  readonly nodes: SyncNode[] = [];
  readonly #dirs: Array<() => void> = [];

  private constructor(
    readonly authority: SyncNode,
    readonly course: DocUrl,
  ) {}

  static async start(options: { mode?: "node" | "relay"; demo?: DemoOptions } = {}): Promise<TestClassroom> {
    const temp = makeTempDir("ordo-authority-");
    const authority = await SyncNode.start({ dataDir: temp.dir, create: true, mode: options.mode ?? "node", listen: { port: 0 }, discovery: false });
    const demo = await seedDemoCourse(authority.engine.docs, options.demo ?? { students: 3, assignments: 2, topics: 1, postsPerTopic: 3 });
    await authority.engine.whenProjected();
    const classroom = new TestClassroom(authority, demo.course);
    classroom.nodes.push(authority);
    classroom.#dirs.push(temp.remove);
    return classroom;
  }

  /** A token signed by the authority node's key; bound to `holderKey` when given, a bearer token otherwise. */
  token(user: string, role: Role, options: { ttlMs?: number; holderKey?: string } = {}): string {
    const { ttlMs = 3_600_000, holderKey } = options;
    return Authority.open(this.authority.engine.dataDir).issue({ user, role, courses: role === "node" ? ["*"] : [this.course], ttlMs, holderKey });
  }

  /** A fresh node for `user`, presenting a token the authority issued for that node's key. */
  async join(user: string, role: Role, extra: Partial<SyncNodeOptions> = {}): Promise<SyncNode> {
    const temp = makeTempDir(`ordo-${role}-`);
    const holderKey = Authority.open(temp.dir).publicKey;
    const node = await SyncNode.start({ dataDir: temp.dir, create: true, listen: { port: 0 }, discovery: false, token: this.token(user, role, { holderKey }), ...extra });
    this.nodes.push(node);
    this.#dirs.push(temp.remove);
    return node;
  }

  async stop(): Promise<void> {
    for (const node of this.nodes.splice(0).reverse()) await node.close();
    for (const remove of this.#dirs.splice(0)) remove();
  }
}

/** Polls until `check` holds (for conditions reached over a network), failing with `what` after the timeout. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
