import { OrdoError } from "../util/errors.js";

/**
 * Per-connection limits of the WebSocket transport. Every number a hostile or broken peer
 * could push against lives here, with its default, so that one place says how much a
 * single connection may cost the process.
 */
export interface LinkLimits {
  /** Largest frame accepted (ws `maxPayload`) and checked again before decoding. */
  maxFrameBytes: number;
  /** Deepest nesting of arrays and maps in one message. */
  maxDepth: number;
  /** Most CBOR items (values, keys, containers) in one message. */
  maxItems: number;
  /** Sustained inbound messages per second (token bucket refill rate). */
  messagesPerSecond: number;
  /** Inbound messages allowed in one burst (token bucket size). */
  messageBurst: number;
  /** Distinct document ids the remote may name over one connection. */
  maxDocuments: number;
  /** Unsent bytes queued for a remote before it is dropped as a slow consumer. */
  maxBufferedBytes: number;
  /** Time from the upgrade (or our `join`) to a valid `join` (or `peer`). */
  handshakeTimeoutMs: number;
  /** Interval between pings; a remote that misses one pong is dropped. */
  pingIntervalMs: number;
  /** Time a closing socket gets to finish the close handshake before it is destroyed. */
  closeGraceMs: number;
  /** Connections open at once from one address (upgrades under way included); more are refused with 429. */
  maxConnectionsPerAddress: number;
}

export const DEFAULT_LINK_LIMITS: Readonly<LinkLimits> = Object.freeze({
  // A sync message carries at most one document's changes; classroom documents are KBs,
  // a first sync of a large one stays well under this. ws's own default is 100 MiB.
  maxFrameBytes: 4 * 1024 * 1024,
  // Protocol messages nest 3 levels at most (remote-heads-changed); metadata a little more.
  maxDepth: 16,
  // Enough for any heads map or subscription list we send; bounds the objects a 4 MiB
  // frame of one-byte items could make (4 million of them) to a few hundred KB.
  maxItems: 10_000,
  // A cold sync of tens of thousands of documents sends a few messages per document;
  // this lets a full classroom term through while stopping floods.
  messagesPerSecond: 2_000,
  messageBurst: 10_000,
  // A term holds tens of thousands of documents; a connection naming more is scanning.
  maxDocuments: 100_000,
  // Two frames at the cap: a healthy reader drains this in well under a second on a LAN.
  maxBufferedBytes: 8 * 1024 * 1024,
  // A join is one small message right after the upgrade.
  handshakeTimeoutMs: 5_000,
  // Laptops sleep and Wi-Fi drops without a FIN; 30 s finds a dead link in under a minute.
  pingIntervalMs: 30_000,
  // Long enough for a close frame's round trip on a slow network, short enough that a
  // peer ignoring it cannot hold the socket (ws itself waits 30 s).
  closeGraceMs: 5_000,
  // A school's NAT puts hundreds of devices behind one address; thousands from one are a flood.
  maxConnectionsPerAddress: 512,
});

/** Fills in the defaults and rejects nonsense (zero, negative, NaN), so a typo fails at start. */
export function resolveLimits(overrides?: Partial<LinkLimits>): Readonly<LinkLimits> {
  const limits: LinkLimits = { ...DEFAULT_LINK_LIMITS };
  for (const [key, value] of Object.entries(overrides ?? {}) as Array<[keyof LinkLimits, unknown]>) {
    if (!(key in DEFAULT_LINK_LIMITS)) throw new OrdoError("ORDO_NET_LIMITS", `unknown limit ${key}`);
    if (value === undefined) continue;
    if (typeof value !== "number" || !(value > 0)) {
      throw new OrdoError("ORDO_NET_LIMITS", `limit ${key} must be a positive number, got ${String(value)}`);
    }
    limits[key] = value;
  }
  return Object.freeze(limits);
}

/**
 * A token bucket: `burst` tokens, refilled at `ratePerSecond`. `take()` answers whether one
 * more event fits. The clock is injected so tests need not wait.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  take(count = 1): boolean {
    const now = this.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }
}
