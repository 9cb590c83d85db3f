import { urlOf, type CanvasInstance } from "../connectors/canvas/canvas-mapping.js";
import type { DocStore } from "../crdt/doc-store.js";
import type { DocUrl } from "../crdt/ids.js";
import type { CanvasState } from "./fake-canvas/index.js";

/**
 * Work written on a node connected to the fake Canvas course 4201, one of each kind a push
 * creates, and how to find what Canvas made of it: for push tests, in this process or in a
 * child that is killed midway.
 */
export type LocalWork = "assignment" | "page" | "topic" | "announcement" | "entry";

export const LOCAL_WORK: readonly LocalWork[] = ["assignment", "page", "topic", "announcement", "entry"];

/** Writes one piece of local work marked with `tag` (in titles and text), as a teacher would. */
export async function writeLocalWork(docs: DocStore, instance: CanvasInstance, work: LocalWork, tag: string): Promise<DocUrl> {
  const course = urlOf(instance, "course", "4201")!;
  switch (work) {
    case "assignment":
      return (await docs.create("assignment", { course, title: `Lab ${tag}`, description: `Measure the **${tag}** leaf.`, pointsPossible: 10, published: true })).url;
    case "page":
      return (await docs.create("page", { course, title: `Notes ${tag}`, body: `Stomata on the ${tag} leaf.`, published: true })).url;
    case "topic":
    case "announcement":
      return (await docs.create("discussion_topic", { course, title: `${work === "topic" ? "Question" : "News"} ${tag}`, message: `What did the ${tag} slide show?`, announcement: work === "announcement" })).url;
    case "entry":
      // A reply to Priya's entry in "Introduce yourself".
      return (await docs.create("post", { course, topic: urlOf(instance, "discussion_topic", "41001"), parent: urlOf(instance, "entry", "61001"), message: `Welcome! I saw ${tag} cells too.` })).url;
  }
}

/** The ids of the Canvas objects made from the work marked `tag`. */
export function madeInCanvas(state: CanvasState, work: LocalWork, tag: string): string[] {
  const ids = (objects: Array<{ id?: unknown; page_id?: unknown }>) => objects.map((o) => String(o.page_id ?? o.id));
  switch (work) {
    case "assignment":
      return ids(state.assignments.filter((a) => a.name === `Lab ${tag}`));
    case "page":
      return ids(state.pages.filter((p) => p.title === `Notes ${tag}`));
    case "topic":
    case "announcement":
      return ids(state.topics.filter((t) => t.title === `${work === "topic" ? "Question" : "News"} ${tag}` && t.is_announcement === (work === "announcement")));
    case "entry":
      return ids((state.entries.get(41001) ?? []).filter((e) => e.deleted !== true && (e.message ?? "").includes(`I saw ${tag} cells`)));
  }
}
