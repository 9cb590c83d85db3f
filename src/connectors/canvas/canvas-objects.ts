import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import type { Entity } from "../../crdt/schema/document.js";
import type { Clock } from "../../util/clock.js";
import type { ConnectorTables } from "../connector-tables.js";
import { RemoteError, type HttpClient, type RequestOptions } from "../http-client.js";
import { syncedFields } from "../import-documents.js";
import type { Outbox } from "../outbox.js";
import type { FieldValues } from "../reconcile.js";
import type { ReferenceAliases } from "../reference-aliases.js";
import { remoteIdOf } from "../remote-records.js";
import * as map from "./canvas-mapping.js";
import type { PushedKind } from "./canvas-requests.js";

/** Where each pushed kind lives in Canvas's REST API, and how its answers read as document fields. */

export interface CanvasPushContext {
  client: HttpClient;
  store: DocStore;
  db: Kysely<ConnectorTables>;
  outbox: Outbox;
  instance: map.CanvasInstance;
  courseId: string;
  /** The course document the Canvas course is. */
  course: DocUrl;
  /** The course's zone, for document times written without an offset. */
  timeZone: string;
  /** Objects living in another document than their derived URL; grows as the push creates objects. */
  aliases: ReferenceAliases;
  clock: Clock;
}

type Payload = Record<string, unknown>;

export const REMOTE_TYPE: Record<PushedKind, map.CanvasType> = { assignment: "assignment", page: "page", discussion_topic: "discussion_topic", post: "entry", grade: "grade" };

/** A document's Canvas object: where to read and write it, and how to make it if it is not there yet. */
export interface Place {
  kind: PushedKind;
  type: map.CanvasType;
  remoteId: string | null;
  read: { path: string; query?: RequestOptions["query"] };
  write: string;
  create: { method: "POST" | "PUT"; path: string };
  /** A post's topic in Canvas, and the entry it answers there (null: the topic itself). */
  topicId?: string;
  parentId?: string | null;
}

/** Why a document cannot be sent now: a reference that will be in Canvas after a later send, or never. */
export type NotPlaced = { waiting: string } | { unreachable: string };

export async function placeOf(ctx: CanvasPushContext, doc: Entity): Promise<Place | NotPlaced> {
  const base = `/api/v1/courses/${encodeURIComponent(ctx.courseId)}`;
  const own = (type: map.CanvasType) => canvasIdOf(ctx, doc.url, type);
  switch (doc.kind) {
    case "assignment": {
      const id = await own("assignment");
      const path = `${base}/assignments/${id ?? ""}`;
      // The assignment's own dates, not those of the overrides that concern the caller: they are what the document holds.
      return { kind: "assignment", type: "assignment", remoteId: id, read: { path, query: { override_assignment_dates: "false" } }, write: path, create: { method: "POST", path: `${base}/assignments` } };
    }
    case "page": {
      // By id: a page's slug changes when it is renamed.
      const id = await own("page");
      const path = `${base}/pages/page_id:${id ?? ""}`;
      return { kind: "page", type: "page", remoteId: id, read: { path }, write: path, create: { method: "POST", path: `${base}/pages` } };
    }
    case "discussion_topic": {
      const id = await own("discussion_topic");
      const path = `${base}/discussion_topics/${id ?? ""}`;
      return { kind: "discussion_topic", type: "discussion_topic", remoteId: id, read: { path }, write: path, create: { method: "POST", path: `${base}/discussion_topics` } };
    }
    case "post": {
      const post = doc as Entity<"post">;
      const topicId = await canvasIdOf(ctx, post.topic, "discussion_topic");
      if (!topicId) return (await willBeSent(ctx, post.topic)) ? { waiting: "its topic is not in Canvas yet" } : { unreachable: "its topic is not a Canvas topic" };
      const topic = `${base}/discussion_topics/${topicId}`;
      let parentId: string | null = null;
      if (post.parent) {
        parentId = await canvasIdOf(ctx, post.parent, "entry");
        // A parent still to be sent is waited for; one that never will be leaves the reply at the top level.
        if (!parentId && (await willBeSent(ctx, post.parent))) return { waiting: "the post it answers is not in Canvas yet" };
      }
      const id = await own("entry");
      const create = parentId ? `${topic}/entries/${parentId}/replies` : `${topic}/entries`;
      // Canvas has no read of one entry but `entry_list`, which also finds replies at any depth.
      return { kind: "post", type: "entry", remoteId: id, topicId, parentId, read: { path: `${topic}/entry_list`, query: { "ids[]": [id ?? ""] } }, write: `${topic}/entries/${id ?? ""}`, create: { method: "POST", path: create } };
    }
    case "grade": {
      const grade = doc as Entity<"grade">;
      const userId = await canvasIdOf(ctx, grade.student, "user");
      if (!userId) return { unreachable: "its student is not a Canvas user" };
      const assignmentId = await canvasIdOf(ctx, grade.assignment, "assignment");
      if (!assignmentId) return (await willBeSent(ctx, grade.assignment)) ? { waiting: "its assignment is not in Canvas yet" } : { unreachable: "its assignment is not a Canvas assignment" };
      // Submissions are addressed by student; grading one is an idempotent PUT that makes its row if missing.
      const path = `${base}/assignments/${assignmentId}/submissions/${userId}`;
      return { kind: "grade", type: "grade", remoteId: await own("grade"), read: { path }, write: path, create: { method: "PUT", path } };
    }
    default:
      return { unreachable: `a ${doc.kind} is not sent to Canvas` };
  }
}

/** The Canvas object as it is now. */
export async function readObject(ctx: CanvasPushContext, place: Place): Promise<Payload> {
  const response = await ctx.client.request<Payload | Payload[]>("GET", place.read.path, place.read.query ? { query: place.read.query } : {});
  if (!Array.isArray(response.body)) return response.body;
  const entry = response.body.find((e) => String(e.id) === place.remoteId);
  if (!entry || entry.deleted === true) throw new RemoteError({ kind: "not-found" }, `entry ${place.remoteId ?? ""} is gone from Canvas`);
  return entry;
}

/** A Canvas object's fields in document form, references resolved to the documents they are. */
export function remoteFieldsOf(ctx: CanvasPushContext, place: Place, payload: Payload): FieldValues {
  const { instance, course } = ctx;
  const imported =
    place.kind === "assignment"
      ? map.assignmentFrom(instance, course, payload)
      : place.kind === "page"
        ? map.pageFrom(instance, course, payload)
        : place.kind === "discussion_topic"
          ? map.topicFrom(instance, course, payload)
          : place.kind === "post"
            ? map.entryFrom(instance, course, place.topicId ?? "", payload)
            : map.gradeFrom(instance, course, payload);
  return syncedFields(ctx.aliases.rewrite(imported.fields as Record<string, unknown>));
}

export function remoteIdOfPayload(kind: PushedKind, payload: Payload): string {
  return String(kind === "page" ? payload.page_id : payload.id);
}

/** When Canvas says the object last changed, for `prefer_recent`; topics carry no such time. */
export function remoteTimeOf(kind: PushedKind, payload: Payload): string | null {
  const value = kind === "grade" ? payload.graded_at : kind === "discussion_topic" ? null : payload.updated_at;
  return typeof value === "string" ? value : null;
}

/** A document's id in Canvas: from the id map, or from the document (another node may have sent it). */
export async function canvasIdOf(ctx: CanvasPushContext, url: DocUrl | null, type: map.CanvasType): Promise<string | null> {
  if (!url) return null;
  const mapped = await remoteIdOf(ctx.db, "canvas", url, type);
  if (mapped) return mapped;
  return (await ctx.store.find(url))?.external.canvas ?? null;
}

/** Whether a referenced document is one this push will make in Canvas. */
async function willBeSent(ctx: CanvasPushContext, url: DocUrl | null): Promise<boolean> {
  const doc = url ? await ctx.store.find(url) : undefined;
  return doc !== undefined && doc.course === ctx.course && !(doc.kind === "post" && (doc as Entity<"post">).deleted);
}
