// Pure helpers for the fake Canvas wire format: Rails bracket params, ids, times, HTML, Link headers.
// Nothing here touches the network, so each quirk can be read (and tested) on its own.

export type JsonObject = { [key: string]: unknown };

/** Rails-style params: `a[b][]=x` becomes `{ a: { b: ["x"] } }`. */
export type Params = JsonObject;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses `key=value` pairs with Rails bracket nesting, as Canvas does for query strings and form bodies. */
export function parseRailsParams(pairs: Iterable<[string, string]>): Params {
  const root: Params = {};
  for (const [key, value] of pairs) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    const path = match ? [match[1] ?? key, ...[...(match[2] ?? "").matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1] ?? "")] : [key];
    assignPath(root, path, value);
  }
  return root;
}

function assignPath(root: Params, path: string[], value: string): void {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    const key = path[i] ?? "";
    if (i === path.length - 1) {
      node[key] = value;
      return;
    }
    if (path[i + 1] === "" && i + 1 === path.length - 1) {
      const existing = node[key];
      const list = Array.isArray(existing) ? (existing as unknown[]) : [];
      list.push(value);
      node[key] = list;
      return;
    }
    const child = node[key];
    if (isObject(child)) {
      node = child;
    } else {
      const fresh: Params = {};
      node[key] = fresh;
      node = fresh;
    }
  }
}

/** A param as a string, or undefined; numbers from JSON bodies count as strings, as Rails sees them. */
export function paramString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

export function paramList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(paramString).filter((v): v is string => v !== undefined);
  const single = paramString(value);
  return single === undefined ? [] : [single];
}

export function paramObject(value: unknown): Params {
  return isObject(value) ? value : {};
}

const TRUE_WORDS = new Set(["true", "t", "yes", "y", "on", "1"]);
const FALSE_WORDS = new Set(["false", "f", "no", "n", "off", "0"]);

/** Canvas booleans accept true/false, t/f, yes/no, y/n, on/off, 1/0. */
export function paramBoolean(value: unknown): boolean | undefined {
  const text = paramString(value)?.toLowerCase();
  if (text === undefined) return undefined;
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  return undefined;
}

/** Canvas prints UTC with second precision and a `Z`. */
export function formatCanvasTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/**
 * Parses a Canvas input time. With an offset or `Z` it is an instant; without one it is a wall-clock time in
 * `timeZone` (Canvas uses the requester's zone; the fake uses the course's). A date alone is the start of that
 * day, or its last second with `edge: "end"`. Returns null for anything unparseable.
 */
export function parseCanvasTime(input: string, timeZone: string, edge: "start" | "end" = "start"): number | null {
  const local = LOCAL_TIME.exec(input.trim());
  if (local) {
    const [, y, mo, d, h, mi, s] = local;
    const dateOnly = h === undefined;
    const wall = Date.UTC(
      Number(y),
      Number(mo) - 1,
      Number(d),
      dateOnly ? (edge === "end" ? 23 : 0) : Number(h),
      dateOnly ? (edge === "end" ? 59 : 0) : Number(mi),
      dateOnly ? (edge === "end" ? 59 : 0) : Number(s ?? 0),
    );
    // Two passes settle the offset on the right side of a daylight-saving change.
    const first = wall - zoneOffsetMs(wall, timeZone);
    return wall - zoneOffsetMs(first, timeZone);
  }
  const ms = Date.parse(input);
  return Number.isNaN(ms) ? null : ms;
}

/** The offset of `timeZone` from UTC at `instant`, in ms (Chicago in January: -6 h). */
export function zoneOffsetMs(instant: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return asUtc - Math.floor(instant / 1000) * 1000;
}

const ID_KEY = /(^|_)id$/;
const IDS_KEY = /_ids$/;

/**
 * What `Accept: application/json+canvas-string-ids` does: every `id`, `*_id` and `*_ids` number, nested ones
 * included, becomes a string, so clients never round ids above 2^53 through a double.
 */
export function stringifyIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stringifyIds);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, field] of Object.entries(value)) {
    if ((typeof field === "number" || typeof field === "bigint") && ID_KEY.test(key)) out[key] = String(field);
    else if (Array.isArray(field) && IDS_KEY.test(key)) out[key] = field.map((v) => (typeof v === "number" || typeof v === "bigint" ? String(v) : stringifyIds(v)));
    else out[key] = stringifyIds(field);
  }
  return out;
}

/**
 * JSON as Canvas prints it. Ids past 2^53 (sharded and hosted instances) are held as `bigint` and
 * printed as bare numbers, which a client parsing into doubles rounds: only the string-ids Accept
 * header (see `stringifyIds`) gets them across exactly.
 */
export function toCanvasJson(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_key, field: unknown) => (typeof field === "bigint" ? `\u0000big${marks.push(field.toString()) - 1}` : field));
  return marks.length === 0 ? text : text.replace(/"\\u0000big(\d+)"/g, (_all, index: string) => marks[Number(index)] ?? "null");
}

/**
 * Canvas rewrites outgoing user HTML: relative `/courses/...` links become absolute and gain
 * `data-api-endpoint`, which is why a connector must never diff HTML it sent against HTML it reads back.
 */
export function rewriteUserHtml(html: string, baseUrl: string): string {
  return sanitizeUserHtml(html).replace(/(href|src)="(\/courses\/[^"]*)"/g, (_all, attr: string, path: string) => {
    const apiPath = path.replace(/\/(preview|download)(\?.*)?$/, "");
    const isFile = /\/files\/\d+/.test(path);
    // File links gain a verifier, so a reader without a session can fetch them.
    const href = isFile && !path.includes("verifier=") ? `${path}${path.includes("?") ? "&" : "?"}verifier=${fileVerifier(path)}` : path;
    return `${attr}="${baseUrl}${href}" data-api-endpoint="${baseUrl}/api/v1${apiPath}" data-api-returntype="${isFile ? "File" : returnType(apiPath)}"`;
  });
}

/** What Canvas's sanitizer does to incoming HTML that matters here: no scripts, no event handlers. */
export function sanitizeUserHtml(html: string): string {
  return html
    .replace(/<script\b[^>]*>[\s\S]*?<\/script\s*>/gi, "")
    .replace(/\s+on[a-z]+\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, "");
}

function returnType(apiPath: string): string {
  if (/\/pages\/[^/]+$/.test(apiPath)) return "Page";
  if (/\/assignments\/\d+$/.test(apiPath)) return "Assignment";
  if (/\/discussion_topics\/\d+$/.test(apiPath)) return "Discussion";
  return "Collection";
}

/** A stable token per file path, shaped like Canvas's 40-character verifiers. */
function fileVerifier(path: string): string {
  let hash = 2166136261;
  for (const char of path) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
  return hash.toString(36).padEnd(40, "0").slice(0, 40);
}

/** Canvas page slugs: lowercase words joined by dashes. */
export function slugify(title: string): string {
  const slug = title
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return slug === "" ? "page" : slug;
}

/** Opaque bookmark values, shaped like Canvas's (`bookmark:` + base64url of a JSON array). */
export function encodeBookmark(lastId: number): string {
  return `bookmark:${Buffer.from(JSON.stringify([lastId])).toString("base64url")}`;
}

export function decodeBookmark(page: string): number | null {
  if (!page.startsWith("bookmark:")) return null;
  try {
    const decoded: unknown = JSON.parse(Buffer.from(page.slice("bookmark:".length), "base64url").toString("utf8"));
    return Array.isArray(decoded) && typeof decoded[0] === "number" ? decoded[0] : null;
  } catch {
    return null;
  }
}

/**
 * A Link URL: every original query param is carried over except `page`, `per_page`, `access_token` and
 * `api_key` (so a client authenticating by query must re-append its token), then page and per_page.
 */
export function buildPageUrl(origin: string, pathname: string, search: URLSearchParams, page: string, perPage: number): string {
  const kept = new URLSearchParams();
  for (const [key, value] of search) {
    if (key !== "page" && key !== "per_page" && key !== "access_token" && key !== "api_key") kept.append(key, value);
  }
  const rest = kept.toString();
  return `${origin}${pathname}?${rest === "" ? "" : `${rest}&`}page=${page}&per_page=${perPage}`;
}
