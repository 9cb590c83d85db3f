import { generateAutomergeUrl, isValidAutomergeUrl, stringifyAutomergeUrl, type BinaryDocumentId } from "@automerge/automerge-repo/slim";
import { describe, expect, it } from "vitest";
import { decodeBase58Check, encodeBase58Check } from "../../src/crdt/base58check.js";
import { isVerifiedDocUrl } from "../../src/crdt/ids.js";
import { createRandom } from "../../src/util/random.js";

describe("base58check", () => {
  it("spells ids exactly as automerge-repo does, leading zeros included", () => {
    const random = createRandom(7);
    const payloads = [new Uint8Array(16), Uint8Array.from([0, 0, 1, ...new Array<number>(13).fill(255)])];
    for (let i = 0; i < 300; i++) payloads.push(Uint8Array.from({ length: 16 }, () => Math.floor(random() * 256)));
    for (const payload of payloads) {
      const ours = `automerge:${encodeBase58Check(payload)}`;
      expect(ours).toBe(stringifyAutomergeUrl(payload as BinaryDocumentId));
      expect(decodeBase58Check(ours.slice("automerge:".length))).toEqual(payload);
    }
  });

  it("rejects a changed character, a foreign character and text too short for a checksum", () => {
    for (let i = 0; i < 200; i++) {
      const url = generateAutomergeUrl();
      const at = "automerge:".length + (i % 20);
      const changed = url.slice(0, at) + (url[at] === "2" ? "3" : "2") + url.slice(at + 1);
      expect(isVerifiedDocUrl(url)).toBe(true);
      expect(isVerifiedDocUrl(changed)).toBe(isValidAutomergeUrl(changed));
    }
    expect(decodeBase58Check("0OIl")).toBeUndefined();
    expect(decodeBase58Check("é")).toBeUndefined();
    expect(decodeBase58Check("2g")).toBeUndefined();
  });
});
