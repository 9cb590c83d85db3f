import { docUrlOf, type DocUrl } from "../../src/crdt/ids.js";
import { seedDemoCourse } from "../../src/demo/demo-course.js";
import { Engine } from "../../src/engine.js";
import { Authority } from "../../src/net/authority.js";
import type { Role } from "../../src/net/principal.js";
import { SyncNode, type SyncNodeOptions } from "../../src/node/sync-node.js";
import { dumpTables } from "../../src/projection/table-dump.js";
import { FaultProxy, type ProxyDirection, type ProxyFault } from "../../src/testing/fault-proxy.js";
import { demoUser } from "../../src/testing/principals.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import type { Logger } from "../../src/util/logger.js";
import { createRandom } from "../../src/util/random.js";
import { check, runCases, type Suite } from "../suite.js";

const STUDENTS = 3;
/** Random steps per seed: edits, partitions, heals, transport faults and restarts. */
const STEPS = 40;
/** After the last step every line is healed; by then every node must agree. */
const CONVERGE_MS = 60_000;

/**
 * Convergence under faults: a teacher's node, a relay and three students' nodes (five in
 * all, about 30 documents), every link through a proxy that partitions, drops, duplicates
 * and reorders messages, and nodes restarted, while everyone edits. Once the lines heal,
 * every node holds, at equal heads, exactly the documents it may read; each projection
 * equals a rebuild of itself; the teacher's and the relay's (both read everything) are
 * byte-identical; and no node logged an error.
 */
export const convergence: Suite = {
  name: "convergence",
  summary: "five nodes editing through partitions, lost, doubled and reordered messages and restarts end at equal heads and identical projections",
  unit: "seeds",
  sizes: { test: 2, ci: 20, large: 200 },
  run: (options) =>
    runCases(options, "seed", async (seed) => {
      const world = await World.start();
      try {
        await world.play(seed, options.log);
        await world.expectConverged();
      } finally {
        await world.stop();
      }
    }),
};

/** A node of the world: how to start it again from the same directory. */
interface Member {
  name: string;
  options: SyncNodeOptions;
  node: SyncNode;
  /** The proxy its uplink goes through (to the relay; the relay's own is the teacher's uplink). */
  uplink?: FaultProxy;
  /** Documents this member may edit, and how. */
  edits: Array<{ url: DocUrl; kind: "assignment" | "page" | "submission" }>;
  errors: string[];
}

class World {
  readonly members: Member[] = [];
  readonly proxies: FaultProxy[] = [];
  readonly #cleanups: Array<() => void> = [];
  /** A direct LAN link from the first student to the teacher, through its own proxy. */
  #lan: FaultProxy | undefined;

  static async start(): Promise<World> {
    const world = new World();
    try {
      await world.#build();
    } catch (error) {
      await world.stop();
      throw error;
    }
    return world;
  }

  async #build(): Promise<void> {
    const teacherDir = this.#tempDir("ordo-teacher-");
    const seeding = await Engine.open({ dataDir: teacherDir, create: true });
    const { course } = await seedDemoCourse(seeding.docs, { teachers: 1, students: STUDENTS, assignments: 3, topics: 1, postsPerTopic: 3 });
    const records = await seeding.docs.records();
    await seeding.close();
    const authority = Authority.open(teacherDir);
    const token = (dir: string, user: string, role: Role) => authority.issue({ user, role, courses: role === "node" ? ["*"] : [course], ttlMs: 3_600_000, holderKey: Authority.open(dir).publicKey });

    const relayDir = this.#tempDir("ordo-relay-");
    const relay = await this.#add("relay", { dataDir: relayDir, create: true, mode: "relay", listen: { port: 0 }, token: token(relayDir, "relay", "node") }, []);
    // The relay restarts on the same port, so the proxies in front of it keep their upstream.
    relay.options.listen = { port: Number(new URL(relay.node.url!).port) };

    const teacherProxy = await this.#proxy(relay.node.url!);
    const ofKind = (kind: string) => records.filter((r) => r.kind === kind).map((r) => docUrlOf(r.id));
    const teacherEdits = [...ofKind("assignment").map((url) => ({ url, kind: "assignment" as const })), ...ofKind("page").map((url) => ({ url, kind: "page" as const }))];
    const teacher = await this.#add("teacher", { dataDir: teacherDir, listen: { port: 0 }, relay: teacherProxy.url }, teacherEdits, teacherProxy);
    teacher.options.listen = { port: Number(new URL(teacher.node.url!).port) };

    for (let i = 0; i < STUDENTS; i++) {
      const dir = this.#tempDir("ordo-student-");
      const user = demoUser("student", i);
      const own = records.filter((r) => r.kind === "submission" && r.owner === user).map((r) => ({ url: docUrlOf(r.id), kind: "submission" as const }));
      const proxy = await this.#proxy(relay.node.url!);
      await this.#add(`student ${i}`, { dataDir: dir, create: true, listen: { port: 0 }, relay: proxy.url, token: token(dir, user, "student") }, own, proxy);
    }
    this.#lan = await this.#proxy(teacher.node.url!);
    this.members.find((m) => m.name === "student 0")!.node.connect(this.#lan.url);
  }

  /** Plays the seed's steps: each an edit, a partition or heal, a transport fault, or a restart. */
  async play(seed: number, log: (line: string) => void): Promise<void> {
    const random = createRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    for (let step = 0; step < STEPS; step++) {
      const roll = random();
      if (roll < 0.45) {
        const member = pick(this.members.filter((m) => m.edits.length > 0));
        const edit = pick(member.edits);
        const text = `${member.name}, seed ${seed}, step ${step}`;
        const docs = member.node.engine.docs;
        // A node edits only what it holds: a student's fresh node has nothing until its first sync.
        if (!(await docs.record(edit.url))) continue;
        if (edit.kind === "submission") await docs.change<"submission">(edit.url, (d) => (d.body = text));
        else if (edit.kind === "assignment") await docs.change<"assignment">(edit.url, (d) => (d.title = text));
        else await docs.change<"page">(edit.url, (d) => (d.title = text));
      } else if (roll < 0.6) {
        pick(this.proxies).offline();
      } else if (roll < 0.72) {
        const down = this.proxies.filter((p) => p.isOffline);
        if (down.length > 0) pick(down).online();
      } else if (roll < 0.92) {
        const faults: ProxyFault[] = ["drop", "duplicate", "reorder"];
        const directions: ProxyDirection[] = ["up", "down"];
        pick(this.proxies).inject(pick(directions), pick(faults), 1 + Math.floor(random() * 3));
      } else {
        const member = pick(this.members);
        log(`seed ${seed}, step ${step}: restarting ${member.name}`);
        await this.#restart(member);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 120)));
    }
    for (const proxy of this.proxies) proxy.online();
  }

  /** Waits until every node agrees with the teacher, then checks the projections and the logs. */
  async expectConverged(): Promise<void> {
    const teacher = this.members.find((m) => m.name === "teacher")!;
    const relay = this.members.find((m) => m.name === "relay")!;
    let problems: string[] = [];
    const deadline = Date.now() + CONVERGE_MS;
    while ((problems = await this.#divergence(teacher)).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const links = () =>
      this.members
        .map((m) => `${m.name}: ${m.node.status().peers.map((p) => `${p.user} ${p.connected ? "up" : "down"}${p.inSync ? " in sync" : ` (out ${p.pendingOut}, in ${p.pendingIn}, unsettled ${p.unsettled})`}`).join(", ") || "no peers"}`)
        .join("; ");
    check(problems.length === 0, `not converged ${CONVERGE_MS / 1000} s after healing: ${problems.slice(0, 3).join("; ")}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ""}; links: ${links()}`);
    const dumps = new Map<string, string>();
    for (const member of this.members) {
      const engine = member.node.engine;
      await engine.whenProjected();
      const dump = await dumpTables(engine.db);
      await engine.rebuild();
      check(dump === (await dumpTables(engine.db)), `${member.name}: the projection differs from a rebuild of it`);
      dumps.set(member.name, dump);
    }
    check(dumps.get("teacher") === dumps.get(relay.name), "the teacher's and the relay's projections differ, though both hold every document");
    const errors = this.members.flatMap((m) => m.errors.map((line) => `${m.name}: ${line}`));
    check(errors.length === 0, `errors logged: ${errors.slice(0, 3).join("; ")}`);
  }

  /** Where a node differs from the teacher: heads, documents missing, or documents it may not hold. */
  async #divergence(teacher: Member): Promise<string[]> {
    const problems: string[] = [];
    const truth = await teacher.node.engine.docs.records({ includeDeleted: true });
    for (const member of this.members) {
      if (member === teacher) continue;
      const held = new Map((await member.node.engine.docs.records({ includeDeleted: true })).map((r) => [r.id, r.heads]));
      for (const record of truth) {
        const may = member.node.replicator.mayHold(record);
        const heads = held.get(record.id);
        if (may && heads !== record.heads) problems.push(`${member.name}: ${record.kind} ${record.id} ${heads === undefined ? "missing" : await this.#compare(member, teacher, docUrlOf(record.id), heads, record.heads)}`);
        if (!may && heads !== undefined) problems.push(`${member.name}: holds ${record.kind} ${record.id}, which it may not read`);
      }
      if (held.size > truth.length) problems.push(`${member.name}: holds documents the teacher does not`);
    }
    return problems;
  }

  /** Whether a member's copy is behind the teacher's, ahead of it, or both (each lacks changes). */
  async #compare(member: Member, teacher: Member, url: DocUrl, heads: string, teacherHeads: string): Promise<string> {
    const holdsTeachers = await member.node.engine.docs.holdsHeads(url, teacherHeads.split(","));
    const teacherHolds = await teacher.node.engine.docs.holdsHeads(url, heads.split(","));
    return holdsTeachers ? "ahead of the teacher" : teacherHolds ? "behind the teacher" : "apart from the teacher (each lacks changes of the other)";
  }

  async #restart(member: Member): Promise<void> {
    await member.node.close();
    member.node = await SyncNode.start({ ...member.options, logger: this.#logger(member) });
    // The teacher and the relay come back on their ports, so the proxies in front of them still lead there.
    if (member.name === "student 0" && this.#lan) member.node.connect(this.#lan.url);
  }

  async #add(name: string, options: SyncNodeOptions, edits: Member["edits"], uplink?: FaultProxy): Promise<Member> {
    const member: Member = { name, options: { discovery: false, connectors: false, ...options, create: true }, node: undefined as unknown as SyncNode, edits, uplink, errors: [] };
    member.node = await SyncNode.start({ ...member.options, logger: this.#logger(member) });
    this.members.push(member);
    return member;
  }

  /** Keeps a member's error lines: a fault must never make a node log one. */
  #logger(member: Member): Logger {
    const ignore = () => undefined;
    return { debug: ignore, info: ignore, warn: ignore, error: (obj, msg) => member.errors.push(`${msg ?? ""} ${JSON.stringify(obj)}`) };
  }

  async #proxy(upstream: string): Promise<FaultProxy> {
    const proxy = await FaultProxy.start(upstream);
    this.proxies.push(proxy);
    return proxy;
  }

  #tempDir(prefix: string): string {
    const temp = makeTempDir(prefix);
    this.#cleanups.push(temp.remove);
    return temp.dir;
  }

  async stop(): Promise<void> {
    for (const member of this.members.reverse()) await member.node.close().catch(() => undefined);
    for (const proxy of this.proxies) await proxy.close().catch(() => undefined);
    for (const cleanup of this.#cleanups) cleanup();
  }
}
