import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import type { Kind } from "../../crdt/schema/kinds.js";
import type { Clock } from "../../util/clock.js";
import type { ConnectorTables } from "../connector-tables.js";
import type { HttpClient } from "../http-client.js";
import { importDocument, importRemote, type ImportContext, type IncomingDocument } from "../import-documents.js";
import { Outbox } from "../outbox.js";
import { emptyPullResult, type PullResult } from "../pull-result.js";
import { bareListPath, listTopics, readCategory, type CategoryInfo } from "./discourse-category.js";
import * as map from "./discourse-mapping.js";
import { markMissingPosts, tombstoneMissingTopics, type DeletionContext } from "./discourse-pull-deletions.js";
import { recordTopicPlace } from "./discourse-topic-records.js";

type Payload = Record<string, unknown>;

/** Post ids asked for per `/t/{id}/posts.json` call: Discourse's own `chunk_size`. */
export const DEFAULT_POST_CHUNK = 20;

export interface DiscoursePullOptions {
  client: HttpClient;
  instance: map.DiscourseInstance;
  store: DocStore;
  db: Kysely<ConnectorTables>;
  /** The Discourse category configured for this node's course. */
  categoryId: string | number;
  /** The course document the category's topics belong to. */
  course: DocUrl;
  postChunk?: number;
  onProgress?: (done: number, stage: string) => void;
  /** Where a document whose clash the strategy settled for the local side is queued for Discourse. */
  outbox?: Outbox;
  clock?: Clock;
}

/** What a pulled topic or post is on the Discourse side, beside its document fields. */
interface RemoteFacts {
  version: string | null;
  /** When it last changed there, for the `prefer_recent` strategy. */
  changedAt: string | null;
}

/**
 * Pulls a Discourse category into documents: every topic of its listing (all pages), every
 * post of each topic's stream (all chunks), and the posts' authors. It writes only what
 * differs, so a second pull of an unchanged forum changes nothing. Topics and posts are
 * edited on both sides: each is reconciled with its document against the sync bases (see
 * `importRemote`), so a pull never overwrites a local edit not yet sent, and a clash is settled
 * by the course's strategy and recorded. A topic or post pushed from here updates the document
 * it was pushed from. A topic missing from a listing read in full is tombstoned with its posts;
 * a reply missing from a stream read in full (a staff delete takes it out of `stream`) stays
 * as a placeholder marked `deleted`. Never throws: each failure is a per-record result.
 *
 * @example
 * const result = await pullDiscourseCategory({ client, instance, store: engine.docs, db: connectorDb(engine.db), categoryId: 12, course });
 */
export async function pullDiscourseCategory(options: DiscoursePullOptions): Promise<PullResult> {
  const { client, instance, store, db, course } = options;
  const categoryId = String(options.categoryId);
  const chunk = options.postChunk ?? DEFAULT_POST_CHUNK;
  const result = emptyPullResult();
  let done = 0;
  const seen = new Map<map.DiscourseType, Set<string>>();
  /** Topics whose whole stream was read: only their missing posts are taken as deleted. */
  const fullTopics = new Set<string>();

  const failed = (what: string, error: unknown): void => void result.failed.push({ what, error: (error as Error).message });
  const mark = (type: map.DiscourseType, remoteId: string): void => {
    const ids = seen.get(type) ?? new Set<string>();
    ids.add(remoteId);
    seen.set(type, ids);
  };
  const context: ImportContext = { store, db, outbox: options.outbox ?? new Outbox(db, options.clock), ...(options.clock ? { clock: options.clock } : {}) };
  let mapped: map.MappedUrls = new Map();
  /** Users only Discourse writes; topics and posts, which both sides edit, through `importRemote`. */
  const take = async (type: map.DiscourseType, remoteId: string, derived: IncomingDocument<Kind>, facts?: RemoteFacts): Promise<DocUrl | null> => {
    let url: DocUrl | null = null;
    try {
      // A topic or post pushed from here is already a document: the pull updates that one.
      const incoming = { ...derived, url: mapped.get(`${type}/${remoteId}`) ?? derived.url };
      if (facts) {
        result[await importRemote(context, { ...incoming, system: "discourse", type, remoteId, remoteVersion: facts.version, remoteTime: facts.changedAt })]++;
      } else {
        result[await importDocument(store, incoming)]++;
        await db
          .insertInto("remote_ids")
          .values({ system: "discourse", remote_type: type, remote_id: remoteId, doc_url: incoming.url })
          .onConflict((oc) => oc.columns(["system", "remote_type", "remote_id"]).doUpdateSet({ doc_url: incoming.url }))
          .execute();
      }
      mark(type, remoteId);
      url = incoming.url;
    } catch (error) {
      failed(`${type} ${remoteId}`, error);
    }
    options.onProgress?.(++done, type);
    return url;
  };

  // The category's "About the …" topic describes the category; it is no discussion.
  let category: CategoryInfo = { aboutTopicId: null, listPath: bareListPath(categoryId) };
  try {
    category = await readCategory(client, categoryId);
    await recordCourseCategory(db, course, categoryId);
  } catch (error) {
    failed(`category ${categoryId}`, error);
  }
  // By its id when the category names it; by Discourse's title for it only when it does not.
  const isAbout = (t: Payload): boolean => (category.aboutTopicId !== null ? String(t.id) === category.aboutTopicId : text(t.title).startsWith("About the "));

  let topics: Payload[] = [];
  let listedInFull = false;
  try {
    topics = await listTopics(client, category.listPath);
    listedInFull = true;
  } catch (error) {
    result.incomplete.push(`topics of category ${categoryId}`);
    failed(`topics of category ${categoryId}`, error);
  }

  mapped = await pushedObjects();
  const unconfirmed = await unconfirmedCreates(db);
  /**
   * A topic or post one of this node's creates made before the node could record it (the
   * answer was lost, or a moderator approved it since): it is that create's document, which
   * the next push records by the key its raw carries. A document of its own made now would be a
   * copy, and a copy mirrored to Canvas before the push drops it stays there for good.
   */
  const madeHereUnrecorded = (post: Payload | null): boolean => unconfirmed.has(map.sendMarkKey(text(post?.raw)) ?? "");
  const users = new Set<string>();
  for (const listed of topics) {
    if (isAbout(listed)) continue;
    const topicId = String(listed.id);
    // A topic that is listed is present, even if reading it fails now.
    mark("topic", topicId);
    await pullTopic(topicId);
  }

  const deletions: DeletionContext = { db, store, course, result, failed, ...(options.clock ? { clock: options.clock } : {}) };
  if (listedInFull) await tombstoneMissingTopics(deletions, seen.get("topic") ?? new Set());
  await markMissingPosts(deletions, new Set([...fullTopics].map((id) => map.refOf(instance, "topic", id, mapped)).filter((url): url is DocUrl => url !== null)), seen.get("post") ?? new Set());
  return result;

  async function pullTopic(topicId: string): Promise<void> {
    const path = `/t/${encodeURIComponent(topicId)}`;
    let view: Payload;
    try {
      view = (await client.request<Payload>("GET", `${path}.json`, { query: { include_raw: "true" } })).body;
    } catch (error) {
      result.incomplete.push(`topic ${topicId}`);
      failed(`topic ${topicId}`, error);
      return;
    }
    const stream = (view.post_stream as Payload | undefined) ?? {};
    const ids = (Array.isArray(stream.stream) ? (stream.stream as unknown[]) : []).map(String);
    const byId = new Map<string, Payload>();
    for (const post of (stream.posts as Payload[] | undefined) ?? []) byId.set(String(post.id), post);
    let complete = true;
    const missing = ids.filter((id) => !byId.has(id));
    for (let i = 0; i < missing.length; i += chunk) {
      const ask = missing.slice(i, i + chunk);
      try {
        const { body } = await client.request<{ post_stream?: { posts?: Payload[] } }>("GET", `${path}/posts.json`, { query: { "post_ids[]": ask, include_raw: "true" } });
        for (const post of body.post_stream?.posts ?? []) byId.set(String(post.id), post);
      } catch (error) {
        complete = false;
        failed(`posts of topic ${topicId}`, error);
      }
    }
    if (!complete || ids.some((id) => !byId.has(id))) result.incomplete.push(`posts of topic ${topicId}`);
    else fullTopics.add(topicId);

    const posts = ids.map((id) => byId.get(id)).filter((p): p is Payload => p !== undefined);
    const numbers = new Map<number, string>();
    for (const post of posts) if (typeof post.post_number === "number") numbers.set(post.post_number, String(post.id));
    for (const post of posts) {
      const author = map.postAuthor(post);
      if (author === null || users.has(String(author.id))) continue;
      users.add(String(author.id));
      await take("user", String(author.id), map.userFrom(instance, author));
    }
    const first = posts.find((p) => p.post_number === 1) ?? null;
    if (madeHereUnrecorded(first)) {
      // Its replies wait with it: they belong to the document the push is about to record.
      fullTopics.delete(topicId);
      result.deferred++;
      return;
    }
    const topicUrl = await take("topic", topicId, map.topicFrom(instance, course, view, first), facts(first, view.created_at));
    if (topicUrl !== null) {
      try {
        await recordTopicPlace(db, topicUrl, { firstPostId: first ? String(first.id as number) : null, categoryId: typeof view.category_id === "number" ? view.category_id : categoryId });
      } catch (error) {
        failed(`topic ${topicId}`, error);
      }
    }
    for (const post of posts) {
      if (post === first) continue;
      if (madeHereUnrecorded(post)) {
        mark("post", String(post.id));
        result.deferred++;
        continue;
      }
      await take("post", String(post.id), map.postFrom(instance, course, topicId, post, numbers, mapped), facts(post, post.created_at));
    }
  }

  /** Topics and posts whose documents are not at the URL their identity gives: those pushed from here. */
  async function pushedObjects(): Promise<map.MappedUrls> {
    const rows = await db.selectFrom("remote_ids").select(["remote_type", "remote_id", "doc_url"]).where("system", "=", "discourse").where("remote_type", "in", ["topic", "post"]).execute();
    const pushed = new Map<string, DocUrl>();
    for (const row of rows) {
      const type = row.remote_type as map.DiscourseType;
      if (row.doc_url !== map.urlOf(instance, type, row.remote_id)) pushed.set(`${type}/${row.remote_id}`, row.doc_url as DocUrl);
    }
    return pushed;
  }
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");

/** The keys of this node's creates Discourse may hold unrecorded: sent with the answer lost, or waiting for a moderator. */
async function unconfirmedCreates(db: Kysely<ConnectorTables>): Promise<Set<string>> {
  const rows = await db.selectFrom("outbox").select("idempotency_key").where("system", "=", "discourse").where("operation", "=", "create").where("status", "in", ["pending", "sending"]).execute();
  return new Set(rows.map((row) => row.idempotency_key));
}

/** A post's version and last change; a topic's are its post #1's (a title edit leaves no trace a pull can read). */
function facts(post: Payload | null, created: unknown): RemoteFacts {
  const changedAt = map.instant(post?.updated_at) ?? map.instant(created);
  return { version: post && typeof post.version === "number" ? String(post.version) : null, changedAt };
}

/** The course's forum is this category (one per course: connecting another replaces it). */
async function recordCourseCategory(db: Kysely<ConnectorTables>, course: DocUrl, categoryId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom("remote_ids").where("system", "=", "discourse").where("remote_type", "=", "category").where((eb) => eb.or([eb("doc_url", "=", course), eb("remote_id", "=", categoryId)])).execute();
    await trx.insertInto("remote_ids").values({ system: "discourse", remote_type: "category", remote_id: categoryId, doc_url: course }).execute();
  });
}
