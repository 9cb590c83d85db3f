import * as A from "@automerge/automerge";
import { parseAutomergeUrl } from "@automerge/automerge-repo/slim";
import { docUrlOf, documentIdOf, type DocUrl } from "../../src/crdt/ids.js";
import type { DocRecord } from "../../src/crdt/doc-storage.js";
import { Authority } from "../../src/net/authority.js";
import { CloseCode } from "../../src/net/close-codes.js";
import type { Principal } from "../../src/net/principal.js";
import { canRead, canWrite } from "../../src/replication/access-policy.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { ProbeClient } from "../../src/testing/probe-client.js";
import { demoUser } from "../../src/testing/principals.js";
import { tcpProxy } from "../../src/testing/tcp-proxy.js";
import { changesCarried, serverMessages } from "../../src/testing/ws-capture.js";
import { createRandom } from "../../src/util/random.js";
import { check, runCases, type Suite } from "../suite.js";

/** Documents a stock client asks for, and tries to write, per seed. */
const PROBED_DOCS = 12;

/**
 * Authorization and leaks, per seed: a course of random size on a relay or a classroom node.
 * Collection sync (an Ordo student's device, through a proxy that keeps every byte): the
 * device ends holding exactly what the policy lets it read, and the bytes it received name no
 * other student's submission or grade (ids, heads, secret text, also inside deflated changes).
 * Per-document sync (a stock client of another student): it can read exactly the documents
 * the policy allows and write exactly those it may write; any other write closes its
 * connection with 4403 and changes nothing. Identity: an expired token, a token of another
 * authority, and a join with the device's peer id are refused, the device staying connected.
 */
export const authorization: Suite = {
  name: "authorization",
  summary: "what each principal can read and write over collection sync and stock sync equals the policy, nothing leaks in the bytes, and stolen identities are refused",
  unit: "seeds",
  sizes: { test: 2, ci: 20, large: 200 },
  run: (options) => runCases(options, "seed", (seed) => authorizationCase(seed)),
};

async function authorizationCase(seed: number): Promise<void> {
  const random = createRandom(seed);
  const students = 3 + Math.floor(random() * 3);
  const classroom = await TestClassroom.start({ mode: seed % 2 === 0 ? "relay" : "node", demo: { students, assignments: 2 + Math.floor(random() * 3), topics: 1, postsPerTopic: 3, seed } });
  try {
    const server = classroom.authority;
    const store = server.engine.docs;
    // Each student's work carries a marker only that student (and staff) may ever see.
    const secrets = new Map<DocUrl, string>();
    for (const record of await store.records()) {
      if (record.kind !== "submission" && record.kind !== "grade") continue;
      const secret = `secret-${seed}-${record.id.slice(0, 8)}-${Math.floor(random() * 1e9)}`;
      const url = docUrlOf(record.id);
      if (record.kind === "submission") await store.change<"submission">(url, (d) => (d.body = secret));
      else await store.change<"grade">(url, (d) => (d.grade = secret));
      secrets.set(url, secret);
    }
    const records = await store.records({ includeDeleted: true });
    const coursesOf = server.replicator.coursesOf;
    const principal = (index: number): Principal => ({ user: demoUser("student", index), role: "student", courses: [classroom.course], tokenId: "", issuer: "", expiresAt: 0 }) as Principal;

    // ---- collection sync: an Ordo student's device, every byte it receives kept ----------------
    const deviceIndex = Math.floor(random() * students);
    const proxy = await tcpProxy(Number(new URL(server.url!).port));
    try {
      const device = await classroom.join(demoUser("student", deviceIndex), "student", { relay: `ws://127.0.0.1:${proxy.port}` });
      await eventually(() => device.status().peers.length === 1 && device.status().inSync, `student ${deviceIndex}'s device in sync`, 30_000);
      const readable = records.filter((r) => canRead(principal(deviceIndex), r, coursesOf));
      const held = new Set((await device.engine.docs.records({ includeDeleted: true })).map((r) => r.id));
      const missing = readable.filter((r) => !held.has(r.id));
      const extra = [...held].filter((id) => !readable.some((r) => r.id === id));
      check(missing.length === 0, `the device lacks ${missing.length} documents it may read (first: ${missing[0]?.kind} ${missing[0]?.id})`);
      check(extra.length === 0, `the device holds ${extra.length} documents it may not read (first: ${extra[0]})`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const bytes = proxy.received();
      const hidden = records.filter((r) => secrets.has(docUrlOf(r.id)) && !canRead(principal(deviceIndex), r, coursesOf));
      // The scan can fail: what the device may read is in the bytes, and others' work exists to hide.
      const seen = readable.filter((r) => bytes.includes(r.id)).length;
      check(seen > readable.length / 2 && hidden.length > 0, `the leak scan would see nothing: ${seen} of ${readable.length} readable ids in the bytes, ${hidden.length} documents to hide`);
      const leaked = leaksIn(bytes, hidden, secrets);
      check(leaked.length === 0, `bytes sent to student ${deviceIndex}'s device name what it may not read: ${leaked.slice(0, 3).join(", ")}`);

      // ---- identities: a stolen peer id, an expired token, another authority's token -------------
      const deviceLink = device.status().peers[0]!.connectedAt;
      const thiefIndex = (deviceIndex + 1) % students;
      const stolen = await ProbeClient.connect(server.url!, { token: classroom.token(demoUser("student", thiefIndex), "student"), peerId: device.peerId }).then(
        () => "accepted",
        (error: { code?: number; status?: number }) => error.code ?? error.status ?? "refused",
      );
      check(stolen === CloseCode.peerIdTaken, `a join with the device's peer id by another student ended with ${String(stolen)}, not ${CloseCode.peerIdTaken}`);
      const dataDir = server.engine.dataDir;
      const expired = Authority.open(dataDir).issue({ user: demoUser("student", thiefIndex), role: "student", courses: [classroom.course], ttlMs: 1000, now: Date.now() - 60_000 });
      const foreign = Authority.open(`${dataDir}-elsewhere`).issue({ user: demoUser("teacher", 0), role: "teacher", courses: [classroom.course], ttlMs: 60_000 });
      for (const [what, token] of [["an expired token", expired], ["another authority's token", foreign]] as const) {
        const outcome = await ProbeClient.connect(server.url!, { token }).then(
          (probe) => (probe.close(), "accepted"),
          (error: { status?: number }) => error.status,
        );
        check(outcome === 401, `${what} got ${String(outcome)}, not 401`);
      }
      check(device.status().peers[0]?.connectedAt === deviceLink && device.status().peers[0]?.connected === true, "the device's link was dropped by the attempts on its identity");
    } finally {
      proxy.close();
    }

    // ---- per-document sync: a stock client of another student reads and writes -------------
    const probeIndex = Math.floor(random() * students);
    const who = principal(probeIndex);
    const token = classroom.token(who.user, "student");
    const sample = Array.from({ length: PROBED_DOCS }, () => records[Math.floor(random() * records.length)]!).filter((r) => !r.deleted);
    const reader = await ProbeClient.connect(server.url!, { token });
    try {
      for (const record of sample) {
        const may = canRead(who, record, coursesOf);
        const result = await reader.read(record.id);
        check((result.status === "ok") === may, `student ${probeIndex} ${result.status === "ok" ? "read" : "could not read"} ${record.kind} ${record.id}, which the policy says it ${may ? "may" : "may not"} read`);
      }
      const named = reader.documentsNamed();
      const offeredUnreadable = records.filter((r) => named.has(r.id) && !canRead(who, r, coursesOf) && !sample.includes(r));
      check(offeredUnreadable.length === 0, `the server named ${offeredUnreadable.length} documents student ${probeIndex} may not read (first: ${offeredUnreadable[0]?.kind})`);
    } finally {
      reader.close();
    }
    for (const record of sample.slice(0, 4)) await expectWrite(server.url!, token, store, record, canWrite(who, record, coursesOf), probeIndex);
  } finally {
    await classroom.stop();
  }
}

/** A write by the student: applied when the policy allows it, otherwise the connection closes with 4403 and nothing changes. */
async function expectWrite(url: string, token: string, store: TestClassroom["authority"]["engine"]["docs"], record: DocRecord, may: boolean, index: number): Promise<void> {
  const target = docUrlOf(record.id);
  const before = (await store.record(target))!.heads;
  const changed = A.change(A.load<Record<string, unknown>>((await store.export(target))!), (d) => {
    d.updatedAt = new A.ImmutableString(new Date(Date.now() + 1000).toISOString());
  });
  const probe = await ProbeClient.connect(url, { token });
  try {
    probe.pushChanges(record.id, changed);
    if (may) {
      const head = A.getHeads(changed)[0]!;
      await eventually(async () => (await store.record(target))!.heads.includes(head), `student ${index}'s permitted write to ${record.kind} ${record.id} applied`, 10_000);
    } else {
      const closed = await probe.closed;
      check(closed.code === CloseCode.forbiddenWrite, `student ${index}'s write to ${record.kind} ${record.id} ended with ${closed.code}, not ${CloseCode.forbiddenWrite}`);
      check((await store.record(target))!.heads === before, `student ${index}'s forbidden write to ${record.kind} ${record.id} changed it`);
    }
  } finally {
    probe.close();
  }
}

/** What of `hidden` (ids, binary ids, heads, secret text) appears in the bytes or in the changes they carry. */
function leaksIn(bytes: Buffer, hidden: readonly DocRecord[], secrets: ReadonlyMap<DocUrl, string>): string[] {
  const ops = changesCarried(serverMessages(bytes))
    .map((change) => JSON.stringify(change.ops))
    .join("\n");
  const leaks: string[] = [];
  for (const record of hidden) {
    const url = docUrlOf(record.id);
    const secret = secrets.get(url)!;
    const needles: Array<[string, Buffer | string]> = [
      [`id of ${record.kind} ${record.id}`, record.id],
      [`binary id of ${record.kind} ${record.id}`, Buffer.from(parseAutomergeUrl(url).binaryDocumentId)],
      [`secret of ${record.kind} ${record.id}`, secret],
      ...record.heads.split(",").map((head): [string, Buffer] => [`heads of ${record.kind} ${record.id}`, Buffer.from(head, "hex")]),
    ];
    for (const [what, needle] of needles) if (bytes.includes(needle)) leaks.push(what);
    if (ops.includes(secret) || ops.includes(documentIdOf(url))) leaks.push(`${record.kind} ${record.id} inside a change`);
  }
  return leaks;
}
