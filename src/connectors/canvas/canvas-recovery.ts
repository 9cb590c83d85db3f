import type { Entity } from "../../crdt/schema/document.js";
import { mappedUrl } from "../remote-records.js";
import { readObject, type CanvasPushContext, type Place } from "./canvas-objects.js";
import { plainText } from "./canvas-requests.js";

type Payload = Record<string, unknown>;

/**
 * Finding the object an interrupted create may have made. Canvas takes no idempotency key, and
 * nothing invisible survives in what it stores: it sanitizes incoming HTML (comments and unknown
 * attributes go) and titles hold only text. So the object is recognised by what was sent: an
 * object of the same kind and place that no document is mapped to yet, whose title and words
 * match the document's (Canvas rewrites links and markup, not words). The newest such object
 * is taken. A document edited between the interrupted send and this search no longer matches
 * what was sent, and is then sent again.
 *
 * Returns the object, or null when Canvas holds none; throws when Canvas cannot be read (the
 * entry then stays in doubt until it can).
 */
export async function findCreated(ctx: CanvasPushContext, doc: Entity, place: Place): Promise<Payload | null> {
  // Another node, or an earlier run, may have recorded it already.
  if (place.remoteId) return readObject(ctx, place);
  const base = `/api/v1/courses/${encodeURIComponent(ctx.courseId)}`;
  switch (place.kind) {
    case "assignment": {
      const a = doc as Entity<"assignment">;
      return newest(await unmapped(ctx, place, await listAll(ctx, `${base}/assignments`), (p) => sameTitle(p.name, a.title) && sameWords(p.description, a.description)));
    }
    case "page": {
      const page = doc as Entity<"page">;
      // The page list leaves bodies out: each page with the title is read whole.
      const titled = await unmapped(ctx, place, await listAll(ctx, `${base}/pages`), (p) => sameTitle(p.title, page.title), "page_id");
      const full = await Promise.all(titled.map(async (p) => (await ctx.client.request<Payload>("GET", `${base}/pages/page_id:${String(p.page_id)}`)).body));
      return newest(full.filter((p) => sameWords(p.body, page.body)), "page_id");
    }
    case "discussion_topic": {
      const topic = doc as Entity<"discussion_topic">;
      const listed = await listAll(ctx, `${base}/discussion_topics`, topic.announcement ? { only_announcements: "true" } : {});
      return newest(await unmapped(ctx, place, listed, (p) => sameTitle(p.title, topic.title) && sameWords(p.message, topic.message)));
    }
    case "post": {
      const post = doc as Entity<"post">;
      // The threaded view, with what its cache does not hold yet in `new_entries`.
      const view = await ctx.client.request<{ view?: Payload[]; new_entries?: Payload[] }>("GET", `${base}/discussion_topics/${place.topicId ?? ""}/view`, { query: { include_new_entries: 1 } });
      const entries = [...flatten(view.body.view ?? []), ...(view.body.new_entries ?? [])];
      // Replies are short and alike ("Thanks!"): only one this node's own Canvas user wrote can be its.
      const self = String((await ctx.client.request<Payload>("GET", "/api/v1/users/self")).body.id);
      const here = (p: Payload) => p.deleted !== true && String(p.user_id) === self && String(p.parent_id ?? "") === (place.parentId ?? "") && sameWords(p.message, post.message);
      return newest(await unmapped(ctx, place, entries, here));
    }
    case "grade":
      // Grading is an idempotent PUT: sending it again makes nothing twice.
      return null;
  }
}

async function listAll(ctx: CanvasPushContext, path: string, query: Record<string, string> = {}): Promise<Payload[]> {
  const all: Payload[] = [];
  for await (const page of ctx.client.pages<Payload>(path, query)) all.push(...page);
  return all;
}

async function unmapped(ctx: CanvasPushContext, place: Place, candidates: readonly Payload[], matches: (p: Payload) => boolean, idKey = "id"): Promise<Payload[]> {
  const out: Payload[] = [];
  for (const candidate of candidates) {
    if (matches(candidate) && !(await mappedUrl(ctx.db, "canvas", place.type, String(candidate[idKey])))) out.push(candidate);
  }
  return out;
}

function flatten(entries: readonly Payload[]): Payload[] {
  return entries.flatMap((entry) => [entry, ...flatten((entry.replies as Payload[] | undefined) ?? [])]);
}

/** The most recently made: Canvas ids grow, and may pass 2^53 (compared as digit strings). */
function newest(candidates: readonly Payload[], idKey = "id"): Payload | null {
  const id = (p: Payload) => String(p[idKey]);
  return [...candidates].sort((a, b) => id(b).length - id(a).length || (id(b) > id(a) ? 1 : id(b) < id(a) ? -1 : 0))[0] ?? null;
}

function sameTitle(remote: unknown, local: string): boolean {
  return typeof remote === "string" && remote.replace(/\s+/g, " ").trim() === local.replace(/\s+/g, " ").trim();
}

function sameWords(remote: unknown, local: string): boolean {
  return plainText(typeof remote === "string" ? remote : "") === plainText(local);
}
