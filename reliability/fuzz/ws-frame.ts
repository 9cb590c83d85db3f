/**
 * WebSocket frames written by hand (RFC 6455 section 5.2), so that a fuzz case can break any
 * rule a real client never breaks: a missing mask, reserved bits, reserved opcodes, a length
 * field that lies, a control frame that is too long or fragmented.
 */
export interface FrameSpec {
  payload: Uint8Array;
  /** 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong; the rest are reserved. */
  opcode: number;
  fin?: boolean;
  /** RSV1, RSV2, RSV3 as bits 4, 2, 1 of this number. */
  rsv?: number;
  /** Client frames must be masked; false sends the payload in clear. */
  mask?: boolean;
  /** The masking key; fixed per case so a replay sends the same bytes. */
  maskKey?: Uint8Array;
  /** The length the header declares, when it should not be the payload's. */
  declaredLength?: number | bigint;
  /** How the length is encoded: 7 bits, 16 bits or 64 bits; by default the shortest that fits. */
  lengthForm?: 7 | 16 | 64;
}

const DEFAULT_KEY = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);

export function buildFrame(spec: FrameSpec): Buffer {
  const { payload, opcode, fin = true, rsv = 0, mask = true, maskKey = DEFAULT_KEY } = spec;
  const declared = BigInt(spec.declaredLength ?? payload.byteLength);
  const form = spec.lengthForm ?? (declared < 126n ? 7 : declared < 65536n ? 16 : 64);
  const lengthBytes = form === 7 ? 0 : form === 16 ? 2 : 8;
  const header = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  header[1] = (mask ? 0x80 : 0) | (form === 7 ? Number(declared & 0x7fn) : form === 16 ? 126 : 127);
  if (form === 16) header.writeUInt16BE(Number(declared & 0xffffn), 2);
  if (form === 64) header.writeBigUInt64BE(BigInt.asUintN(64, declared), 2);
  if (!mask) return Buffer.concat([header, payload]);
  header.set(maskKey.subarray(0, 4), 2 + lengthBytes);
  const masked = Buffer.alloc(payload.byteLength);
  for (let i = 0; i < payload.byteLength; i++) masked[i] = payload[i]! ^ maskKey[i % 4]!;
  return Buffer.concat([header, masked]);
}

/** A well-formed masked binary frame: how every honest message travels. */
export function binaryFrame(payload: Uint8Array): Buffer {
  return buildFrame({ payload, opcode: 2 });
}

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/**
 * Reads server frames off the front of `buffer` (servers never mask). Returns the frames and
 * the bytes left over, an incomplete frame's start.
 */
export function readServerFrames(buffer: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = [];
  let offset = 0;
  for (;;) {
    if (buffer.length - offset < 2) break;
    const first = buffer[offset]!;
    let length = buffer[offset + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      if (buffer.length - offset < 4) break;
      length = buffer.readUInt16BE(offset + 2);
      header = 4;
    } else if (length === 127) {
      if (buffer.length - offset < 10) break;
      length = Number(buffer.readBigUInt64BE(offset + 2));
      header = 10;
    }
    if (buffer.length - offset < header + length) break;
    frames.push({ fin: (first & 0x80) !== 0, opcode: first & 0x0f, payload: buffer.subarray(offset + header, offset + header + length) });
    offset += header + length;
  }
  return { frames, rest: buffer.subarray(offset) };
}
