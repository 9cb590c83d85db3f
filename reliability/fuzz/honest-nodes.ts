import { docUrlOf, type DocUrl } from "../../src/crdt/ids.js";
import { Authority } from "../../src/net/authority.js";
import { SyncNode } from "../../src/node/sync-node.js";
import { eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import type { RelayProcess } from "./relay-process.js";

/**
 * A teacher's node and a student's node that never meet, each keeping a connection to the
 * relay under attack, with key-bound tokens as real devices have. While the fuzz runs, a
 * teacher's edit must reach the student through the relay, over the same links as at the
 * start: a link the relay dropped would show as a new `connectedAt`.
 */
export class HonestNodes {
  #edits = 0;

  private constructor(
    readonly teacher: SyncNode,
    readonly student: SyncNode,
    readonly assignment: DocUrl,
    private readonly links: { teacher: string; student: string },
    private readonly removeDirs: () => void,
  ) {}

  static async start(relay: RelayProcess): Promise<HonestNodes> {
    const dirs: Array<() => void> = [];
    const start = async (user: DocUrl, role: "teacher" | "student") => {
      const temp = makeTempDir(`ordo-fuzz-${role}-`);
      dirs.push(temp.remove);
      const token = relay.token(user, role, Authority.open(temp.dir).publicKey);
      return SyncNode.start({ dataDir: temp.dir, create: true, relay: relay.url, discovery: false, connectors: false, token });
    };
    const teacher = await start(demoUser("teacher", 0), "teacher");
    const student = await start(demoUser("student", 0), "student");
    const settled = (node: SyncNode) => node.status().peers.length === 1 && node.status().inSync;
    await eventually(() => settled(teacher) && settled(student), "both honest nodes in sync with the relay", 60_000);
    await eventually(async () => (await student.engine.docs.records({ kind: "assignment" })).length > 0, "the course's assignments at the honest student's", 60_000);
    const assignment = docUrlOf((await student.engine.docs.records({ kind: "assignment" }))[0]!.id);
    const connectedAt = (node: SyncNode) => node.status().peers[0]!.connectedAt;
    return new HonestNodes(teacher, student, assignment, { teacher: connectedAt(teacher), student: connectedAt(student) }, () => dirs.forEach((remove) => remove()));
  }

  /**
   * The teacher retitles the assignment and the student sees the new title; returns why not,
   * or undefined when it arrived within `timeoutMs` over the links the nodes started with.
   */
  async editReachesStudent(timeoutMs = 30_000): Promise<string | undefined> {
    const title = `Retitled during the fuzz, edit ${++this.#edits}`;
    await this.teacher.engine.docs.change<"assignment">(this.assignment, (draft) => {
      draft.title = title;
    });
    try {
      await eventually(async () => (await this.student.engine.docs.find<"assignment">(this.assignment))?.title === title, `"${title}" at the honest student's`, timeoutMs);
    } catch (error) {
      return `the teacher's edit did not reach the student through the relay: ${(error as Error).message}`;
    }
    return this.linksDropped();
  }

  /** Why an honest node's link to the relay is not the one it started with, if it is not. */
  linksDropped(): string | undefined {
    for (const [name, node] of [["teacher", this.teacher], ["student", this.student]] as const) {
      const peers = node.status().peers;
      const peer = peers[0];
      if (peers.length !== 1 || peer === undefined || !peer.connected) return `the honest ${name}'s link to the relay is down`;
      if (peer.connectedAt !== this.links[name]) return `the honest ${name}'s link to the relay was dropped and made again (connected at ${this.links[name]}, now ${peer.connectedAt})`;
    }
    return undefined;
  }

  async stop(): Promise<void> {
    await this.student.close();
    await this.teacher.close();
    this.removeDirs();
  }
}
