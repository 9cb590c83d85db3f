import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import type { Kind } from "../../crdt/schema/kinds.js";
import type { ConnectorTables } from "../connector-tables.js";
import type { HttpClient } from "../http-client.js";
import { importDocument, type IncomingDocument } from "../import-documents.js";
import { emptyPullResult, type PullResult } from "../pull-result.js";
import { mappedUrl } from "../remote-records.js";
import * as map from "./discourse-mapping.js";

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
}

/**
 * Pulls a Discourse category into documents: every topic of its listing (all pages), every
 * post of each topic's stream (all chunks), and the posts' authors. It writes only what
 * differs, so a second pull of an unchanged forum changes nothing. A topic missing from a
 * listing read in full is tombstoned with its posts; a reply missing from a stream read in
 * full (a staff delete takes it out of `stream`) stays as a placeholder marked `deleted`.
 * Never throws: each failure is a per-record result.
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
  const take = async (type: map.DiscourseType, remoteId: string, derived: IncomingDocument<Kind>): Promise<void> => {
    try {
      // A post this node made and pushed is already a document: the pull updates that one.
      const mapped = await mappedUrl(db, "discourse", type, remoteId);
      const incoming = mapped && mapped !== derived.url ? { ...derived, url: mapped } : derived;
      result[await importDocument(store, incoming)]++;
      await db
        .insertInto("remote_ids")
        .values({ system: "discourse", remote_type: type, remote_id: remoteId, doc_url: incoming.url })
        .onConflict((oc) => oc.columns(["system", "remote_type", "remote_id"]).doUpdateSet({ doc_url: incoming.url }))
        .execute();
      mark(type, remoteId);
    } catch (error) {
      failed(`${type} ${remoteId}`, error);
    }
    options.onProgress?.(++done, type);
  };

  // The category's "About the …" topic describes the category; it is no discussion.
  let aboutTopicId: string | null = null;
  let listPath = `/c/${encodeURIComponent(categoryId)}.json`;
  try {
    const { body } = await client.request<{ category?: Payload }>("GET", `/c/${encodeURIComponent(categoryId)}/show.json`);
    const category = body.category ?? {};
    aboutTopicId = category.topic_id != null ? String(category.topic_id as number) : (/\/(\d+)$/.exec(String(category.topic_url ?? ""))?.[1] ?? null);
    if (typeof category.slug === "string" && category.slug !== "") listPath = `/c/${encodeURIComponent(category.slug)}/${encodeURIComponent(categoryId)}.json`;
  } catch (error) {
    failed(`category ${categoryId}`, error);
  }
  const isAbout = (t: Payload): boolean => String(t.id) === aboutTopicId || text(t.title).startsWith("About the ");

  const topics: Payload[] = [];
  let listedInFull = false;
  try {
    for (let next: string | null = listPath; next !== null; ) {
      const response: { body: { topic_list?: Payload } } = await client.request<{ topic_list?: Payload }>("GET", next);
      const list: Payload = response.body.topic_list ?? {};
      const page: Payload[] = Array.isArray(list.topics) ? (list.topics as Payload[]) : [];
      topics.push(...page);
      const more: string | null = typeof list.more_topics_url === "string" ? list.more_topics_url : null;
      // `more_topics_url` appears only on a full page, and comes without `.json`.
      next = more !== null && page.length > 0 && page.length >= Number(list.per_page ?? page.length) ? withJson(more) : null;
    }
    listedInFull = true;
  } catch (error) {
    result.incomplete.push(`topics of category ${categoryId}`);
    failed(`topics of category ${categoryId}`, error);
  }

  const users = new Set<string>();
  for (const listed of topics) {
    if (isAbout(listed)) continue;
    const topicId = String(listed.id);
    // A topic that is listed is present, even if reading it fails now.
    mark("topic", topicId);
    await pullTopic(topicId);
  }

  if (listedInFull) await tombstoneTopics();
  await markDeletedPosts();
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
    await take("topic", topicId, map.topicFrom(instance, course, view, first));
    for (const post of posts) {
      if (post === first) continue;
      await take("post", String(post.id), map.postFrom(instance, course, topicId, post, numbers));
    }
  }

  /** Topics mapped before but absent from the category listing read in full: gone, with their posts. */
  async function tombstoneTopics(): Promise<void> {
    const present = seen.get("topic") ?? new Set<string>();
    const known = await db.selectFrom("remote_ids").select(["remote_id", "doc_url"]).where("system", "=", "discourse").where("remote_type", "=", "topic").execute();
    const gone = new Set<DocUrl>();
    for (const { remote_id, doc_url } of known) {
      if (present.has(remote_id)) continue;
      try {
        const doc = await store.find(doc_url as DocUrl);
        if (!doc || doc.course !== course) continue;
        await store.delete(doc_url as DocUrl);
        gone.add(doc_url as DocUrl);
        result.deleted++;
      } catch (error) {
        failed(`topic ${remote_id}`, error);
      }
    }
    if (gone.size === 0) return;
    for (const { remote_id, doc_url } of await knownPosts()) {
      try {
        const doc = await store.find<"post">(doc_url as DocUrl);
        if (!doc || doc.topic === null || !gone.has(doc.topic)) continue;
        await store.delete(doc_url as DocUrl);
        result.deleted++;
      } catch (error) {
        failed(`post ${remote_id}`, error);
      }
    }
  }

  /** Replies mapped before but absent from a stream read in full: deleted there, kept here as placeholders. */
  async function markDeletedPosts(): Promise<void> {
    if (fullTopics.size === 0) return;
    const topicUrls = new Set([...fullTopics].map((id) => map.urlOf(instance, "topic", id)));
    const present = seen.get("post") ?? new Set<string>();
    for (const { remote_id, doc_url } of await knownPosts()) {
      if (present.has(remote_id)) continue;
      try {
        const doc = await store.find<"post">(doc_url as DocUrl);
        if (!doc || doc.deleted || !topicUrls.has(doc.topic)) continue;
        await store.change<"post">(doc_url as DocUrl, (draft) => {
          draft.deleted = true;
          draft.message = "";
        });
        result.deleted++;
      } catch (error) {
        failed(`post ${remote_id}`, error);
      }
    }
  }

  function knownPosts() {
    return db.selectFrom("remote_ids").select(["remote_id", "doc_url"]).where("system", "=", "discourse").where("remote_type", "=", "post").execute();
  }
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");

/** `/c/bio-101/12/l/latest?page=1` → `/c/bio-101/12/l/latest.json?page=1`. */
function withJson(url: string): string {
  const [path = "", query] = url.split("?", 2);
  const json = path.endsWith(".json") ? path : `${path}.json`;
  return query === undefined ? json : `${json}?${query}`;
}
