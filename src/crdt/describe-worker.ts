import { parentPort } from "node:worker_threads";
import * as A from "@automerge/automerge";
import { describeDocument, loadNew } from "./describe.js";
import type { DescribeRequest, DescribeResponse, Described } from "./whole-doc-describer.js";

/**
 * Loads and describes new documents off the store's thread, then frees them: the store keeps
 * the bytes as they came and needs only their records and heads.
 */
function describe(id: DescribeRequest["items"][number]["id"], data: Uint8Array): Described | null {
  let doc: A.Doc<unknown>;
  try {
    doc = loadNew(data);
  } catch {
    return null;
  }
  try {
    const heads = A.getHeads(doc);
    // Nothing applied (changes waiting for others): the store's own path keeps them queued.
    if (heads.length === 0) return null;
    return { heads, record: describeDocument(id, doc, undefined, "") };
  } catch {
    return null;
  } finally {
    A.free(doc);
  }
}

parentPort!.on("message", (request: DescribeRequest) => {
  const response: DescribeResponse = { seq: request.seq, results: request.items.map(({ id, data }) => describe(id, data)) };
  parentPort!.postMessage(response);
});
