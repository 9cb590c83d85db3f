import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import type { Kind } from "../../crdt/schema/kinds.js";
import type { ConnectorTables } from "../connector-tables.js";
import { systemClock, type Clock } from "../../util/clock.js";
import { RemoteError, type HttpClient } from "../http-client.js";
import { importDocument, importRemote, type ImportOutcome, type IncomingDocument } from "../import-documents.js";
import { Outbox } from "../outbox.js";
import { ReferenceAliases } from "../reference-aliases.js";
import { mappedUrl, recordInSync } from "../remote-records.js";
import { emptyPullResult, type PullResult } from "../pull-result.js";
import * as map from "./canvas-mapping.js";

export type { PullResult } from "../pull-result.js";

type Payload = Record<string, unknown>;

export interface PullOptions {
  client: HttpClient;
  instance: map.CanvasInstance;
  store: DocStore;
  db: Kysely<ConnectorTables>;
  /** The Canvas course id (a string: ids can pass 2^53). */
  courseId: string;
  /** Where a pull queues what changed here and must reach Canvas (defaults to the node's outbox in `db`). */
  outbox?: Outbox;
  clock?: Clock;
  onProgress?: (done: number, stage: string) => void;
}

/** Objects this node may change too: a pull reconciles them with their documents instead of overwriting. */
const EDITED_HERE = new Set<map.CanvasType>(["assignment", "page", "discussion_topic", "entry", "grade"]);

/**
 * Pulls a Canvas course into documents. Most Canvas endpoints have no "updated since", so
 * this scans every listing and writes only what differs; an object missing from a listing
 * that was read in full is taken as deleted (Canvas leaves no tombstones). Discussion threads
 * come from `/view`, or from the entry lists while `/view` is being built (503).
 *
 * An object this node also edits (assignments, pages, topics, replies, grades) is reconciled
 * with its document (see `importRemote`): a change here not yet sent is kept and queued, and a
 * change on both sides is settled by the course's strategy. An object first made here or in
 * Discourse updates the document it was made as, and references to it point there.
 */
export async function pullCanvasCourse(options: PullOptions): Promise<PullResult> {
  const { client, instance, store, db, courseId } = options;
  const result = emptyPullResult();
  const base = `/api/v1/courses/${encodeURIComponent(courseId)}`;
  let done = 0;
  const seen = new Map<string, Set<string>>();
  const clock = options.clock ?? systemClock;
  const context = { store, db, outbox: options.outbox ?? new Outbox(db, clock), clock };
  const aliases = await ReferenceAliases.load(db, "canvas", (type, id) => map.urlOf(instance, type as map.CanvasType, id));

  const inDoubt = await typesCreatedInDoubt(store, db);
  const take = async (type: map.CanvasType, remoteId: string, derived: IncomingDocument<Kind>, version: unknown = null): Promise<void> => {
    // Present in Canvas, whatever becomes of its import: never taken as deleted.
    const ids = seen.get(type) ?? new Set<string>();
    ids.add(remoteId);
    seen.set(type, ids);
    try {
      const remoteVersion = typeof version === "string" ? version : null;
      // A pushed object's document is the one it was made as: the pull updates that one.
      const mapped = await mappedUrl(db, "canvas", type, remoteId);
      const url = mapped ?? derived.url;
      if (!mapped && inDoubt.has(type) && !(await store.record(url))) {
        // It may be what an interrupted create made: the next push settles that first.
        result.deferred++;
        return;
      }
      const incoming = { ...derived, url, fields: aliases.rewrite(derived.fields) };
      let outcome: ImportOutcome;
      if (EDITED_HERE.has(type)) {
        // Topics carry no time of change; the others' version is when they last changed.
        outcome = await importRemote(context, { ...incoming, system: "canvas", type, remoteId, remoteVersion, remoteTime: type === "discussion_topic" ? null : remoteVersion });
      } else {
        outcome = await importDocument(store, incoming);
        await recordInSync(db, store, { system: "canvas", type, remoteId, url, remoteVersion }, clock);
      }
      result[outcome]++;
    } catch (error) {
      result.failed.push({ what: `${type} ${remoteId}`, error: (error as Error).message });
    }
    options.onProgress?.(++done, type);
  };

  /** Every item of a listing; false when the listing could not be read to its end. */
  const each = async (what: string, path: string, query: Record<string, string | string[]>, visit: (item: Payload) => Promise<void>): Promise<boolean> => {
    try {
      // A page's objects are written together: the store commits writes made together in one
      // transaction, where one at a time would pay a commit each (requests still go one by one).
      for await (const page of client.pages<Payload>(path, query)) await Promise.all(page.map(visit));
      return true;
    } catch (error) {
      result.incomplete.push(what);
      result.failed.push({ what, error: (error as Error).message });
      return false;
    }
  };

  let course: DocUrl;
  try {
    const response = await client.request<Payload>("GET", base);
    const imported = map.courseFrom(instance, response.body);
    course = imported.url;
    await take("course", courseId, imported);
  } catch (error) {
    result.failed.push({ what: `course ${courseId}`, error: (error as Error).message });
    return result;
  }

  const complete = new Set<map.CanvasType>();
  const listing = async (type: map.CanvasType, path: string, query: Record<string, string | string[]>, visit: (item: Payload) => Promise<void>) => {
    if (await each(type, path, query, visit)) complete.add(type);
  };

  await listing("user", `${base}/users`, { "include[]": ["email", "avatar_url"] }, (u) => take("user", String(u.id), map.userFrom(instance, u)));
  await listing("enrollment", `${base}/enrollments`, { "state[]": ["active", "invited", "completed", "inactive"] }, (e) => take("enrollment", String(e.id), map.enrollmentFrom(instance, course, e)));
  // Canvas shows each caller the dates of the overrides that concern them (a teacher: the most
  // lenient of all); the assignment's own dates are what the document holds and a push writes back.
  await listing("assignment", `${base}/assignments`, { override_assignment_dates: "false" }, (a) => take("assignment", String(a.id), map.assignmentFrom(instance, course, a), a.updated_at));
  await listing("submission", `${base}/students/submissions`, { "student_ids[]": ["all"] }, async (s) => {
    const { submission, grade } = map.submissionFrom(instance, course, s);
    await take("submission", String(s.id), submission, s.submitted_at);
    if (grade) await take("grade", String(s.id), grade, s.graded_at);
  });
  // Topics and announcements are one type read from two listings: both must be read in full
  // before a topic missing from them is taken as deleted.
  const topics: string[] = [];
  let topicsComplete = true;
  for (const announcements of [false, true]) {
    topicsComplete &&= await each(announcements ? "announcement" : "discussion_topic", `${base}/discussion_topics`, announcements ? { only_announcements: "true" } : {}, async (t) => {
      topics.push(String(t.id));
      await take("discussion_topic", String(t.id), map.topicFrom(instance, course, t));
    });
  }
  if (topicsComplete) complete.add("discussion_topic");
  for (const topic of topics) await pullThread(topic);
  const pageIds = new Map<string, string>();
  await listing("page", `${base}/pages`, {}, async (p) => {
    pageIds.set(String(p.url), String(p.page_id));
    // The list leaves out the body: each page is read on its own, by id (slugs change on rename).
    // A page that cannot be read is left as it is here (the listing item has no body to take).
    const id = String(p.page_id);
    try {
      const full = await client.request<Payload>("GET", `${base}/pages/page_id:${encodeURIComponent(id)}`);
      await take("page", id, map.pageFrom(instance, course, full.body));
    } catch (error) {
      seen.set("page", (seen.get("page") ?? new Set<string>()).add(id));
      result.failed.push({ what: `page ${id}`, error: (error as Error).message });
    }
  });
  await listing("module", `${base}/modules`, { "include[]": ["items"] }, async (m) => {
    let items = m.items as Payload[] | undefined;
    // Canvas leaves `items` out of a module with many of them: read them from `items_url`.
    if (!items && typeof m.items_url === "string") {
      items = [];
      await each(`module ${String(m.id)} items`, m.items_url, {}, async (item) => void items!.push(item));
    }
    await take("module", String(m.id), map.moduleFrom(instance, course, m, items ?? [], pageIds));
  });

  result.deleted = await tombstoneMissing(complete);
  return result;

  async function pullThread(topicId: string): Promise<void> {
    const path = `${base}/discussion_topics/${encodeURIComponent(topicId)}`;
    try {
      const view = await client.request<{ view?: Payload[]; new_entries?: Payload[] }>("GET", `${path}/view`, { query: { include_new_entries: 1 } });
      // Every entry of the thread at once (a reply names its parent by URL, so none waits for another).
      const flatten = (entries: readonly Payload[]): Payload[] => entries.flatMap((entry) => [entry, ...flatten((entry.replies as Payload[] | undefined) ?? [])]);
      // An entry in both the cached view and `new_entries` is taken once, as the newer says.
      const entries = [...new Map(flatten([...(view.body.view ?? []), ...(view.body.new_entries ?? [])]).map((entry) => [String(entry.id), entry])).values()];
      await Promise.all(entries.map((entry) => take("entry", String(entry.id), map.entryFrom(instance, course, topicId, entry))));
    } catch (error) {
      // `/view` is a cache Canvas builds on demand (503 meanwhile): the entry lists hold the same.
      if (!(error instanceof RemoteError)) throw error;
      await each(`entries of topic ${topicId}`, `${path}/entries`, {}, async (entry) => {
        await take("entry", String(entry.id), map.entryFrom(instance, course, topicId, entry));
        await each(`replies of entry ${String(entry.id)}`, `${path}/entries/${String(entry.id)}/replies`, {}, (reply) => take("entry", String(reply.id), map.entryFrom(instance, course, topicId, { ...reply, parent_id: reply.parent_id ?? entry.id })));
      });
    }
  }

  /** Objects mapped before but absent from a listing read in full: gone from Canvas. */
  async function tombstoneMissing(listed: ReadonlySet<map.CanvasType>): Promise<number> {
    let tombstoned = 0;
    for (const type of listed) {
      const known = await db.selectFrom("remote_ids").select(["remote_id", "doc_url"]).where("system", "=", "canvas").where("remote_type", "=", type).execute();
      const present = seen.get(type) ?? new Set<string>();
      for (const { remote_id, doc_url } of known) {
        if (present.has(remote_id)) continue;
        const doc = await store.find(doc_url as DocUrl);
        if (!doc || doc.course !== course) continue;
        await store.delete(doc_url as DocUrl);
        tombstoned++;
      }
    }
    return tombstoned;
  }
}

/** Canvas types some create a crash left in doubt is of (see canvas-recovery.ts). */
async function typesCreatedInDoubt(store: DocStore, db: Kysely<ConnectorTables>): Promise<Set<map.CanvasType>> {
  const TYPE_OF: Partial<Record<Kind, map.CanvasType>> = { assignment: "assignment", page: "page", discussion_topic: "discussion_topic", post: "entry" };
  const entries = await db.selectFrom("outbox").select("doc_url").where("system", "=", "canvas").where("status", "=", "sending").where("operation", "=", "create").execute();
  const types = new Set<map.CanvasType>();
  for (const entry of entries) {
    const kind = (await store.record(entry.doc_url as DocUrl))?.kind as Kind | undefined;
    const type = kind && TYPE_OF[kind];
    if (type) types.add(type);
  }
  return types;
}
