import * as A from "@automerge/automerge";
import { docUrlOf, type DocumentId } from "../../src/crdt/ids.js";
import type { DocStore } from "../../src/crdt/doc-store.js";
import { BUCKETS, encodeBatches, encodeSummary } from "../../src/replication/collection-codec.js";
import { demoUser } from "../../src/testing/principals.js";

/**
 * Real documents and Automerge payloads of the course the relay serves, taken once from an
 * honest node that holds it. Mutations start from these, so that a mutated message differs
 * from one the relay accepts by a little, and reaches past the first check.
 */
export interface Fixtures {
  relayPeerId: string;
  /** The assignment the honest nodes edit: fuzz connections read it and may not write it. */
  assignmentId: DocumentId;
  /** A submission of the student the fuzz connections act as: theirs to write. */
  submissionId: DocumentId;
  /** The first sync message of a peer holding nothing of a document. */
  requestData: Uint8Array;
  /** A sync message carrying a new change to the submission. */
  syncData: Uint8Array;
  /** The submission, saved whole, and its heads: an `ordo-docs` entry. */
  savedDoc: Uint8Array;
  /** The new change alone, and the heads after it: an `ordo-docs` entry of changes. */
  changeBytes: Uint8Array;
  heads: string;
  headsAfter: string;
}

/** The demo student fuzz connections authenticate as (the honest student is student 0). */
export const FUZZ_STUDENT = demoUser("student", 1);

/** A fixed actor and time: the same change bytes on every run, so a case replays byte for byte. */
const FUZZ_ACTOR = "f022f022f022f022f022f022f022f022";

export async function loadFixtures(store: DocStore, relayPeerId: string): Promise<Fixtures> {
  const assignment = (await store.records({ kind: "assignment" }))[0];
  const submission = (await store.records({ kind: "submission" })).find((record) => record.owner === FUZZ_STUDENT);
  if (assignment === undefined || submission === undefined) throw new Error("the course has no assignment or no submission of the fuzz student");
  const savedDoc = await store.export(docUrlOf(submission.id));
  if (savedDoc === undefined) throw new Error("the fuzz student's submission cannot be exported");
  const before = A.load<Record<string, unknown>>(savedDoc, { actor: FUZZ_ACTOR });
  const after = A.change(before, { time: 0 }, (draft) => {
    draft["fuzzed"] = "a change the relay may take";
  });
  const change = A.getLastLocalChange(after)!;
  const [, requestData] = A.generateSyncMessage(A.init(), A.initSyncState());
  const syncData = A.encodeSyncMessage({ heads: A.getHeads(after), need: [], have: [{ lastSync: A.getHeads(before), bloom: new Uint8Array() }], changes: [change] });
  return {
    relayPeerId,
    assignmentId: assignment.id,
    submissionId: submission.id,
    requestData: requestData!,
    syncData,
    savedDoc,
    changeBytes: change,
    heads: headsKey(A.getHeads(before)),
    headsAfter: headsKey(A.getHeads(after)),
  };
}

function headsKey(heads: string[]): string {
  return [...heads].sort().join(",");
}

export type Message = Record<string, unknown>;

/** Who sends: the fuzz connection's peer id, and whether it joined as a sequenced Ordo peer. */
export interface Sender {
  senderId: string;
  sequenced: boolean;
}

/** Every message of the protocol, as a real peer would send it, built for `sender`. */
export function realMessages(fixtures: Fixtures, sender: Sender): Array<{ name: string; message: Message }> {
  const { senderId, sequenced } = sender;
  const targetId = fixtures.relayPeerId;
  const seq = sequenced ? { ordoSeq: 1 } : {};
  const submission = fixtures.submissionId;
  const digest = encodeSummary({ kind: "digest", digest: new Uint8Array(BUCKETS * 12) });
  const entries = encodeSummary({ kind: "entries", entries: [{ id: submission, hash: "0011223344556677" }] });
  const heads = encodeSummary({ kind: "heads", heads: [{ id: submission, heads: fixtures.heads }] });
  const [wholeDoc] = encodeBatches([{ id: submission, heads: fixtures.heads, data: fixtures.savedDoc }], 1 << 22);
  const [changeBatch] = encodeBatches([{ id: submission, heads: fixtures.headsAfter, data: fixtures.changeBytes }], 1 << 22);
  const doc = (type: string, documentId: string, data: Uint8Array): Message => ({ type, senderId, targetId, documentId, data, ...seq });
  const messages: Array<{ name: string; message: Message }> = [
    { name: "join", message: { type: "join", senderId, peerMetadata: sequenced ? { ordoSeq: true, ordoCollection: 2 } : {}, supportedProtocolVersions: ["1"] } },
    { name: "request", message: doc("request", fixtures.assignmentId, fixtures.requestData) },
    { name: "sync", message: doc("sync", submission, fixtures.syncData) },
    { name: "sync-forbidden", message: doc("sync", fixtures.assignmentId, fixtures.syncData) },
    { name: "doc-unavailable", message: { type: "doc-unavailable", senderId, targetId, documentId: submission, ...seq } },
    { name: "ephemeral", message: { type: "ephemeral", senderId, targetId, documentId: submission, data: new Uint8Array([0xa0]), count: 1, sessionId: "s1" } },
    { name: "remote-subscription-change", message: { type: "remote-subscription-change", senderId, targetId, add: [senderId], remove: [] } },
    { name: "remote-heads-changed", message: { type: "remote-heads-changed", senderId, targetId, documentId: submission, newHeads: { [targetId]: { heads: fixtures.heads.split(","), timestamp: 1 } } } },
    { name: "error", message: { type: "error", senderId, targetId, message: "fuzz" } },
    { name: "leave", message: { type: "leave", senderId } },
  ];
  if (sequenced) {
    messages.push(
      { name: "ordo-summary digest", message: { type: "ordo-summary", senderId, targetId, data: digest, ...seq } },
      { name: "ordo-summary entries", message: { type: "ordo-summary", senderId, targetId, data: entries, ...seq } },
      { name: "ordo-summary heads", message: { type: "ordo-summary", senderId, targetId, data: heads, ...seq } },
      { name: "ordo-docs whole", message: { type: "ordo-docs", senderId, targetId, data: wholeDoc!, ...seq } },
      { name: "ordo-docs change", message: { type: "ordo-docs", senderId, targetId, data: changeBatch!, ...seq } },
      { name: "ordo-offered", message: { type: "ordo-offered", senderId, targetId, count: 1, ...seq } },
    );
  }
  return messages;
}
