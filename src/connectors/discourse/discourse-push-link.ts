import type { Entity } from "../../crdt/schema/document.js";
import { pick } from "../import-documents.js";
import type { OutboxEntry } from "../outbox.js";
import { mappedUrl, recordInSync } from "../remote-records.js";
import { listTopics, readCategory } from "./discourse-category.js";
import { remoteTopicFields } from "./discourse-push-bases.js";
import type { PostPayload, PushContext } from "./discourse-push-context.js";
import { outgoingTitle } from "./discourse-requests.js";
import { CATEGORY_KEY, recordTopicPlace } from "./discourse-topic-records.js";

/**
 * A topic Discourse refuses because the category already has one with its title (titles are
 * unique there) is that topic: the same discussion, started in both systems, or pushed by
 * another node first, that this node has not read yet (one it has read is paired with its
 * counterpart before the push, by mirror-links.ts). The document is linked to it instead of failing. Neither side's text is
 * written over the other's: the two are taken as in step as they stand, and what either side
 * changes from then on flows to the other; replies are mirrored as for any topic.
 */

type Payload = Record<string, unknown>;

/** Links the document to the category's topic of the same title; false when there is none it may take. */
export async function linkSameTitledTopic(context: PushContext, entry: OutboxEntry, topic: Entity<"discussion_topic">): Promise<boolean> {
  const { client, db, store, instance } = context;
  const listed = await listTopics(client, (await readCategory(client, context.categoryId)).listPath);
  const wanted = outgoingTitle(topic.title).toLowerCase();
  const match = listed.find((t) => typeof t.title === "string" && t.title.trim().toLowerCase() === wanted);
  if (!match) return false;
  const topicId = String(match.id as number);
  // A topic this node already has a document for is that document's: pairing two documents,
  // with their replies and references, is mirror-links.ts's work at the start of a sync.
  const owner = await mappedUrl(db, "discourse", "topic", topicId);
  if (owner && owner !== topic.url) return false;

  const { body: view } = await client.request<Payload>("GET", `/t/${encodeURIComponent(topicId)}.json`, { query: { include_raw: "true" } });
  const first = (((view.post_stream as Payload | undefined)?.posts as PostPayload[] | undefined) ?? []).find((p) => p.post_number === 1) ?? null;
  await store.change<"discussion_topic">(topic.url, (draft) => {
    draft.external.discourse = topicId;
  });
  await context.outbox.sent(entry.id, { type: "topic", id: topicId });
  const doc = (await store.find(topic.url, { includeDeleted: true }))!;
  const category = typeof view.category_id === "number" ? String(view.category_id) : context.categoryId;
  const remote = remoteTopicFields(instance, context.course, view, first as Payload | null, category);
  const local = pick(doc, Object.keys(remote).filter((field) => field !== CATEGORY_KEY));
  await recordInSync(db, store, { system: "discourse", type: "topic", remoteId: topicId, url: topic.url, remoteVersion: first?.version != null ? String(first.version) : null, base: { local, remote } }, context.clock);
  await recordTopicPlace(db, topic.url, { firstPostId: first ? String(first.id) : null });
  return true;
}
