import type { HttpClient } from "../http-client.js";

/** Reading a category's topic list: shared by the pull and by the push looking for a topic it may have made. */

type Payload = Record<string, unknown>;

export interface CategoryInfo {
  /** The category's "About the …" topic, which describes the category and is no discussion. */
  aboutTopicId: string | null;
  /** Where its topic list starts. */
  listPath: string;
}

/** Without the category's slug, `/c/{id}.json` (what Discourse answers when `show.json` cannot be read). */
export function bareListPath(categoryId: string): string {
  return `/c/${encodeURIComponent(categoryId)}.json`;
}

/** `GET /c/{id}/show.json`: the About topic, and the list path with the slug (`/c/{slug}/{id}.json`). Throws a `RemoteError`. */
export async function readCategory(client: HttpClient, categoryId: string): Promise<CategoryInfo> {
  const { body } = await client.request<{ category?: Payload }>("GET", `/c/${encodeURIComponent(categoryId)}/show.json`);
  const category = body.category ?? {};
  const aboutTopicId = category.topic_id != null ? String(category.topic_id as number) : (/\/(\d+)$/.exec(String(category.topic_url ?? ""))?.[1] ?? null);
  const listPath = typeof category.slug === "string" && category.slug !== "" ? `/c/${encodeURIComponent(category.slug)}/${encodeURIComponent(categoryId)}.json` : bareListPath(categoryId);
  return { aboutTopicId, listPath };
}

/** Every topic of a list, following `more_topics_url` page by page. Throws a `RemoteError` if a page cannot be read. */
export async function listTopics(client: HttpClient, listPath: string): Promise<Payload[]> {
  const topics: Payload[] = [];
  for (let next: string | null = listPath; next !== null; ) {
    const response: { body: { topic_list?: Payload } } = await client.request<{ topic_list?: Payload }>("GET", next);
    const list: Payload = response.body.topic_list ?? {};
    const page: Payload[] = Array.isArray(list.topics) ? (list.topics as Payload[]) : [];
    topics.push(...page);
    const more: string | null = typeof list.more_topics_url === "string" ? list.more_topics_url : null;
    // `more_topics_url` appears only on a full page, and comes without `.json`.
    next = more !== null && page.length > 0 && page.length >= Number(list.per_page ?? page.length) ? withJson(more) : null;
  }
  return topics;
}

/** `/c/bio-101/12/l/latest?page=1` → `/c/bio-101/12/l/latest.json?page=1`. */
function withJson(url: string): string {
  const [path = "", query] = url.split("?", 2);
  const json = path.endsWith(".json") ? path : `${path}.json`;
  return query === undefined ? json : `${json}?${query}`;
}
