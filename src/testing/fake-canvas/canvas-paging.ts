// Canvas list pagination for the fake: numbered and bookmark pages, and the Link header they print.
// Pure: the HTTP shell hands in the list and the request URL and gets one page and its header back.
import type { Reply } from "./canvas-reply.js";
import { buildPageUrl, decodeBookmark, encodeBookmark, type JsonObject } from "./canvas-wire.js";

/** Canvas's `Api::PER_PAGE` and `MAX_PER_PAGE`. */
const DEFAULT_PER_PAGE = 10;
const MAX_PER_PAGE = 100;
/**
 * Canvas caps the Link header at about 6 KB and drops relations past the cap in this order of
 * preference, so with a long query string `next` survives and `first` or `current` go first.
 */
export const LINK_HEADER_LIMIT = 6 * 1024;
const KEEP_FIRST = ["next", "last", "prev", "current", "first"] as const;
type Rel = (typeof KEEP_FIRST)[number];

export interface Page {
  items: JsonObject[];
  /** The Link header; undefined for none, null when the bookmark asked for was never issued (Canvas: 404). */
  link: string | null | undefined;
}

/**
 * One page of a list. Numbered pages print current/next/prev/first/last; bookmark pages print
 * current/next/first and never `last`. A page past the end is empty with prev/first/last still
 * there. `afterPage` filters after slicing, so pages can come back short, or empty, with `next`.
 */
export function paginate(reply: Extract<Reply, { list: unknown }>, url: URL, origin: string): Page {
  const requested = Number.parseInt(url.searchParams.get("per_page") ?? "", 10);
  const perPage = Math.min(MAX_PER_PAGE, Math.max(1, Number.isNaN(requested) ? DEFAULT_PER_PAGE : requested));
  const pageParam = url.searchParams.get("page");
  const all = reply.list;
  const rels = new Map<Rel, string>();
  const link = (rel: Rel, page: string): void => void rels.set(rel, `<${buildPageUrl(origin, url.pathname, url.searchParams, page, perPage)}>; rel="${rel}"`);
  let items: JsonObject[];
  if (reply.paging === "bookmark") {
    let start = 0;
    if (pageParam !== null && pageParam !== "first" && pageParam !== "1") {
      const lastId = decodeBookmark(pageParam);
      if (lastId === null) return { items: [], link: null };
      const index = all.findIndex((item) => Number(item.id) > lastId);
      start = index === -1 ? all.length : index;
    }
    items = all.slice(start, start + perPage);
    link("current", pageParam ?? "first");
    const last = items.at(-1);
    if (start + perPage < all.length && last) link("next", encodeBookmark(Number(last.id)));
    link("first", "first");
  } else {
    const parsed = Number.parseInt(pageParam ?? "1", 10);
    const page = Number.isNaN(parsed) || parsed < 1 ? 1 : parsed;
    const lastPage = Math.max(1, Math.ceil(all.length / perPage));
    items = all.slice((page - 1) * perPage, page * perPage);
    link("current", String(page));
    if (page < lastPage) link("next", String(page + 1));
    if (page > 1) link("prev", String(Math.min(page - 1, lastPage)));
    link("first", "1");
    link("last", String(lastPage));
  }
  return { items: reply.afterPage ? items.filter(reply.afterPage) : items, link: capLinks(rels) };
}

/** Keeps the relations that fit under the cap, most wanted first, and prints them in Canvas's order. */
function capLinks(rels: ReadonlyMap<Rel, string>): string {
  const kept = new Set<Rel>();
  let length = 0;
  for (const rel of KEEP_FIRST) {
    const value = rels.get(rel);
    if (value === undefined) continue;
    const added = value.length + (kept.size > 0 ? 1 : 0);
    if (length + added > LINK_HEADER_LIMIT) continue;
    kept.add(rel);
    length += added;
  }
  return (["current", "next", "prev", "first", "last"] as const)
    .filter((rel) => kept.has(rel))
    .map((rel) => rels.get(rel)!)
    .join(",");
}
