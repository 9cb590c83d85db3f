import type { Params, RouteReply } from "./discourse-http.js";
import type { DiscourseState, DiscourseUser } from "./discourse-state.js";

/** What the fake Discourse's routes share: what a route sees, what it is, and small reply helpers. */

/** What a route sees: the caller (null when anonymous), query and body merged, path captures. */
export interface RouteContext {
  state: DiscourseState;
  viewer: DiscourseUser | null;
  params: Params;
  match: string[];
  /** Memo of API creates: key → post id and when it was created (§2.7, 120 s). */
  createMemo: Map<string, { postId: number; atMs: number }>;
}

export interface Route {
  method: string;
  /** Matched against the path with `.json` removed. */
  pattern: RegExp;
  write?: boolean;
  handle: (ctx: RouteContext) => RouteReply;
}

export const isStaff = (user: DiscourseUser | null): boolean => user !== null && (user.admin || user.moderator);
export const ok = (json: unknown): RouteReply => ({ status: 200, json });
/** Successful deletes answer 200 with an empty body (§2.3). */
export const EMPTY_OK: RouteReply = { status: 200, text: "", contentType: "text/plain" };

export function sub(params: Params, key: string): Params {
  const value = params[key];
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Params) : {};
}

export function bool(value: unknown): boolean {
  return value === true || value === "true";
}
