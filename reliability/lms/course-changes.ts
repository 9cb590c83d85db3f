import { canvasInstance, urlOf } from "../../src/connectors/canvas/canvas-mapping.js";
import { mappedUrl } from "../../src/connectors/remote-records.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import type { Entity } from "../../src/crdt/schema/document.js";
import type { FaultyLms } from "./faulty-lms.js";

/** Where a change was made: on the node (to be pushed), or in Canvas or Discourse (to be pulled). */
export type Origin = "node" | "canvas" | "discourse";
export type CreatedKind = "assignment" | "page" | "topic" | "announcement" | "reply";

/** An object made on one side, and how many of it Canvas and Discourse must end with (the node: one). */
export interface Created {
  origin: Origin;
  kind: CreatedKind;
  /** A word only this object's title or text holds. */
  tag: string;
  canvas: 0 | 1;
  discourse: 0 | 1;
}

/**
 * Fields edited over and over on one side, each a different object, so that no edit meets
 * another on the way: the node edits the first four and grades, Canvas and Discourse the last two.
 */
export type EditedField = "assignment title" | "page body" | "entry message" | "topic message" | "assignment description in Canvas" | "post in Discourse";

/** The fixture objects the edits go to, by their Canvas and Discourse ids. */
export const EDITED = {
  assignment: "31001",
  page: "81001",
  entry: { canvas: "61001", discourse: 1002 },
  topic: { canvas: "41002", discourse: 302 },
  grade: "88001",
  remoteAssignment: "31002",
  remotePost: { canvas: "61003", discourse: 1004 },
} as const;

type Payload = Record<string, unknown>;
type EditedType = "assignment" | "page" | "entry" | "discussion_topic" | "grade";

/** The node's document of a Canvas object: the one it is mapped to, or the one its id names. */
export async function canvasDocument(lms: FaultyLms, type: EditedType, id: string): Promise<DocUrl> {
  return (await mappedUrl(lms.db, "canvas", type, id)) ?? urlOf(canvasInstance(lms.canvas.url), type, id)!;
}

/**
 * A seeded stream of changes to the course, on the node and in both systems, and a record of
 * what each must lead to once everything is synced: every object once on each side it belongs
 * to, and every edited field holding its last edit everywhere.
 */
export class CourseChanges {
  readonly created: Created[] = [];
  /** The tag of each field's last edit. */
  readonly lastEdit = new Map<EditedField, string>();
  /** The score last given on the node to the graded submission. */
  lastScore: number | null = null;
  #count = 0;

  constructor(
    private readonly lms: FaultyLms,
    private readonly random: () => number,
  ) {}

  /** One change made on the node, as its teacher would; says what it was. */
  async onNode(): Promise<string> {
    const { store, course } = this.lms;
    const tag = this.#tag();
    const made = (kind: CreatedKind, canvas: 0 | 1, discourse: 0 | 1) => this.created.push({ origin: "node", kind, tag, canvas, discourse });
    const choice = this.#pick(["assignment", "page", "topic", "announcement", "reply", "reply", "edit", "edit", "grade"] as const);
    switch (choice) {
      case "assignment":
        await store.create("assignment", { course, title: `Lab ${tag}`, description: `Measure the **${tag}** leaf.`, pointsPossible: 10, published: true });
        made("assignment", 1, 0);
        return `new assignment ${tag}`;
      case "page":
        await store.create("page", { course, title: `Notes ${tag}`, body: `Stomata on the ${tag} leaf, drawn.`, published: true });
        made("page", 1, 0);
        return `new page ${tag}`;
      case "topic":
      case "announcement": {
        const announcement = choice === "announcement";
        await store.create("discussion_topic", { course, title: `Question about ${tag} cells`, message: `What did the **${tag}** slide show us today?`, announcement, published: true });
        made(choice, 1, announcement ? 0 : 1);
        return `new ${choice} ${tag}`;
      }
      case "reply": {
        const topic = this.#pick(await this.#discussions());
        const siblings = (await store.list(course, "post")).filter((p) => p.topic === topic.url && !p.deleted).sort((a, b) => a.message.localeCompare(b.message));
        const parent = siblings.length > 0 && this.random() < 0.4 ? this.#pick(siblings).url : null;
        await store.create("post", { course, topic: topic.url, parent, author: null, message: `I saw ${tag} cells under the microscope too.` });
        made("reply", 1, 1);
        return `new reply ${tag} in "${topic.title}"${parent ? " under a reply" : ""}`;
      }
      case "edit":
        return this.#editOnNode(tag);
      case "grade": {
        const url = await this.#canvasDoc("grade", EDITED.grade);
        const score = Math.floor(this.random() * 11);
        await store.change<"grade">(url, (draft) => void (draft.score = score));
        this.lastScore = score;
        return `grade ${score}`;
      }
    }
  }

  /** One change made in Canvas or Discourse by someone else, with no fault in its way; says what it was. */
  async elsewhere(): Promise<string> {
    const tag = this.#tag();
    const made = (origin: Origin, kind: CreatedKind) => this.created.push({ origin, kind, tag, canvas: 1, discourse: 1 });
    const choice = this.#pick(["canvas topic", "canvas entry", "canvas edit", "discourse topic", "discourse reply", "discourse edit"] as const);
    return this.lms.withoutFaults(async () => {
      switch (choice) {
        case "canvas topic":
          await this.#canvas("POST", "/discussion_topics", { title: `Canvas topic on ${tag} ideas`, message: `<p>Share your ${tag} ideas here, please.</p>`, published: "true" });
          made("canvas", "topic");
          break;
        case "canvas entry": {
          const topics = this.lms.canvas.state.topics.filter((t) => !t.is_announcement && t.published !== false);
          await this.#canvas("POST", `/discussion_topics/${this.#pick(topics).id}/entries`, { message: `<p>Reminder about the ${tag} reading for Friday.</p>` });
          made("canvas", "reply");
          break;
        }
        case "canvas edit":
          await this.#canvas("PUT", `/assignments/${EDITED.remoteAssignment}`, { "assignment[description]": `<p>Upload a labelled ${tag} diagram.</p>` });
          this.lastEdit.set("assignment description in Canvas", tag);
          break;
        case "discourse topic":
          await this.#discourse("POST", "/posts.json", "priya_n", { title: `Forum talk about ${tag} membranes`, raw: `Does anyone have notes on ${tag} membranes?`, category: 12 });
          made("discourse", "topic");
          break;
        case "discourse reply": {
          const topics = [...this.lms.discourse.state.topics.values()].filter((t) => t.category_id === 12 && t.deleted_at === null && t.id !== 300);
          await this.#discourse("POST", "/posts.json", "tomas_l", { topic_id: this.#pick(topics).id, raw: `Greetings from the ${tag} lab bench, everyone!` });
          made("discourse", "reply");
          break;
        }
        case "discourse edit":
          await this.#discourse("PUT", `/posts/${EDITED.remotePost.discourse}.json`, "system", { post: { raw: `Welcome Priya! The ${tag} lab will give you a head start.` } });
          this.lastEdit.set("post in Discourse", tag);
          break;
      }
      return `${choice} ${tag}`;
    });
  }

  async #editOnNode(tag: string): Promise<string> {
    const { store } = this.lms;
    const field = this.#pick(["assignment title", "page body", "entry message", "topic message"] as const);
    switch (field) {
      case "assignment title":
        await store.change<"assignment">(await this.#canvasDoc("assignment", EDITED.assignment), (draft) => void (draft.title = `Lab 1: Microscope ${tag}`));
        break;
      case "page body":
        await store.change<"page">(await this.#canvasDoc("page", EDITED.page), (draft) => void (draft.body = `Welcome! Read the **${tag}** syllabus first.`));
        break;
      case "entry message":
        await store.change<"post">(await this.#canvasDoc("entry", EDITED.entry.canvas), (draft) => void (draft.message = `<p>Hi! I'm Priya, a nursing major (${tag}).</p>`));
        break;
      case "topic message":
        await store.change<"discussion_topic">(await this.#canvasDoc("discussion_topic", EDITED.topic.canvas), (draft) => void (draft.message = `<p>Post questions about the ${tag} reading here.</p>`));
        break;
    }
    this.lastEdit.set(field, tag);
    return `edit of the ${field}: ${tag}`;
  }

  /** The discussions (no announcements) the node holds now, where a reply can go, by title (document ids are random). */
  async #discussions(): Promise<Array<Entity<"discussion_topic">>> {
    const topics = await this.lms.store.list(this.lms.course, "discussion_topic");
    return topics.filter((t) => !t.announcement && t.published).sort((a, b) => a.title.localeCompare(b.title));
  }

  #canvasDoc(type: EditedType, id: string): Promise<DocUrl> {
    return canvasDocument(this.lms, type, id);
  }

  async #canvas(method: string, path: string, form: Record<string, string>): Promise<Payload> {
    const { canvas } = this.lms;
    const response = await fetch(`${canvas.url}/api/v1/courses/4201${path}`, { method, headers: { authorization: `Bearer ${canvas.token}`, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form).toString() });
    if (!response.ok) throw new Error(`Canvas refused ${method} ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Payload;
  }

  async #discourse(method: string, path: string, user: string, json: unknown): Promise<Payload> {
    const { discourse } = this.lms;
    const response = await fetch(`${discourse.url}${path}`, { method, headers: { "api-key": discourse.apiKey, "api-username": user, "content-type": "application/json" }, body: JSON.stringify(json) });
    if (!response.ok) throw new Error(`Discourse refused ${method} ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Payload;
  }

  /** A word no fixture holds and no other change's tag contains (all are the same length). */
  #tag(): string {
    return `zq${String(++this.#count).padStart(3, "0")}`;
  }

  #pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.random() * items.length)];
    if (item === undefined) throw new Error("nothing to choose from");
    return item;
  }
}
