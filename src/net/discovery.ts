import type { RemoteInfo } from "node:dgram";
import { EventEmitter } from "node:events";
import { isIPv4 } from "node:net";
import { networkInterfaces } from "node:os";
import createMulticastDns from "multicast-dns";
import { OrdoError } from "../util/errors.js";
import { silentLogger, type Logger } from "../util/logger.js";
import {
  announcementOf,
  answerQuery,
  buildRecords,
  checkAdvertisement,
  hostNameFor,
  instanceNameFor,
  PeerTable,
  readResponse,
  SERVICE_TYPE,
  type Advertisement,
  type LanPeer,
  type Observed,
  type RecordSet,
  type TableEvent,
} from "./discovery-records.js";

export type { LanPeer } from "./discovery-records.js";

/**
 * How often to ask the LAN for ordo-sync nodes. Nodes announce themselves when they
 * start, but an announcement can be lost (Wi-Fi drops multicast readily) or can come
 * before we listened; a query every 10 s finds such nodes soon, and known-answer
 * suppression keeps the replies to nodes we do not know yet.
 */
export const DEFAULT_QUERY_INTERVAL_MS = 10_000;

/**
 * TTL of every record we advertise. A node that vanishes without a goodbye (crash, lid
 * closed, out of Wi-Fi range) is reported lost when it lapses: 2 minutes is the TTL RFC
 * 6762 gives host records, and receivers refresh well before it (at 80 %).
 */
export const DEFAULT_RECORD_TTL_SECONDS = 120;

/** How often lapsed records are dropped and refresh queries sent; cheap, and it bounds how late a lapse is seen. */
const SWEEP_INTERVAL_MS = 1000;

/** RFC 6762 §8.3: announce at least twice, one second apart, in case the first is lost. */
const ANNOUNCE_REPEAT_MS = 1000;

/** stop() waits this long at most for the goodbye to leave the socket. */
const GOODBYE_TIMEOUT_MS = 1000;

/** The same socket error (multicast-dns retries failed memberships every 5 s) is reported once a minute at most. */
const ERROR_REPEAT_MS = 60_000;

/** The mDNS port; queries from other ports are one-shot tools, not nodes. */
const MDNS_PORT = 5353;

export interface LanDiscoveryOptions {
  /** This node's peer id; also its DNS-SD instance name. Must be unique on the LAN. */
  peerId: string;
  /** The TCP port of this node's WebSocket server. */
  port: number;
  /** Course ids this node syncs; only nodes sharing at least one are reported. */
  courses: readonly string[];
  /**
   * IPv4 address of the one interface to use (for example `127.0.0.1` to keep tests on
   * loopback). Default: join the group on every IPv4 interface and send on the default one.
   */
  interface?: string;
  /** IPv4 address other nodes should dial. Default: `interface`, else every non-loopback IPv4 address of this machine. */
  host?: string;
  /** The WebSocket path, advertised as TXT `path` when given. */
  path?: string;
  logger?: Logger;
  /** Default {@link DEFAULT_QUERY_INTERVAL_MS}. */
  queryIntervalMs?: number;
  /** Default {@link DEFAULT_RECORD_TTL_SECONDS}; tests shorten it to see a lapse quickly. */
  recordTtlSeconds?: number;
}

export interface LanDiscoveryEvents {
  /** Another node that shares a course with us appeared, or its address, port, path or courses changed. */
  "peer-found": [LanPeer];
  /** A reported node said goodbye, its records lapsed, or it no longer shares a course with us. */
  "peer-lost": [{ peerId: string }];
  /** A socket error. Only emitted when someone listens; it is always logged. */
  error: [Error];
}

type MulticastDns = ReturnType<typeof createMulticastDns>;

/**
 * Finds the other ordo-sync nodes on the LAN that share a course with this one, and
 * tells them about this one, with DNS-SD over multicast DNS (service `_ordo-sync._tcp`).
 *
 * Nothing from the LAN can make it throw: unreadable packets and records are dropped
 * (logged at debug level), socket errors are logged and emitted as `error` events.
 *
 * @example
 * const discovery = new LanDiscovery({ peerId, port: 7420, courses: [courseUrl], logger });
 * discovery.on("peer-found", (peer) => dial(`ws://${peer.host}:${peer.port}${peer.path ?? "/"}`));
 * discovery.on("peer-lost", ({ peerId }) => forget(peerId));
 * await discovery.start();
 * // ...
 * await discovery.stop(); // says goodbye, so the others drop us at once
 */
export class LanDiscovery extends EventEmitter<LanDiscoveryEvents> {
  private readonly logger: Logger;
  private readonly ttlSeconds: number;
  private readonly queryIntervalMs: number;
  private readonly table: PeerTable;
  private courses: readonly string[];
  private mdns: MulticastDns | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private running = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly lastReported = new Map<string, number>();
  private conflictLogged = false;

  constructor(private readonly options: LanDiscoveryOptions) {
    super();
    this.logger = options.logger ?? silentLogger;
    this.ttlSeconds = options.recordTtlSeconds ?? DEFAULT_RECORD_TTL_SECONDS;
    this.queryIntervalMs = options.queryIntervalMs ?? DEFAULT_QUERY_INTERVAL_MS;
    this.courses = [...options.courses];
    for (const [name, address] of [["interface", options.interface], ["host", options.host]] as const) {
      if (address !== undefined && !isIPv4(address)) {
        throw new OrdoError("discovery-invalid-advertisement", `${name} ${address} is not an IPv4 address`);
      }
    }
    if (!(this.ttlSeconds >= 1) || !(this.queryIntervalMs >= 100)) {
      throw new OrdoError("discovery-invalid-advertisement", "recordTtlSeconds must be >= 1 and queryIntervalMs >= 100");
    }
    checkAdvertisement(this.advertisement());
    this.table = new PeerTable(options.peerId, this.courses);
  }

  /**
   * Opens the mDNS socket, announces this node and starts asking for others. Rejects with
   * code `discovery-bind-failed` when the socket cannot be opened. Calling it again returns
   * the same promise; after stop() it rejects with `discovery-stopped`.
   */
  start(): Promise<void> {
    if (this.stopping) return Promise.reject(new OrdoError("discovery-stopped", "LanDiscovery was stopped"));
    this.starting ??= this.open();
    return this.starting;
  }

  /**
   * Says goodbye (every record again with TTL 0, so the others drop us at once), removes
   * its listeners from the socket, closes it and clears its timers. Every step runs even
   * when one fails; calling it again returns the same promise.
   */
  stop(): Promise<void> {
    this.stopping ??= this.close();
    return this.stopping;
  }

  /**
   * Advertises a new course list (announced twice, like at start) and re-checks the known
   * nodes against it: some may now be found, others lost.
   */
  updateCourses(courses: readonly string[]): void {
    const next = [...courses];
    checkAdvertisement({ ...this.advertisement(), courses: next });
    this.courses = next;
    this.apply(this.table.setCourses(next));
    if (this.running) this.announce();
  }

  /** The nodes currently reported as found. */
  peers(): LanPeer[] {
    return this.table.peers();
  }

  private async open(): Promise<void> {
    const mdns = createMulticastDns(this.socketOptions());
    this.mdns = mdns;
    const membershipErrors: Error[] = [];
    const onStartWarning = (err: Error) => {
      if (isSocketError(err)) membershipErrors.push(err);
    };
    mdns.on("warning", onStartWarning);
    try {
      await new Promise<void>((resolve, reject) => {
        mdns.once("ready", () => {
          mdns.off("error", reject);
          resolve();
        });
        mdns.once("error", reject);
      });
      // With one interface named, failing to join the group there means we would hear nothing.
      if (this.options.interface !== undefined && membershipErrors.length > 0) throw membershipErrors[0];
    } catch (err) {
      this.mdns = undefined;
      mdns.on("error", () => {});
      destroyQuietly(mdns);
      throw new OrdoError("discovery-bind-failed", `cannot open the mDNS socket: ${errorMessage(err)}`, { cause: err });
    } finally {
      mdns.off("warning", onStartWarning);
    }
    mdns.on("query", this.onQuery);
    mdns.on("response", this.onResponse);
    mdns.on("warning", this.onWarning);
    mdns.on("error", this.onSocketError);
    for (const err of membershipErrors) this.report(err);
    this.running = true;
    this.every(this.queryIntervalMs, () => this.query());
    this.every(SWEEP_INTERVAL_MS, () => this.sweep());
    this.announce();
    this.query();
    this.logger.info(
      { peerId: this.options.peerId, port: this.options.port, interface: this.options.interface ?? "all" },
      "lan discovery started",
    );
  }

  private async close(): Promise<void> {
    await this.starting?.catch(() => {});
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const mdns = this.mdns;
    if (!mdns) return;
    if (this.running) {
      this.running = false;
      try {
        await withTimeout(this.respond({ answers: announcementOf(this.records(0)) }), GOODBYE_TIMEOUT_MS);
      } catch (err) {
        this.logger.warn({ err: errorMessage(err) }, "lan discovery could not send its goodbye");
      }
    }
    mdns.off("query", this.onQuery);
    mdns.off("response", this.onResponse);
    mdns.off("warning", this.onWarning);
    mdns.off("error", this.onSocketError);
    // A late error from the closing socket must find a listener, or EventEmitter would throw it.
    mdns.on("error", () => {});
    mdns.on("warning", () => {});
    await new Promise<void>((resolve) => destroyQuietly(mdns, resolve));
    this.mdns = undefined;
    this.logger.info({ peerId: this.options.peerId }, "lan discovery stopped");
  }

  private socketOptions(): createMulticastDns.Options {
    // Loopback on: two nodes on one machine (a teacher's laptop, tests) must hear each other.
    const common = { reuseAddr: true, loopback: true };
    if (this.options.interface === undefined) return common;
    // Linux delivers multicast only to sockets bound to the group or to the wildcard
    // address: bound to the interface's own address (multicast-dns' default), it hears nothing.
    return { ...common, interface: this.options.interface, bind: "0.0.0.0" };
  }

  private advertisement(): Advertisement {
    const { peerId, port, path } = this.options;
    const ad: Advertisement = { peerId, port, courses: this.courses, addresses: this.addresses() };
    return path === undefined ? ad : { ...ad, path };
  }

  private addresses(): string[] {
    if (this.options.host !== undefined) return [this.options.host];
    if (this.options.interface !== undefined && this.options.interface !== "0.0.0.0") return [this.options.interface];
    return Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .filter((address) => address.family === "IPv4" && !address.internal)
      .map((address) => address.address);
  }

  private records(ttlSeconds: number): RecordSet {
    return buildRecords(this.advertisement(), ttlSeconds);
  }

  private announce(): void {
    void this.respond({ answers: announcementOf(this.records(this.ttlSeconds)) });
    this.after(ANNOUNCE_REPEAT_MS, () => {
      if (this.running) void this.respond({ answers: announcementOf(this.records(this.ttlSeconds)) });
    });
  }

  /** Asks for every ordo-sync node, listing those we know well enough that they need not answer. */
  private query(extraInstances: readonly string[] = []): void {
    const questions = [
      { name: SERVICE_TYPE, type: "PTR" as const },
      ...extraInstances.flatMap((name) => [
        { name, type: "SRV" as const },
        { name, type: "TXT" as const },
      ]),
    ];
    const answers = this.table.knownAnswers(Date.now());
    void this.send((mdns, done) => mdns.query({ questions, answers }, done));
  }

  private sweep(): void {
    const now = Date.now();
    this.apply(this.table.expire(now));
    const due = this.table.dueForRefresh(now);
    if (due.length > 0) this.query(due);
  }

  private readonly onQuery = (packet: unknown, rinfo: RemoteInfo): void => {
    try {
      if (rinfo.port !== MDNS_PORT) return;
      const query = packet as { questions?: unknown; answers?: unknown };
      const reply = answerQuery(query.questions, query.answers, this.records(this.ttlSeconds));
      if (reply) void this.respond(reply);
    } catch (err) {
      this.logger.debug({ err: errorMessage(err), from: rinfo.address }, "ignored an mDNS query we could not read");
    }
  };

  private readonly onResponse = (packet: unknown, rinfo: RemoteInfo): void => {
    try {
      const observed = readResponse(packet);
      if (observed.length === 0) return;
      this.checkConflict(observed, rinfo);
      this.apply(this.table.observe(observed, rinfo.address, Date.now()));
    } catch (err) {
      this.logger.debug({ err: errorMessage(err), from: rinfo.address }, "ignored an mDNS response we could not read");
    }
  };

  /** multicast-dns reports undecodable packets and most socket errors as warnings. */
  private readonly onWarning = (err: Error): void => {
    if (isSocketError(err)) this.report(err);
    else this.logger.debug({ err: err.message }, "ignored a malformed mDNS packet");
  };

  private readonly onSocketError = (err: Error): void => this.report(err);

  /** Another process advertising our peer id (a copied data directory?) makes both nodes unreachable by name. */
  private checkConflict(observed: readonly Observed[], rinfo: RemoteInfo): void {
    if (this.conflictLogged) return;
    const instance = instanceNameFor(this.options.peerId).toLowerCase();
    const host = hostNameFor(this.options.peerId).toLowerCase();
    const clash = observed.some(
      (record) =>
        record.type === "SRV" &&
        record.instance === instance &&
        record.ttl > 0 &&
        (record.port !== this.options.port || record.target !== host),
    );
    if (clash) {
      this.conflictLogged = true;
      this.logger.warn({ peerId: this.options.peerId, from: rinfo.address }, "another node on the LAN advertises our peer id");
    }
  }

  private apply(events: readonly TableEvent[]): void {
    for (const event of events) {
      try {
        if (event.type === "found") {
          this.logger.info({ ...event.peer }, "lan peer found");
          this.emit("peer-found", event.peer);
        } else if (event.type === "lost") {
          this.logger.info({ peerId: event.peerId, reason: event.reason }, "lan peer lost");
          this.emit("peer-lost", { peerId: event.peerId });
        } else if (event.type === "ignored") {
          this.logger.debug({ peerId: event.peerId }, "lan peer shares no course with us");
        } else {
          this.logger.debug({ instance: event.instance, reason: event.reason }, "ignored an unreadable TXT record");
        }
      } catch (err) {
        this.logger.warn({ err: errorMessage(err) }, `a ${event.type} listener of lan discovery threw`);
      }
    }
  }

  /** Logs a socket error and emits it, unless the same one was reported within the last minute. */
  private report(err: Error): void {
    const now = Date.now();
    const last = this.lastReported.get(err.message);
    if (last !== undefined && now - last < ERROR_REPEAT_MS) return;
    this.lastReported.set(err.message, now);
    this.logger.warn({ err: err.message }, "lan discovery socket error");
    // EventEmitter throws an `error` nobody listens to: that would crash the process.
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }

  private respond(packet: createMulticastDns.ResponseOutgoingPacket): Promise<void> {
    return this.send((mdns, done) => mdns.respond(packet, done));
  }

  private send(transmit: (mdns: MulticastDns, done: (err: Error | null) => void) => void): Promise<void> {
    return new Promise((resolve) => {
      const mdns = this.mdns;
      if (!mdns) return resolve();
      const done = (err: Error | null) => {
        if (err) this.report(err);
        resolve();
      };
      try {
        transmit(mdns, done);
      } catch (err) {
        // dns-packet throws while encoding a record it cannot write; ours are checked, but stay safe.
        done(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private every(ms: number, run: () => void): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private after(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }
}

function isSocketError(err: Error): boolean {
  return typeof (err as NodeJS.ErrnoException).syscall === "string";
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function destroyQuietly(mdns: MulticastDns, done: () => void = () => {}): void {
  try {
    mdns.destroy(done);
  } catch {
    // The socket was never bound or is already closed: nothing left to release.
    done();
  }
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    timer.unref();
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
