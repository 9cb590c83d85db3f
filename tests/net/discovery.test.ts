import { spawn, type ChildProcessByStdio } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import type { Readable, Writable } from "node:stream";
import createMulticastDns from "multicast-dns";
import { describe, expect, it } from "vitest";
import { LanDiscovery } from "../../src/net/discovery.js";
import {
  answerQuery,
  buildRecords,
  checkAdvertisement,
  decodeTxt,
  encodeTxt,
  instanceLabelFor,
  instanceNameFor,
  PeerTable,
  readResponse,
  SERVICE_TYPE,
  type Advertisement,
  type TableEvent,
} from "../../src/net/discovery-records.js";

const NODE = new URL("../fixtures/discovery-node.ts", import.meta.url).pathname;

/** Every test keeps its multicast on loopback: nothing leaves this machine. */
const LOOPBACK = "127.0.0.1";

function advertisement(overrides: Partial<Advertisement> = {}): Advertisement {
  return { peerId: "peer-b", port: 7421, courses: ["automerge:shared", "automerge:b-only"], addresses: ["192.168.1.20"], ...overrides };
}

/** A response packet as multicast-dns decodes it: TXT strings become Buffers. */
function responseOf(ad: Advertisement, ttl = 120): object {
  const records = buildRecords(ad, ttl);
  const txt = { ...records.txt, data: records.txt.data.map((text) => Buffer.from(text)) };
  return { type: "response", answers: [records.ptr], additionals: [records.srv, txt, ...records.a] };
}

describe("the DNS-SD records of a node", () => {
  it("round-trips a short course list through one `courses` TXT string", () => {
    const ad = advertisement({ path: "/sync" });
    const txt = encodeTxt(ad);
    expect(txt).toEqual(["v=1", "peer=peer-b", "courses=automerge:shared,automerge:b-only", "path=/sync"]);
    expect(decodeTxt(txt.map((text) => Buffer.from(text)))).toEqual({
      ok: true,
      fields: { peerId: "peer-b", courses: ["automerge:shared", "automerge:b-only"], path: "/sync" },
    });
  });

  it("splits a long course list over numbered strings of at most 255 bytes, each holding whole ids", () => {
    const courses = Array.from({ length: 40 }, (_, n) => `automerge:${String(n).padStart(2, "0")}${"x".repeat(30)}`);
    const txt = encodeTxt(advertisement({ courses }));
    const chunks = txt.filter((text) => text.startsWith("courses"));
    expect(chunks.length).toBeGreaterThan(4);
    chunks.forEach((chunk, index) => {
      expect(chunk.startsWith(`courses${index}=`)).toBe(true);
      expect(Buffer.byteLength(chunk)).toBeLessThanOrEqual(255);
    });
    expect(decodeTxt(txt)).toEqual({ ok: true, fields: { peerId: "peer-b", courses } });
  });

  it("refuses TXT records of another version, without a peer or courses, or not made of strings", () => {
    expect(decodeTxt(["v=2", "peer=x", "courses=a"])).toMatchObject({ ok: false });
    expect(decodeTxt(["peer=x", "courses=a"])).toMatchObject({ ok: false });
    expect(decodeTxt(["v=1", "courses=a"])).toMatchObject({ ok: false });
    expect(decodeTxt(["v=1", "peer=x"])).toMatchObject({ ok: false });
    expect(decodeTxt([{ not: "bytes" }])).toMatchObject({ ok: false });
    expect(decodeTxt(undefined)).toMatchObject({ ok: false });
  });

  it("reads keys case-insensitively, keeps the first of duplicates and skips empty course ids", () => {
    expect(decodeTxt(["V=1", "PEER=x", "peer=y", "flag", "=orphan", "Courses=a,,b,a", "path=relative"])).toEqual({
      ok: true,
      fields: { peerId: "x", courses: ["a", "b"] },
    });
  });

  it("uses a plain peer id as instance name and hashes ids DNS would confuse", () => {
    expect(instanceLabelFor("peer-b")).toBe("peer-b");
    const labels = ["Peer-B", "peer-B", "peer.b", "p".repeat(64), `${"p".repeat(64)}x`].map(instanceLabelFor);
    expect(new Set(labels.map((label) => label.toLowerCase())).size).toBe(labels.length);
    for (const label of labels) {
      expect(Buffer.byteLength(label)).toBeLessThanOrEqual(63);
      expect(label).not.toContain(".");
    }
  });

  it("refuses to advertise course ids that could not be read back", () => {
    expect(() => checkAdvertisement(advertisement({ courses: ["a,b"] }))).toThrow(/course id/);
    expect(() => checkAdvertisement(advertisement({ courses: [""] }))).toThrow(/course id/);
    expect(() => checkAdvertisement(advertisement({ courses: ["c".repeat(300)] }))).toThrow(/course id/);
    expect(() => checkAdvertisement(advertisement({ port: 0 }))).toThrow(/port/);
    expect(() => checkAdvertisement(advertisement({ addresses: ["::1"] }))).toThrow(/IPv4/);
  });

  it("skips other services' records and records of impossible shape", () => {
    const instance = instanceNameFor("x");
    const packet = {
      answers: [
        null,
        "junk",
        { name: "_http._tcp.local", type: "PTR", ttl: 120, data: "printer._http._tcp.local" },
        { name: SERVICE_TYPE, type: "PTR", ttl: 120, data: SERVICE_TYPE },
        { name: instance, type: "SRV", ttl: 120, data: { port: 0, target: "h.local" } },
        { name: instance, type: "SRV", ttl: -1, data: { port: 80, target: "h.local" } },
        { name: "h.local", type: "A", ttl: 120, data: "not-an-address" },
      ],
      additionals: "not a list",
    };
    expect(readResponse(packet)).toEqual([]);
    expect(readResponse(null)).toEqual([]);
  });
});

describe("answering queries", () => {
  const records = buildRecords(advertisement(), 120);

  it("answers a browse with the PTR, and SRV, TXT and A as additionals", () => {
    const reply = answerQuery([{ name: "_ORDO-SYNC._tcp.local", type: "PTR" }], [], records);
    expect(reply?.answers).toEqual([records.ptr]);
    expect(reply?.additionals).toEqual([records.srv, records.txt, ...records.a]);
  });

  it("stays silent when the querier already holds our PTR with more than half its TTL", () => {
    const known = [{ ...records.ptr, ttl: 100 }];
    expect(answerQuery([{ name: SERVICE_TYPE, type: "PTR" }], known, records)).toBeUndefined();
    expect(answerQuery([{ name: SERVICE_TYPE, type: "PTR" }], [{ ...records.ptr, ttl: 30 }], records)).toBeDefined();
  });

  it("answers questions for its instance, and nothing else", () => {
    const reply = answerQuery([{ name: records.srv.name, type: "SRV" }], undefined, records);
    expect(reply?.answers).toEqual([records.srv]);
    expect(answerQuery([{ name: "other.local", type: "A" }, null, 42], [], records)).toBeUndefined();
    expect(answerQuery("not questions", [], records)).toBeUndefined();
  });
});

describe("the peer table", () => {
  function setup(courses = ["automerge:shared", "automerge:a-only"]) {
    const table = new PeerTable("peer-a", courses);
    const hear = (ad: Advertisement, now: number, ttl = 120, referer = "192.168.1.20"): TableEvent[] =>
      table.observe(readResponse(responseOf(ad, ttl)), referer, now);
    return { table, hear };
  }

  it("reports a node sharing a course once, at its advertised address, and again when its port changes", () => {
    const { hear } = setup();
    expect(hear(advertisement({ addresses: ["10.0.0.5"] }), 0)).toEqual([
      { type: "found", peer: { peerId: "peer-b", host: "10.0.0.5", port: 7421, courses: ["automerge:shared", "automerge:b-only"] } },
    ]);
    expect(hear(advertisement({ addresses: ["10.0.0.5"] }), 1000)).toEqual([]);
    expect(hear(advertisement({ addresses: ["10.0.0.5"], port: 7500 }), 2000)).toMatchObject([{ type: "found", peer: { port: 7500 } }]);
  });

  it("prefers the packet's source among several advertised addresses, and uses the source when none is advertised", () => {
    const { hear } = setup();
    expect(hear(advertisement({ addresses: ["172.17.0.1", "192.168.1.20"] }), 0)).toMatchObject([{ peer: { host: "192.168.1.20" } }]);
    const other = setup();
    expect(other.hear(advertisement({ addresses: [] }), 0, 120, "192.168.1.33")).toMatchObject([{ peer: { host: "192.168.1.33" } }]);
  });

  it("loses a node on its goodbye and when its records lapse", () => {
    const { table, hear } = setup();
    hear(advertisement(), 0);
    expect(hear(advertisement(), 1000, 0)).toEqual([{ type: "lost", peerId: "peer-b", reason: "goodbye" }]);
    hear(advertisement(), 2000);
    expect(table.expire(2000 + 119_000)).toEqual([]);
    expect(table.expire(2000 + 120_000)).toEqual([{ type: "lost", peerId: "peer-b", reason: "expired" }]);
    expect(table.peers()).toEqual([]);
  });

  it("asks for a node again at 80, 85, 90 and 95 % of its TTL, and a fresh answer starts over", () => {
    const { table, hear } = setup();
    hear(advertisement(), 0, 100);
    expect(table.dueForRefresh(79_000)).toEqual([]);
    const instance = instanceNameFor("peer-b");
    expect(table.dueForRefresh(80_000)).toEqual([instance]);
    expect(table.dueForRefresh(80_500)).toEqual([]);
    expect([85_000, 90_000, 95_000].map((now) => table.dueForRefresh(now))).toEqual([[instance], [instance], [instance]]);
    expect(table.dueForRefresh(99_000)).toEqual([]);
    hear(advertisement(), 99_000, 100);
    expect(table.expire(150_000)).toEqual([]);
    expect(table.dueForRefresh(179_000)).toEqual([instance]);
  });

  it("ignores itself and nodes sharing no course, until the courses change", () => {
    const { table, hear } = setup();
    expect(hear(advertisement({ peerId: "peer-a" }), 0)).toEqual([]);
    expect(hear(advertisement({ courses: ["automerge:elsewhere"] }), 0)).toEqual([{ type: "ignored", peerId: "peer-b" }]);
    expect(hear(advertisement({ courses: ["automerge:elsewhere"] }), 10)).toEqual([]);
    expect(table.setCourses(["automerge:elsewhere"])).toMatchObject([{ type: "found", peer: { peerId: "peer-b" } }]);
    expect(table.setCourses(["automerge:nothing"])).toEqual([
      { type: "lost", peerId: "peer-b", reason: "no-shared-course" },
      { type: "ignored", peerId: "peer-b" },
    ]);
  });

  it("reports an unreadable TXT record and keeps going", () => {
    const { table } = setup();
    const instance = instanceNameFor("peer-b");
    const events = table.observe(
      readResponse({ answers: [{ name: instance, type: "TXT", ttl: 120, data: [Buffer.from("v=1")] }] }),
      "192.168.1.20",
      0,
    );
    expect(events).toEqual([{ type: "malformed", instance, reason: "TXT has no peer id" }]);
  });
});

describe("LanDiscovery in this process", () => {
  it("can be stopped twice, and cannot be started after stop", async () => {
    const discovery = new LanDiscovery({ peerId: `solo-${randomBytes(4).toString("hex")}`, port: 7420, courses: [], interface: LOOPBACK });
    await discovery.start();
    await Promise.all([discovery.stop(), discovery.stop()]);
    await discovery.stop();
    await expect(discovery.start()).rejects.toMatchObject({ code: "discovery-stopped" });
  });

  it("rejects start() when it cannot join the group on the named interface, and still stops", async () => {
    // A documentation address (RFC 5737) that no interface of this machine holds: nothing is sent.
    const discovery = new LanDiscovery({ peerId: "nowhere", port: 7420, courses: [], interface: "198.51.100.7" });
    await expect(discovery.start()).rejects.toMatchObject({ code: "discovery-bind-failed" });
    await discovery.stop();
  });

  it("refuses an interface that is not an IPv4 address", () => {
    expect(() => new LanDiscovery({ peerId: "p", port: 7420, courses: [], interface: "eth0" })).toThrow(/IPv4/);
  });
});

type NodeLine =
  | { event: "started" | "stopped" }
  | { event: "peer-found"; peer: { peerId: string; host: string; port: number; courses: string[] } }
  | { event: "peer-lost"; peerId: string }
  | { event: "error"; message: string }
  | { event: "log"; level: string; msg: string; peerId?: string };

/** One discovery-node child; `lines` holds everything it printed, `waitFor` resolves on a matching line. */
function startNode(options: { peerId: string; port: number; courses: string[]; recordTtlSeconds?: number }) {
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(
    process.execPath,
    ["--import", "tsx", NODE, JSON.stringify({ ...options, interface: LOOPBACK })],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  const lines: NodeLine[] = [];
  const waiters = new Set<() => void>();
  let buffer = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      lines.push(JSON.parse(buffer.slice(0, newline)) as NodeLine);
      buffer = buffer.slice(newline + 1);
      for (const wake of waiters) wake();
    }
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    lines,
    exited,
    waitFor(what: string, match: (line: NodeLine) => boolean, timeoutMs = 8000): Promise<NodeLine> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${options.peerId}: no ${what} within ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    updateCourses(courses: string[]): void {
      child.stdin.write(`${JSON.stringify({ courses })}\n`);
    },
    kill(signal: NodeJS.Signals): void {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

const found = (peerId: string) => (line: NodeLine) => line.event === "peer-found" && line.peer.peerId === peerId;
const lost = (peerId: string) => (line: NodeLine) => line.event === "peer-lost" && line.peerId === peerId;
const logged = (msg: string, peerId?: string) => (line: NodeLine) =>
  line.event === "log" && line.msg === msg && (peerId === undefined || line.peerId === peerId);

/** Sends what other software on a LAN might: an undecodable packet, and an ordo-sync record with a broken TXT. */
async function sendJunk(run: string): Promise<void> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  socket.setMulticastInterface(LOOPBACK);
  // A header announcing one question, then a label that runs past the end of the packet.
  const undecodable = Buffer.from([0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, 0x61]);
  await new Promise<void>((resolve, reject) => socket.send(undecodable, 5353, "224.0.0.251", (err) => (err ? reject(err) : resolve())));
  socket.close();

  const mdns = createMulticastDns({ interface: LOOPBACK, bind: "0.0.0.0", loopback: true });
  await new Promise<void>((resolve) => mdns.once("ready", resolve));
  const instance = `junk-${run}.${SERVICE_TYPE}`;
  await new Promise<void>((resolve, reject) =>
    mdns.respond(
      {
        answers: [
          { name: SERVICE_TYPE, type: "PTR", ttl: 120, data: instance },
          { name: instance, type: "SRV", ttl: 120, data: { port: 9, target: "junk.local" } },
          { name: instance, type: "TXT", ttl: 120, data: ["v=1", "courses=nothing"] },
        ],
      },
      (err) => (err ? reject(err) : resolve()),
    ),
  );
  await new Promise<void>((resolve) => mdns.destroy(resolve));
}

describe("LAN discovery between processes over loopback multicast", () => {
  it("finds nodes sharing a course, not others, survives junk, and sees goodbyes and lapses", async () => {
    const run = randomBytes(4).toString("hex");
    const course = (name: string) => `automerge:${name}-${run}`;
    const ids = { a: `a-${run}`, b: `b-${run}`, c: `c-${run}` };
    const a = startNode({ peerId: ids.a, port: 41001, courses: [course("shared"), course("a-only")] });
    const b = startNode({ peerId: ids.b, port: 41002, courses: [course("shared"), course("b-only")] });
    // C's short TTL lets the test see a lapse after SIGKILL within seconds.
    const c = startNode({ peerId: ids.c, port: 41003, courses: [course("elsewhere")], recordTtlSeconds: 3 });
    const nodes = [a, b, c];
    try {
      await Promise.all(nodes.map((node) => node.waitFor("start", (line) => line.event === "started", 15_000)));

      // A and B find each other with the advertised port, courses and a loopback address.
      expect(await a.waitFor("peer-found b", found(ids.b))).toMatchObject({
        peer: { peerId: ids.b, host: LOOPBACK, port: 41002, courses: [course("shared"), course("b-only")] },
      });
      expect(await b.waitFor("peer-found a", found(ids.a))).toMatchObject({
        peer: { peerId: ids.a, host: LOOPBACK, port: 41001, courses: [course("shared"), course("a-only")] },
      });

      // Both hear C, and report it no more than C reports them: it shares no course.
      await a.waitFor("c heard", logged("lan peer shares no course with us", ids.c));
      await b.waitFor("c heard", logged("lan peer shares no course with us", ids.c));
      expect(a.lines.filter(found(ids.c))).toEqual([]);
      expect(b.lines.filter(found(ids.c))).toEqual([]);
      expect(c.lines.filter((line) => line.event === "peer-found")).toEqual([]);

      // Junk from other software is logged at debug level and dropped.
      await sendJunk(run);
      await a.waitFor("malformed packet log", logged("ignored a malformed mDNS packet"));
      await a.waitFor("bad TXT log", logged("ignored an unreadable TXT record"));

      // Once C joins the shared course, everyone finds everyone: A survived the junk.
      c.updateCourses([course("elsewhere"), course("shared")]);
      expect(await a.waitFor("peer-found c", found(ids.c))).toMatchObject({ peer: { port: 41003, courses: [course("elsewhere"), course("shared")] } });
      await b.waitFor("peer-found c", found(ids.c));
      await c.waitFor("peer-found a", found(ids.a));
      await c.waitFor("peer-found b", found(ids.b));

      // SIGTERM: B stops cleanly and its goodbye reaches the others.
      b.kill("SIGTERM");
      expect(await b.exited).toEqual({ code: 0, signal: null });
      expect(b.lines.some((line) => line.event === "stopped")).toBe(true);
      await a.waitFor("peer-lost b", lost(ids.b), 3000);
      await c.waitFor("peer-lost b", lost(ids.b), 3000);

      // SIGKILL: no goodbye, so C is lost when its 3-second records lapse, and not before.
      expect(a.lines.filter(lost(ids.c))).toEqual([]);
      c.kill("SIGKILL");
      await c.exited;
      const killedAt = a.lines.length;
      await a.waitFor("peer-lost c", lost(ids.c), 6000);
      expect(a.lines.findIndex(lost(ids.c))).toBeGreaterThanOrEqual(killedAt);
      expect(a.lines.filter(found(ids.c))).toHaveLength(1);

      for (const node of nodes) expect(node.lines.filter((line) => line.event === "error")).toEqual([]);
    } finally {
      for (const node of nodes) node.kill("SIGKILL");
      await Promise.all(nodes.map((node) => node.exited));
    }
  }, 30_000);
});
