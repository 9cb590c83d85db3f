import { createHash } from "node:crypto";
import { isIPv4 } from "node:net";
import { OrdoError } from "../util/errors.js";

/**
 * The pure half of LAN discovery: the DNS-SD records a node advertises, the answers it gives
 * to queries, and the record cache that turns what other nodes advertise into found and lost
 * peers. No sockets and no timers here: time comes in as an argument, so every rule (TTL
 * lapse, refresh, de-duplication) is tested without the network.
 */

/** The DNS-SD service type of an ordo-sync node's WebSocket endpoint. */
export const SERVICE_TYPE = "_ordo-sync._tcp.local";

/** The DNS-SD meta-query name; answering it lets generic browsers list our service type. */
export const SERVICE_ENUMERATION = "_services._dns-sd._udp.local";

/** The TXT `v` value this code writes and the only one it reads. */
export const TXT_VERSION = "1";

/** One TXT string may hold at most 255 bytes (its length is one byte on the wire). */
const MAX_TXT_STRING_BYTES = 255;

/** A DNS label holds at most 63 bytes. */
const MAX_LABEL_BYTES = 63;
/** A peer id that can stand as its own instance label: lower case, no dots, short enough. */
const PLAIN_LABEL = new RegExp(`^[a-z0-9_-]{1,${MAX_LABEL_BYTES}}$`);

/** A node as another node sees it on the LAN: enough to dial its WebSocket. */
export interface LanPeer {
  peerId: string;
  /** An IPv4 address to connect to: the advertised A record (the one the packet came from, if several), else the packet's source. */
  host: string;
  port: number;
  /** Every course the node advertises, not only the shared ones. */
  courses: string[];
  /** The WebSocket path, when the node advertises one. */
  path?: string;
}

/** What a node says about itself. */
export interface Advertisement {
  peerId: string;
  port: number;
  courses: readonly string[];
  /** IPv4 addresses for the A records; empty lets receivers use the packet's source address. */
  addresses: readonly string[];
  path?: string;
}

/** The records we send, in the shapes multicast-dns (dns-packet) encodes. */
export type OrdoRecord =
  | { name: string; type: "PTR"; ttl: number; data: string }
  | { name: string; type: "SRV"; ttl: number; flush: true; data: { port: number; target: string } }
  | { name: string; type: "TXT"; ttl: number; flush: true; data: string[] }
  | { name: string; type: "A"; ttl: number; flush: true; data: string };

export interface RecordSet {
  ptr: OrdoRecord & { type: "PTR" };
  enumeration: OrdoRecord & { type: "PTR" };
  srv: OrdoRecord & { type: "SRV" };
  txt: OrdoRecord & { type: "TXT" };
  a: (OrdoRecord & { type: "A" })[];
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

function shortHash(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex").slice(0, 12);
}

/**
 * The DNS label of a node's service instance. The peer id itself when it is a plain
 * lowercase label; otherwise a readable prefix plus a hash of the id. DNS compares names
 * case-insensitively and cannot hold dots or more than 63 bytes in a label, so two ids that
 * differ only in case, or long ids sharing a prefix, would otherwise overwrite each other
 * in every cache. The TXT `peer` field always carries the exact id.
 */
export function instanceLabelFor(peerId: string): string {
  if (PLAIN_LABEL.test(peerId)) return peerId;
  const prefix = peerId
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .slice(0, 40);
  return `${prefix}-${shortHash(peerId)}`.replace(/^-+/, "");
}

export function instanceNameFor(peerId: string): string {
  return `${instanceLabelFor(peerId)}.${SERVICE_TYPE}`;
}

/** A host name of our own for the SRV target, so that it never clashes with the machine's name. */
export function hostNameFor(peerId: string): string {
  return `ordo-${shortHash(peerId)}.local`;
}

/** Throws (a programming error, not bad input from the LAN) when a value cannot be advertised. */
export function checkAdvertisement(ad: Advertisement): void {
  const fail = (message: string): never => {
    throw new OrdoError("discovery-invalid-advertisement", message);
  };
  if (ad.peerId === "" || byteLength(`peer=${ad.peerId}`) > MAX_TXT_STRING_BYTES) {
    fail(`peer id must be 1 to ${MAX_TXT_STRING_BYTES - 5} bytes`);
  }
  if (!Number.isInteger(ad.port) || ad.port < 1 || ad.port > 65535) fail(`port ${ad.port} is not a TCP port`);
  for (const course of ad.courses) {
    // Each id must fit in one chunk string by itself (`coursesNN=` leaves 245 bytes).
    if (course === "" || course.includes(",") || byteLength(course) > MAX_TXT_STRING_BYTES - 10) {
      fail(`course id ${JSON.stringify(course)} is empty, has a comma or is longer than 245 bytes`);
    }
  }
  for (const address of ad.addresses) if (!isIPv4(address)) fail(`${address} is not an IPv4 address`);
  if (ad.path !== undefined && (!ad.path.startsWith("/") || byteLength(`path=${ad.path}`) > MAX_TXT_STRING_BYTES)) {
    fail(`path must start with "/" and be at most ${MAX_TXT_STRING_BYTES - 5} bytes`);
  }
}

/**
 * The TXT strings: `v=1`, `peer=<id>`, the courses, and `path=` when given.
 *
 * Courses go in one `courses=a,b,c` string when it fits in 255 bytes. A longer list is
 * split into `courses0=...`, `courses1=...`, each holding whole ids, so a reader never
 * has to glue an id back together and no id is lost to a length limit. Hashing the ids
 * would keep the record small but would hide from a peer which courses the other has.
 * Very long lists make a packet larger than one Ethernet frame; it still arrives as IP
 * fragments on ordinary LANs.
 */
export function encodeTxt(ad: Advertisement): string[] {
  const strings = [`v=${TXT_VERSION}`, `peer=${ad.peerId}`];
  const single = `courses=${ad.courses.join(",")}`;
  if (byteLength(single) <= MAX_TXT_STRING_BYTES) {
    strings.push(single);
  } else {
    const chunks: string[][] = [[]];
    for (const course of ad.courses) {
      const current = chunks[chunks.length - 1]!;
      const key = `courses${chunks.length - 1}=`;
      if (current.length > 0 && byteLength(key + [...current, course].join(",")) > MAX_TXT_STRING_BYTES) {
        chunks.push([course]);
      } else {
        current.push(course);
      }
    }
    chunks.forEach((chunk, index) => strings.push(`courses${index}=${chunk.join(",")}`));
  }
  if (ad.path !== undefined) strings.push(`path=${ad.path}`);
  return strings;
}

/** What a node's TXT record says, once checked. */
export interface TxtFields {
  peerId: string;
  courses: string[];
  path?: string;
}

export type TxtReading = { ok: true; fields: TxtFields } | { ok: false; reason: string };

/**
 * Reads TXT data as dns-packet decodes it (usually an array of Buffers) from any software
 * on the LAN. Keys are case-insensitive and the first occurrence wins (RFC 6763 §6.4).
 * Never throws: anything unexpected comes back as `{ ok: false, reason }`.
 */
export function decodeTxt(data: unknown): TxtReading {
  const parts = Array.isArray(data) ? (data as unknown[]) : [data];
  const fields = new Map<string, string>();
  for (const part of parts) {
    let text: string;
    if (typeof part === "string") text = part;
    else if (Buffer.isBuffer(part)) text = part.toString("utf8");
    else return { ok: false, reason: "TXT data is neither text nor bytes" };
    const equals = text.indexOf("=");
    const key = (equals < 0 ? text : text.slice(0, equals)).toLowerCase();
    if (key === "" || fields.has(key)) continue;
    fields.set(key, equals < 0 ? "" : text.slice(equals + 1));
  }
  const version = fields.get("v");
  if (version !== TXT_VERSION) return { ok: false, reason: `unsupported TXT version ${JSON.stringify(version)}` };
  const peerId = fields.get("peer");
  if (!peerId) return { ok: false, reason: "TXT has no peer id" };

  const lists: string[] = [];
  if (fields.has("courses")) lists.push(fields.get("courses")!);
  for (let index = 0; fields.has(`courses${index}`); index++) lists.push(fields.get(`courses${index}`)!);
  if (lists.length === 0) return { ok: false, reason: "TXT has no courses" };
  const courses = [...new Set(lists.flatMap((list) => list.split(",")).filter((course) => course !== ""))];

  const path = fields.get("path");
  return { ok: true, fields: path?.startsWith("/") ? { peerId, courses, path } : { peerId, courses } };
}

/** Every record of a node, each with the given TTL (0 for a goodbye). */
export function buildRecords(ad: Advertisement, ttlSeconds: number): RecordSet {
  const instance = instanceNameFor(ad.peerId);
  const host = hostNameFor(ad.peerId);
  return {
    // PTRs are shared records (many nodes answer for the type): no cache-flush bit.
    ptr: { name: SERVICE_TYPE, type: "PTR", ttl: ttlSeconds, data: instance },
    enumeration: { name: SERVICE_ENUMERATION, type: "PTR", ttl: ttlSeconds, data: SERVICE_TYPE },
    // The rest belong to this node alone: the cache-flush bit makes receivers replace old values.
    srv: { name: instance, type: "SRV", ttl: ttlSeconds, flush: true, data: { port: ad.port, target: host } },
    txt: { name: instance, type: "TXT", ttl: ttlSeconds, flush: true, data: encodeTxt(ad) },
    a: ad.addresses.map((address) => ({ name: host, type: "A", ttl: ttlSeconds, flush: true, data: address })),
  };
}

/** All records, as one unsolicited announcement (or, with TTL 0, a goodbye). */
export function announcementOf(records: RecordSet): OrdoRecord[] {
  return [records.ptr, records.srv, records.txt, ...records.a, records.enumeration];
}

function sameName(a: unknown, b: string): boolean {
  return typeof a === "string" && a.toLowerCase() === b.toLowerCase();
}

/**
 * The response to a query, or undefined when we have nothing to say. A querier that lists
 * our PTR among its known answers with at least half its TTL left already has it and gets
 * no reply (known-answer suppression, RFC 6762 §7.1): a classroom of nodes querying every
 * few seconds would otherwise answer each other in a storm.
 */
export function answerQuery(
  questions: unknown,
  knownAnswers: unknown,
  records: RecordSet,
): { answers: OrdoRecord[]; additionals: OrdoRecord[] } | undefined {
  if (!Array.isArray(questions)) return undefined;
  const known = Array.isArray(knownAnswers) ? (knownAnswers as unknown[]) : [];
  const ptrKnown = known.some((record) => {
    const r = record as { name?: unknown; type?: unknown; data?: unknown; ttl?: unknown } | null;
    return (
      r?.type === "PTR" &&
      sameName(r.name, records.ptr.name) &&
      sameName(r.data, records.ptr.data) &&
      typeof r.ttl === "number" &&
      r.ttl >= records.ptr.ttl / 2
    );
  });
  const answers = new Set<OrdoRecord>();
  const additionals = new Set<OrdoRecord>();
  for (const question of questions as unknown[]) {
    const q = question as { name?: unknown; type?: unknown } | null;
    if (typeof q?.name !== "string") continue;
    const any = q.type === "ANY";
    if (sameName(q.name, SERVICE_TYPE) && (any || q.type === "PTR")) {
      if (ptrKnown) continue;
      answers.add(records.ptr);
      for (const record of [records.srv, records.txt, ...records.a]) additionals.add(record);
    } else if (sameName(q.name, records.srv.name)) {
      if (any || q.type === "SRV") answers.add(records.srv);
      if (any || q.type === "TXT") answers.add(records.txt);
      if (any || q.type === "SRV") for (const record of records.a) additionals.add(record);
    } else if (sameName(q.name, records.srv.data.target) && (any || q.type === "A")) {
      for (const record of records.a) answers.add(record);
    } else if (sameName(q.name, SERVICE_ENUMERATION) && (any || q.type === "PTR")) {
      answers.add(records.enumeration);
    }
  }
  if (answers.size === 0) return undefined;
  for (const record of answers) additionals.delete(record);
  return { answers: [...answers], additionals: [...additionals] };
}

/** A record from the LAN that concerns ordo-sync, checked; everything else is dropped. */
export type Observed =
  | { type: "PTR"; instance: string; ttl: number }
  | { type: "SRV"; instance: string; ttl: number; port: number; target: string }
  | { type: "TXT"; instance: string; ttl: number; reading: TxtReading }
  | { type: "A"; host: string; ttl: number; address: string };

const INSTANCE_SUFFIX = `.${SERVICE_TYPE}`;

function isInstanceName(name: string): boolean {
  return name.length > INSTANCE_SUFFIX.length && name.endsWith(INSTANCE_SUFFIX);
}

/**
 * The ordo-sync records of a decoded response packet, names lowercased. Records of other
 * services, of unknown shape or with impossible values are skipped; never throws.
 */
export function readResponse(packet: unknown): Observed[] {
  const p = packet as { answers?: unknown; additionals?: unknown } | null;
  const all = [
    ...(Array.isArray(p?.answers) ? (p.answers as unknown[]) : []),
    ...(Array.isArray(p?.additionals) ? (p.additionals as unknown[]) : []),
  ];
  const observed: Observed[] = [];
  for (const raw of all) {
    const r = raw as { name?: unknown; type?: unknown; ttl?: unknown; data?: unknown } | null;
    if (typeof r?.name !== "string" || typeof r.ttl !== "number" || !(r.ttl >= 0)) continue;
    const name = r.name.toLowerCase();
    const ttl = r.ttl;
    if (r.type === "PTR" && name === SERVICE_TYPE && typeof r.data === "string" && isInstanceName(r.data.toLowerCase())) {
      observed.push({ type: "PTR", instance: r.data.toLowerCase(), ttl });
    } else if (r.type === "SRV" && isInstanceName(name)) {
      const data = r.data as { port?: unknown; target?: unknown } | null;
      const port = data?.port;
      const target = data?.target;
      if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) continue;
      if (typeof target !== "string" || target === "") continue;
      observed.push({ type: "SRV", instance: name, ttl, port, target: target.toLowerCase() });
    } else if (r.type === "TXT" && isInstanceName(name)) {
      observed.push({ type: "TXT", instance: name, ttl, reading: decodeTxt(r.data) });
    } else if (r.type === "A" && typeof r.data === "string" && isIPv4(r.data)) {
      observed.push({ type: "A", host: name, ttl, address: r.data });
    }
  }
  return observed;
}

export type TableEvent =
  | { type: "found"; peer: LanPeer }
  | { type: "lost"; peerId: string; reason: "goodbye" | "expired" | "no-shared-course" }
  /** A complete, live node we do not report because it shares no course with us. */
  | { type: "ignored"; peerId: string }
  /** A TXT record we cannot read; logged at debug level by the caller. */
  | { type: "malformed"; instance: string; reason: string };

interface Timed {
  expiresAt: number;
}

interface InstanceEntry {
  ptr?: Timed & { ttlMs: number };
  srv?: Timed & { port: number; target: string; receivedAt: number; ttlMs: number };
  txt?: Timed & { fields: TxtFields };
  /** The source address of the last packet about this instance. */
  referer: string;
  /** Refresh queries sent since the last SRV arrived. */
  refreshQueries: number;
  /** What we last reported, if the node is currently reported as found. */
  reported?: LanPeer;
  /** The peer id we last logged as ignored, so the log says it once. */
  ignored?: string;
}

/**
 * When to ask for a record again, as shares of its TTL: RFC 6762 §5.2 asks at 80, 85, 90
 * and 95 %, so that one lost packet does not make a live node look gone.
 */
const REFRESH_AT = [0.8, 0.85, 0.9, 0.95];

/**
 * Limits on what other software on the LAN can make us keep: a record claiming a TTL of
 * years, or a flood of made-up instances, must not grow the cache without end. 4500 s is
 * the TTL RFC 6762 §10 recommends for service records; 1024 nodes is more than any room.
 */
const MAX_ACCEPTED_TTL_SECONDS = 4500;
const MAX_INSTANCES = 1024;

/**
 * Known answers listed in one query. 100 PTRs keep the packet under the 9000 bytes RFC
 * 6762 §17 allows; nodes beyond them simply answer, which costs traffic, not correctness.
 */
const MAX_KNOWN_ANSWERS = 100;

/**
 * The cache of other nodes' records. It reports a node once it knows its SRV and a
 * readable TXT and the node shares a course with us; again only when what it would
 * report changes; and as lost on a goodbye (TTL 0), when a record's TTL lapses, or when
 * it no longer shares a course.
 */
export class PeerTable {
  private readonly instances = new Map<string, InstanceEntry>();
  private readonly hosts = new Map<string, Map<string, number>>();
  private courses: Set<string>;

  constructor(
    private readonly selfPeerId: string,
    courses: readonly string[],
  ) {
    this.courses = new Set(courses);
  }

  /** Applies the records of one response packet from `referer`; returns what changed. */
  observe(records: readonly Observed[], referer: string, now: number): TableEvent[] {
    const events: TableEvent[] = [];
    const touched = new Set<string>();
    const selfInstance = instanceNameFor(this.selfPeerId).toLowerCase();
    // SRV and TXT first, so that the A records of this packet find their SRV target.
    const ordered = [...records].sort((a, b) => Number(a.type === "A") - Number(b.type === "A"));
    for (const record of ordered) {
      if (record.type === "A") {
        this.observeAddress(record, now, touched);
        continue;
      }
      if (record.instance === selfInstance) continue;
      if (record.ttl === 0) {
        this.forget(record.instance, "goodbye", events);
        continue;
      }
      let entry = this.instances.get(record.instance);
      if (!entry) {
        if (this.instances.size >= MAX_INSTANCES) continue;
        entry = { referer, refreshQueries: 0 };
      }
      entry.referer = referer;
      const ttlMs = Math.min(record.ttl, MAX_ACCEPTED_TTL_SECONDS) * 1000;
      if (record.type === "PTR") {
        entry.ptr = { expiresAt: now + ttlMs, ttlMs };
      } else if (record.type === "SRV") {
        entry.srv = { expiresAt: now + ttlMs, port: record.port, target: record.target, receivedAt: now, ttlMs };
        entry.refreshQueries = 0;
      } else if (!record.reading.ok) {
        events.push({ type: "malformed", instance: record.instance, reason: record.reading.reason });
        continue;
      } else {
        entry.txt = { expiresAt: now + ttlMs, fields: record.reading.fields };
      }
      this.instances.set(record.instance, entry);
      touched.add(record.instance);
    }
    for (const instance of touched) this.reconcile(instance, events);
    return events;
  }

  /** Drops lapsed records; returns the nodes lost with them. */
  expire(now: number): TableEvent[] {
    const events: TableEvent[] = [];
    for (const [host, addresses] of this.hosts) {
      for (const [address, expiresAt] of addresses) if (expiresAt <= now) addresses.delete(address);
      if (addresses.size === 0) this.hosts.delete(host);
    }
    for (const [instance, entry] of [...this.instances]) {
      // The PTR only lists the instance: other nodes' SRV queries can refresh SRV and TXT
      // without it, so its lapse alone does not mean the node is gone.
      if (entry.ptr && entry.ptr.expiresAt <= now) entry.ptr = undefined;
      const lapsed = [entry.srv, entry.txt].some((record) => record !== undefined && record.expiresAt <= now);
      if (lapsed) this.forget(instance, "expired", events);
      else if (!entry.ptr && !entry.srv && !entry.txt) this.instances.delete(instance);
      // A lapsed A record can change the address we report.
      else this.reconcile(instance, events);
    }
    return events;
  }

  /**
   * Instances to ask for (again) now: those listed by a PTR whose SRV or TXT we lack (asked
   * once), and those whose SRV is past the next refresh point of its TTL. A node that died
   * is asked for four times, then expires.
   */
  dueForRefresh(now: number): string[] {
    const due: string[] = [];
    for (const [instance, entry] of this.instances) {
      if (!entry.srv || !entry.txt) {
        if (entry.refreshQueries === 0) {
          entry.refreshQueries = 1;
          due.push(instance);
        }
        continue;
      }
      const share = REFRESH_AT[entry.refreshQueries];
      if (share !== undefined && now >= entry.srv.receivedAt + entry.srv.ttlMs * share) {
        entry.refreshQueries++;
        due.push(instance);
      }
    }
    return due;
  }

  /** The PTRs we hold with more than half their TTL left, to list as known answers in a query. */
  knownAnswers(now: number): { name: string; type: "PTR"; ttl: number; data: string }[] {
    const known: { name: string; type: "PTR"; ttl: number; data: string }[] = [];
    for (const [instance, entry] of this.instances) {
      if (!entry.ptr) continue;
      const leftMs = entry.ptr.expiresAt - now;
      if (leftMs > entry.ptr.ttlMs / 2) known.push({ name: SERVICE_TYPE, type: "PTR", ttl: Math.floor(leftMs / 1000), data: instance });
      if (known.length >= MAX_KNOWN_ANSWERS) break;
    }
    return known;
  }

  /** Our own courses changed: nodes may start or stop sharing one with us. */
  setCourses(courses: readonly string[]): TableEvent[] {
    this.courses = new Set(courses);
    const events: TableEvent[] = [];
    for (const instance of this.instances.keys()) this.reconcile(instance, events);
    return events;
  }

  /** The nodes currently reported as found. */
  peers(): LanPeer[] {
    return [...this.instances.values()].flatMap((entry) => (entry.reported ? [entry.reported] : []));
  }

  private observeAddress(record: Observed & { type: "A" }, now: number, touched: Set<string>): void {
    // Only hosts some node names as its SRV target: the LAN's other A records are not ours to keep.
    const owners = [...this.instances].filter(([, entry]) => entry.srv?.target === record.host);
    if (owners.length === 0) return;
    const addresses = this.hosts.get(record.host) ?? new Map<string, number>();
    if (record.ttl === 0) addresses.delete(record.address);
    else addresses.set(record.address, now + Math.min(record.ttl, MAX_ACCEPTED_TTL_SECONDS) * 1000);
    if (addresses.size > 0) this.hosts.set(record.host, addresses);
    else this.hosts.delete(record.host);
    for (const [instance] of owners) touched.add(instance);
  }

  private forget(instance: string, reason: "goodbye" | "expired", events: TableEvent[]): void {
    const entry = this.instances.get(instance);
    if (!entry) return;
    this.instances.delete(instance);
    if (entry.srv && ![...this.instances.values()].some((other) => other.srv?.target === entry.srv?.target)) {
      this.hosts.delete(entry.srv.target);
    }
    if (entry.reported) events.push({ type: "lost", peerId: entry.reported.peerId, reason });
  }

  private reconcile(instance: string, events: TableEvent[]): void {
    const entry = this.instances.get(instance);
    if (!entry) return;
    const view = this.viewOf(entry);
    if (view === undefined) return;
    const shares = view.courses.some((course) => this.courses.has(course));
    if (!shares || view.peerId === this.selfPeerId) {
      if (entry.reported) events.push({ type: "lost", peerId: entry.reported.peerId, reason: "no-shared-course" });
      entry.reported = undefined;
      if (entry.ignored !== view.peerId && view.peerId !== this.selfPeerId) events.push({ type: "ignored", peerId: view.peerId });
      entry.ignored = view.peerId;
      return;
    }
    entry.ignored = undefined;
    if (entry.reported && samePeer(entry.reported, view)) return;
    // A node whose TXT now names another peer id is, to the listener, a different node.
    if (entry.reported && entry.reported.peerId !== view.peerId) {
      events.push({ type: "lost", peerId: entry.reported.peerId, reason: "goodbye" });
    }
    entry.reported = view;
    events.push({ type: "found", peer: view });
  }

  private viewOf(entry: InstanceEntry): LanPeer | undefined {
    if (!entry.srv || !entry.txt) return undefined;
    const addresses = [...(this.hosts.get(entry.srv.target)?.keys() ?? [])].sort();
    const host = addresses.includes(entry.referer) ? entry.referer : (addresses[0] ?? entry.referer);
    const { peerId, courses, path } = entry.txt.fields;
    return path === undefined ? { peerId, host, port: entry.srv.port, courses } : { peerId, host, port: entry.srv.port, courses, path };
  }
}

function samePeer(a: LanPeer, b: LanPeer): boolean {
  return (
    a.peerId === b.peerId &&
    a.host === b.host &&
    a.port === b.port &&
    a.path === b.path &&
    a.courses.length === b.courses.length &&
    a.courses.every((course, index) => course === b.courses[index])
  );
}
