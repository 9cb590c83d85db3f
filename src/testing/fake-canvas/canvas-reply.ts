// What a fake Canvas route receives and returns; the HTTP shell turns a Reply into bytes, pages and headers.
import type { CanvasState } from "./canvas-state.js";
import type { JsonObject, Params } from "./canvas-wire.js";

export interface RouteContext {
  state: CanvasState;
  method: string;
  /** Path params by name (`:course_id` → `params.course_id`). */
  params: Record<string, string>;
  /** Query and body params merged, Rails-style (body wins). */
  input: Params;
  /** The user the token belongs to. */
  userId: number;
  now(): number;
  /** `http://127.0.0.1:<port>`, for the absolute URLs Canvas prints. */
  origin: string;
}

export type Reply =
  | { status: number; json: unknown }
  | { status: number; text: string; contentType?: string }
  /**
   * A paginated list. `bookmark` collections page by opaque bookmarks and omit `rel="last"`; `afterPage`
   * filters each page after slicing, as Canvas does for `scope`, so pages can be short while `next` exists.
   */
  | { status: number; list: JsonObject[]; paging: "numbered" | "bookmark"; afterPage?: (item: JsonObject) => boolean };

export type RouteHandler = (ctx: RouteContext) => Reply;

/** The zone Canvas reads a time without an offset in: the requesting user's profile zone, else the course's. */
export function requesterZone(ctx: Pick<RouteContext, "state" | "userId">): string {
  const zone = ctx.state.users.find((u) => u.id === ctx.userId)?.time_zone;
  return typeof zone === "string" && zone !== "" ? zone : ctx.state.course.time_zone;
}

export function ok(json: unknown, status = 200): Reply {
  return { status, json };
}

export function notFound(): Reply {
  return { status: 404, json: { errors: [{ message: "The specified resource does not exist." }] } };
}

export function denied(ctx: RouteContext): Reply {
  return {
    status: ctx.state.knobs.permissionDeniedStatus,
    json: { status: "unauthorized", errors: [{ message: "user not authorized to perform that action" }] },
  };
}

/** Model validation failure: `errors` is an object keyed by attribute, unlike the auth errors array. */
export function invalid(attribute: string, type: string): Reply {
  return { status: 400, json: { errors: { [attribute]: [{ attribute, type, message: type }] } } };
}
