import { buildFrame } from "./ws-frame.js";

type Random = () => number;

/** Bytes that break the WebSocket framing itself, around a message the relay would accept. */
export interface FrameAttack {
  what: string;
  bytes: Buffer;
  /** The bytes leave a frame unfinished: the case ends its side, and the relay must close. */
  unfinished: boolean;
}

/** ws's cap is the relay's frame cap, 4 MiB (`maxFrameBytes`). */
const FRAME_CAP = 4 * 1024 * 1024;

const int = (random: Random, below: number) => Math.floor(random() * below);
const pick = <T>(random: Random, items: readonly T[]): T => items[int(random, items.length)]!;

/** A frame-level attack carrying `payload` (a real message's bytes), as `random` decides. */
export function frameAttack(random: Random, payload: Uint8Array): FrameAttack {
  const maskKey = new Uint8Array([int(random, 256), int(random, 256), int(random, 256), int(random, 256)]);
  const frame = (spec: Omit<Parameters<typeof buildFrame>[0], "maskKey">) => buildFrame({ maskKey, ...spec });
  const done = (what: string, ...frames: Buffer[]): FrameAttack => ({ what, bytes: Buffer.concat(frames), unfinished: false });
  const split = (bytes: Uint8Array, parts: number) => {
    const size = Math.max(1, Math.ceil(bytes.byteLength / parts));
    return Array.from({ length: Math.ceil(bytes.byteLength / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
  };
  const kind = int(random, 22);
  switch (kind) {
    case 0: {
      const opcode = pick(random, [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]);
      return done(`reserved opcode ${opcode}`, frame({ payload, opcode }));
    }
    case 1:
      return done("an unmasked client frame", frame({ payload, opcode: 2, mask: false }));
    case 2: {
      const rsv = 1 + int(random, 7);
      return done(`RSV bits ${rsv.toString(2).padStart(3, "0")}`, frame({ payload, opcode: pick(random, [1, 2, 9]), rsv }));
    }
    case 3:
      return done("a text frame of invalid UTF-8", frame({ payload: new Uint8Array([0x7b, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff]), opcode: 1 }));
    case 4:
      return done("a text frame of valid JSON", frame({ payload: Buffer.from(JSON.stringify({ type: "join", senderId: "x" })), opcode: 1 }));
    case 5:
      return done("a continuation frame with nothing to continue", frame({ payload, opcode: 0 }));
    case 6: {
      const parts = split(payload, 2 + int(random, 20));
      const withPing = random() < 0.5;
      const frames = parts.map((part, i) => frame({ payload: part, opcode: i === 0 ? 2 : 0, fin: i === parts.length - 1 }));
      if (withPing && frames.length > 1) frames.splice(1, 0, frame({ payload: Buffer.from("mid"), opcode: 9 }));
      return done(`a real message in ${parts.length} fragments${withPing ? " with a ping between" : ""}`, ...frames);
    }
    case 7: {
      const [first, ...rest] = split(payload, 3);
      return done("a new binary frame inside a fragmented message", frame({ payload: first!, opcode: 2, fin: false }), frame({ payload: Buffer.concat(rest), opcode: 2 }));
    }
    case 8:
      return done("a fragmented ping", frame({ payload: Buffer.from("pi"), opcode: 9, fin: false }), frame({ payload: Buffer.from("ng"), opcode: 0 }));
    case 9: {
      const opcode = pick(random, [8, 9, 10]);
      return done(`a control frame (${opcode}) of 126 to 300 bytes`, frame({ payload: Buffer.alloc(126 + int(random, 175), 0x61), opcode }));
    }
    case 10: {
      const code = pick(random, [0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535]);
      const body = Buffer.alloc(2);
      body.writeUInt16BE(code);
      return done(`a close frame with code ${code}`, frame({ payload: body, opcode: 8 }));
    }
    case 11:
      return done("a close frame of one byte", frame({ payload: new Uint8Array([0x03]), opcode: 8 }));
    case 12:
      return done("a close frame with an invalid UTF-8 reason", frame({ payload: new Uint8Array([0x03, 0xe8, 0xc3, 0x28, 0xff]), opcode: 8 }));
    case 13: {
      const extra = 1 + int(random, 1 << int(random, 20));
      return { what: `a frame declaring ${extra} bytes more than it sends`, bytes: frame({ payload, opcode: 2, declaredLength: payload.byteLength + extra }), unfinished: true };
    }
    case 14: {
      const short = 1 + int(random, Math.max(1, payload.byteLength - 1));
      return done(`a frame declaring ${short} bytes fewer than it sends`, frame({ payload, opcode: 2, declaredLength: payload.byteLength - short }));
    }
    case 15: {
      const declared = pick(random, [2n ** 63n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 32n]);
      return done(`a 64-bit length of ${declared}`, frame({ payload: payload.subarray(0, 16), opcode: 2, declaredLength: declared, lengthForm: 64 }));
    }
    case 16: {
      const form = pick(random, [16, 64] as const);
      return done(`a ${form}-bit length for a small frame`, frame({ payload, opcode: 2, lengthForm: form }));
    }
    case 17: {
      const declared = FRAME_CAP + 1 + int(random, FRAME_CAP);
      return done(`a header declaring ${declared} bytes, over the cap`, frame({ payload: payload.subarray(0, 8), opcode: 2, declaredLength: declared }));
    }
    case 18: {
      // Rarely sent in full: 4 MiB per case adds up. The relay must refuse it by its header anyway.
      if (random() < 0.1) return done("a whole frame one byte over the cap", frame({ payload: Buffer.alloc(FRAME_CAP + 1, 0xa0), opcode: 2 }));
      const half = Buffer.alloc(FRAME_CAP / 2 + 1 + int(random, 1024), 0x41);
      return done("fragments together over the cap", frame({ payload: half, opcode: 2, fin: false }), frame({ payload: half, opcode: 0 }));
    }
    case 19:
      return done("an empty binary frame", frame({ payload: new Uint8Array(), opcode: 2 }));
    case 20: {
      const garbage = Buffer.alloc(1 + int(random, 64));
      for (let i = 0; i < garbage.length; i++) garbage[i] = int(random, 256);
      return { what: `${garbage.length} random bytes where a frame should start`, bytes: garbage, unfinished: true };
    }
    default:
      return done("an unsolicited pong, then the real message", frame({ payload: Buffer.from("unasked"), opcode: 10 }), frame({ payload, opcode: 2 }));
  }
}
