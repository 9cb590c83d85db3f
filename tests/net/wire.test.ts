import { cbor } from "@automerge/automerge-repo/slim";
import { describe, expect, it } from "vitest";
import { scanCbor } from "../../src/net/cbor-scan.js";
import { DEFAULT_LINK_LIMITS } from "../../src/net/limits.js";
import { decodeFrame, encodeFrame, isDocMessage, WireError, type WireProblem } from "../../src/net/wire.js";
import { DOC_A } from "./net-helpers.js";

const bytes = (...values: number[]) => new Uint8Array(values);
const stock = (message: unknown) => cbor.encode(message as object);

function expectWireError(frame: Uint8Array, problem?: WireProblem): void {
  let caught: unknown;
  try {
    decodeFrame(frame);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(WireError);
  if (problem !== undefined) expect((caught as WireError).problem).toBe(problem);
}

const sync = { type: "sync", senderId: "a", targetId: "b", documentId: DOC_A, data: bytes(1, 2, 3) };

describe("decodeFrame accepts the protocol", () => {
  it("reads every message type a stock peer sends, encoded by automerge-repo's own encoder", () => {
    const messages = [
      { type: "join", senderId: "a", peerMetadata: { storageId: undefined, isEphemeral: true }, supportedProtocolVersions: ["1"] },
      { type: "peer", senderId: "b", targetId: "a", peerMetadata: {}, selectedProtocolVersion: "1" },
      { type: "error", senderId: "b", targetId: "a", message: "unsupported protocol version" },
      { type: "leave", senderId: "a" },
      sync,
      { ...sync, type: "request" },
      { type: "doc-unavailable", senderId: "a", targetId: "b", documentId: DOC_A },
      { type: "ephemeral", senderId: "a", targetId: "b", documentId: DOC_A, data: bytes(), count: 1, sessionId: "s" },
      { type: "remote-subscription-change", senderId: "a", targetId: "b", add: ["x"], remove: [] },
      { type: "remote-heads-changed", senderId: "a", targetId: "b", documentId: DOC_A, newHeads: { s: { heads: [], timestamp: 1 } } },
    ];
    for (const message of messages) {
      expect(decodeFrame(stock(message)).type).toBe(message.type);
    }
  });

  it("gives document messages back with plain Uint8Array data and only the known fields", () => {
    const message = decodeFrame(stock({ ...sync, extra: "dropped" }));
    expect(message).toEqual(sync);
    expect(isDocMessage(message)).toBe(true);
    if (message.type === "sync") expect(message.data.constructor).toBe(Uint8Array);
  });

  it("classifies the messages it checks but does not act on as non-document messages", () => {
    const ephemeral = decodeFrame(stock({ type: "ephemeral", senderId: "a", targetId: "b", documentId: DOC_A, data: bytes(1), count: 1, sessionId: "s" }));
    expect(isDocMessage(ephemeral)).toBe(false);
  });

  it("writes frames a stock peer reads back unchanged", () => {
    expect(cbor.decode(encodeFrame(sync as never))).toEqual({ ...sync, data: Buffer.from([1, 2, 3]) });
  });

  it("carries ordoSeq on document messages", () => {
    expect(decodeFrame(stock({ ...sync, ordoSeq: 7 }))).toMatchObject({ ordoSeq: 7 });
    expectWireError(stock({ ...sync, ordoSeq: 0 }), "bad-shape");
    expectWireError(stock({ ...sync, ordoSeq: "1" }), "bad-shape");
    expectWireError(stock({ ...sync, ordoSeq: 1.5 }), "bad-shape");
  });
});

describe("decodeFrame refuses anything else with a WireError", () => {
  it("refuses the 1-byte bodies that kill a stock server (null, 5, true, 'x')", () => {
    for (const body of [bytes(0xf6), bytes(0x05), bytes(0xf5), bytes(0x61, 0x78)]) expectWireError(body);
  });

  it("refuses an empty frame and CBOR that does not decode", () => {
    expectWireError(bytes(), "empty");
    expectWireError(bytes(0xa1), "bad-cbor");
    expectWireError(bytes(0x1c), "bad-cbor");
    expectWireError(bytes(0xa1, 0x61, 0x78, 0x01, 0x00), "bad-cbor"); // trailing byte
  });

  it("refuses a frame over the cap before decoding it", () => {
    const frame = stock({ ...sync, data: new Uint8Array(2000).fill(1) });
    expect(() => decodeFrame(frame, { ...DEFAULT_LINK_LIMITS, maxFrameBytes: 1000 })).toThrow(WireError);
  });

  it("refuses values that are not a map, and an unknown type", () => {
    expectWireError(stock([sync]), "bad-shape");
    expectWireError(stock("sync"), "bad-shape");
    expectWireError(stock({ ...sync, type: "sync-all" }), "unknown-type");
    expectWireError(stock({ ...sync, type: 3 }), "bad-shape");
  });

  it("refuses peer ids that are missing, empty, too long or not strings", () => {
    expectWireError(stock({ ...sync, senderId: undefined }), "bad-shape");
    expectWireError(stock({ ...sync, senderId: "" }), "bad-shape");
    expectWireError(stock({ ...sync, targetId: "x".repeat(129) }), "bad-shape");
    expectWireError(stock({ ...sync, targetId: 12 }), "bad-shape");
    expect(decodeFrame(stock({ ...sync, targetId: "x".repeat(128) })).type).toBe("sync");
  });

  it("refuses document ids that are not short base58 strings", () => {
    for (const documentId of ["", "0OIl", "has space", "x".repeat(65), 42, undefined]) {
      expectWireError(stock({ ...sync, documentId }), "bad-shape");
    }
  });

  it("refuses sync and request data that is missing, empty or not bytes", () => {
    for (const type of ["sync", "request"]) {
      expectWireError(stock({ ...sync, type, data: bytes() }), "bad-shape");
      expectWireError(stock({ ...sync, type, data: "AQID" }), "bad-shape");
      expectWireError(stock({ ...sync, type, data: [1, 2, 3] }), "bad-shape");
      expectWireError(stock({ ...sync, type, data: undefined }), "bad-shape");
    }
  });

  it("refuses a join without protocol versions or with metadata that is not a map", () => {
    const join = { type: "join", senderId: "a", peerMetadata: {}, supportedProtocolVersions: ["1"] };
    expectWireError(stock({ ...join, supportedProtocolVersions: undefined }), "bad-shape");
    expectWireError(stock({ ...join, supportedProtocolVersions: "1" }), "bad-shape");
    expectWireError(stock({ ...join, supportedProtocolVersions: [1] }), "bad-shape");
    expectWireError(stock({ ...join, peerMetadata: [] }), "bad-shape");
    expectWireError(stock({ ...join, peerMetadata: "x" }), "bad-shape");
    expectWireError(stock({ ...join, peerMetadata: null }), "bad-shape");
  });

  it("refuses peer, error and ignored messages of the wrong shape", () => {
    expectWireError(stock({ type: "peer", senderId: "b", targetId: "a", peerMetadata: {} }), "bad-shape");
    expectWireError(stock({ type: "error", senderId: "b", targetId: "a", message: 5 }), "bad-shape");
    expectWireError(stock({ type: "ephemeral", senderId: "a", targetId: "b", documentId: DOC_A, data: "x", count: 1, sessionId: "s" }), "bad-shape");
    expectWireError(stock({ type: "remote-subscription-change", senderId: "a", targetId: "b", add: "x" }), "bad-shape");
    expectWireError(stock({ type: "remote-heads-changed", senderId: "a", targetId: "b", documentId: DOC_A, newHeads: [] }), "bad-shape");
  });
});

describe("the CBOR scan keeps hostile frames from costing memory or stack", () => {
  const limits = { maxDepth: 16, maxItems: 10_000 };

  it("refuses deep nesting without recursing (a million nested arrays)", () => {
    const frame = new Uint8Array(1_000_000).fill(0x81);
    expect(scanCbor(frame, limits)).toMatch(/nested deeper/);
    expectWireError(frame, "bad-cbor");
  });

  it("refuses more items than the limit, and containers longer than the frame", () => {
    expect(scanCbor(stock(new Array(20_000).fill(0)), limits)).toMatch(/more than/);
    expect(scanCbor(bytes(0x9a, 0xff, 0xff, 0xff, 0xff), limits)).toMatch(/longer than the frame/);
    expect(scanCbor(bytes(0x5a, 0xff, 0xff, 0xff, 0xff, 0x00), limits)).toMatch(/longer than the frame/);
  });

  it("refuses tags, indefinite lengths, odd simple values and non-text map keys", () => {
    expect(scanCbor(bytes(0xd8, 0x1c, 0x80), limits)).toBe("CBOR tag"); // shared-reference tag 28
    expect(scanCbor(bytes(0x9f, 0xff), limits)).toMatch(/indefinite/);
    expect(scanCbor(bytes(0xf8, 0x20), limits)).toMatch(/simple value/);
    expect(scanCbor(bytes(0xa1, 0x01, 0x02), limits)).toMatch(/map key/);
    expectWireError(stock(new Date()), "bad-cbor");
  });

  it("accepts what the stock encoder writes", () => {
    expect(scanCbor(stock({ ...sync, meta: { a: [1, -2, 3.5, null, true, "x"], b: undefined } }), limits)).toBeUndefined();
  });
});

describe("the one Ordo-only message", () => {
  it("reads ordo-offered with a whole count and hands it on like a document message", () => {
    const message = decodeFrame(encodeFrame({ type: "ordo-offered", senderId: "a", targetId: "b", count: 12 }));
    expect(message).toEqual({ type: "ordo-offered", senderId: "a", targetId: "b", count: 12 });
    expect(isDocMessage(message)).toBe(true);
  });

  it("refuses ordo-offered without a whole, non-negative count", () => {
    for (const count of [undefined, -1, 1.5, "3"]) expectWireError(stock({ type: "ordo-offered", senderId: "a", targetId: "b", count }), "bad-shape");
  });
});
