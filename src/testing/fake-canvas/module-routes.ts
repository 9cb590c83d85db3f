// Fake Canvas modules and module items: items inline only for small modules, modules created unpublished.
import { denied, notFound, ok, type Reply, type RouteContext, type RouteHandler } from "./canvas-reply.js";
import { isStaff, type CanvasModule, type CanvasModuleItem } from "./canvas-state.js";
import { formatCanvasTime, paramBoolean, paramList, paramObject, paramString, parseCanvasTime, type JsonObject } from "./canvas-wire.js";

function moduleItems(ctx: RouteContext, moduleId: number): CanvasModuleItem[] {
  return ctx.state.moduleItems.filter((i) => i.module_id === moduleId).sort((a, b) => a.position - b.position);
}

function findModule(ctx: RouteContext): CanvasModule | undefined {
  return ctx.state.modules.find((m) => String(m.id) === ctx.params.module_id);
}

/** `include[]=items` inlines items only for small modules; otherwise `items` is absent and `items_url` must be used. */
function presentModule(ctx: RouteContext, module: CanvasModule): JsonObject {
  const items = moduleItems(ctx, module.id);
  const copy: JsonObject = { ...module, items_count: items.length };
  copy.items_url = `${ctx.origin}/api/v1/courses/${ctx.state.course.id}/modules/${module.id}/items`;
  if (paramList(ctx.input.include).includes("items") && items.length <= ctx.state.knobs.inlineItemsLimit) copy.items = items;
  return copy;
}

function listModules(ctx: RouteContext): Reply {
  const list = [...ctx.state.modules].sort((a, b) => a.position - b.position).map((m) => presentModule(ctx, m));
  return { status: 200, list, paging: "numbered" };
}

function getModule(ctx: RouteContext): Reply {
  const module = findModule(ctx);
  return module ? ok(presentModule(ctx, module)) : notFound();
}

function listModuleItems(ctx: RouteContext): Reply {
  const module = findModule(ctx);
  return module ? { status: 200, list: moduleItems(ctx, module.id), paging: "numbered" } : notFound();
}

function getModuleItem(ctx: RouteContext): Reply {
  const item = ctx.state.moduleItems.find((i) => String(i.module_id) === ctx.params.module_id && String(i.id) === ctx.params.item_id);
  return item ? ok(item) : notFound();
}

/** Moves `module` to a 1-based position, shifting the others. */
function place(ctx: RouteContext, module: CanvasModule, position: number): void {
  const others = ctx.state.modules.filter((m) => m !== module).sort((a, b) => a.position - b.position);
  others.splice(Math.max(0, Math.min(others.length, position - 1)), 0, module);
  others.forEach((m, i) => (m.position = i + 1));
}

/** Applies `module[...]` fields; an error reply or null. Publishing publishes the items too. */
function applyModuleFields(ctx: RouteContext, module: CanvasModule, fields: Record<string, unknown>): Reply | null {
  const name = paramString(fields.name);
  if (name !== undefined) module.name = name;
  const unlock = paramString(fields.unlock_at);
  if (unlock !== undefined) {
    const ms = unlock === "" ? null : parseCanvasTime(unlock, ctx.state.course.time_zone);
    if (unlock !== "" && ms === null) return { status: 400, json: { errors: { unlock_at: [{ attribute: "unlock_at", type: "invalid", message: "invalid" }] } } };
    module.unlock_at = ms === null ? null : formatCanvasTime(ms);
  }
  const sequential = paramBoolean(fields.require_sequential_progress);
  if (sequential !== undefined) module.require_sequential_progress = sequential;
  const finalGrade = paramBoolean(fields.publish_final_grade);
  if (finalGrade !== undefined) module.publish_final_grade = finalGrade;
  if ("prerequisite_module_ids" in fields) module.prerequisite_module_ids = paramList(fields.prerequisite_module_ids).map(Number);
  const position = paramString(fields.position);
  if (position !== undefined) place(ctx, module, Number(position));
  const published = paramBoolean(fields.published);
  if (published !== undefined) {
    module.published = published;
    if (published) for (const item of moduleItems(ctx, module.id)) item.published = true;
  }
  return null;
}

/** Created unpublished, whatever the request says about publishing; a missing name is an ad-hoc 400. */
function createModule(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const fields = paramObject(ctx.input.module);
  if ((paramString(fields.name) ?? "").trim() === "") return { status: 400, json: { message: "missing module name" } };
  const module: CanvasModule = {
    id: ctx.state.nextId++, name: "", position: ctx.state.modules.length + 1, unlock_at: null, require_sequential_progress: false,
    requirement_type: "all", publish_final_grade: false, prerequisite_module_ids: [], published: false,
  };
  ctx.state.modules.push(module);
  const error = applyModuleFields(ctx, module, { ...fields, published: undefined });
  if (error) {
    ctx.state.modules = ctx.state.modules.filter((m) => m !== module);
    return error;
  }
  return ok(presentModule(ctx, module));
}

function updateModule(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const module = findModule(ctx);
  if (!module) return notFound();
  const fields = paramObject(ctx.input.module);
  const error = applyModuleFields(ctx, module, fields);
  if (error) return error;
  const json = presentModule(ctx, module);
  if (paramBoolean(fields.published) !== undefined) Object.assign(json, { publish_warning: false, unpublish_warning: false });
  return ok(json);
}

/** Answers with the module; it and its items vanish (no tombstone), so a later GET is a 404. */
function deleteModule(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const module = findModule(ctx);
  if (!module) return notFound();
  const json = presentModule(ctx, module);
  ctx.state.modules = ctx.state.modules.filter((m) => m !== module);
  ctx.state.moduleItems = ctx.state.moduleItems.filter((i) => i.module_id !== module.id);
  return ok(json);
}

const MODULE = "/courses/:course_id/modules/:module_id";

export const MODULE_ROUTES: [string, string, RouteHandler][] = [
  ["GET", "/courses/:course_id/modules", listModules],
  ["POST", "/courses/:course_id/modules", createModule],
  ["GET", MODULE, getModule],
  ["PUT", MODULE, updateModule],
  ["DELETE", MODULE, deleteModule],
  ["GET", `${MODULE}/items`, listModuleItems],
  ["GET", `${MODULE}/items/:item_id`, getModuleItem],
];
