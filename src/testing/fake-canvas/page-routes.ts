// Fake Canvas wiki pages: addressed by slug (which changes on rename) or by `page_id:N`, with an upserting PUT.
import { denied, invalid, notFound, ok, type Reply, type RouteContext, type RouteHandler } from "./canvas-reply.js";
import { displayUser, isStaff, type CanvasPage } from "./canvas-state.js";
import { formatCanvasTime, paramBoolean, paramObject, paramString, rewriteUserHtml, slugify } from "./canvas-wire.js";

function findPage(ctx: RouteContext): CanvasPage | undefined {
  const key = ctx.params.page ?? "";
  // The slug takes precedence; `page_id:` forces an id lookup.
  if (key.startsWith("page_id:")) return ctx.state.pages.find((p) => String(p.page_id) === key.slice("page_id:".length));
  return ctx.state.pages.find((p) => p.url === key);
}

function withoutBody(page: CanvasPage): Omit<CanvasPage, "body"> {
  const copy: Partial<CanvasPage> = { ...page };
  delete copy.body;
  return copy as Omit<CanvasPage, "body">;
}

/** A slug no other page uses: `title`, then `title-2`, `title-3`... */
function freeSlug(ctx: RouteContext, title: string, self?: CanvasPage): string {
  const base = slugify(title);
  let slug = base;
  for (let n = 2; ctx.state.pages.some((p) => p !== self && p.url === slug); n++) slug = `${base}-${n}`;
  return slug;
}

function listPages(ctx: RouteContext): Reply {
  const sort = paramString(ctx.input.sort) ?? "title";
  const desc = paramString(ctx.input.order) === "desc";
  const key = (p: CanvasPage): string => (sort === "created_at" || sort === "updated_at" ? String(p[sort]) : p.title.toLowerCase());
  const published = paramBoolean(ctx.input.published);
  const staff = isStaff(ctx.state, ctx.userId);
  const list = ctx.state.pages
    .filter((p) => (staff || p.published === true) && (published === undefined || p.published === published))
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.page_id - b.page_id) * (desc ? -1 : 1))
    .map(withoutBody);
  return { status: 200, list, paging: "numbered" };
}

function getPage(ctx: RouteContext): Reply {
  const page = findPage(ctx);
  return page && (page.published === true || isStaff(ctx.state, ctx.userId)) ? ok(page) : notFound();
}

function applyPageFields(ctx: RouteContext, page: CanvasPage, fields: Record<string, unknown>): void {
  const title = paramString(fields.title);
  if (title !== undefined && title !== page.title) {
    const before = page.url;
    page.title = title;
    page.url = freeSlug(ctx, title, page);
    page.html_url = `${ctx.origin}/courses/${ctx.state.course.id}/pages/${page.url}`;
    // Module items name their page by slug, and Canvas prints the page's current one.
    for (const item of ctx.state.moduleItems) {
      if (item.type !== "Page" || item.page_url !== before) continue;
      item.page_url = page.url;
      item.url = `${ctx.origin}/api/v1/courses/${ctx.state.course.id}/pages/${page.url}`;
    }
  }
  const body = paramString(fields.body);
  if (body !== undefined) page.body = rewriteUserHtml(body, ctx.origin);
  const roles = paramString(fields.editing_roles);
  if (roles !== undefined) page.editing_roles = roles;
  const published = paramBoolean(fields.published);
  if (published !== undefined) {
    page.published = published;
    page.hide_from_students = !published;
  }
  const front = paramBoolean(fields.front_page);
  if (front === true) {
    // One front page per course; the page being made is not in the list yet.
    for (const other of ctx.state.pages) other.front_page = false;
    page.front_page = true;
  }
  page.updated_at = formatCanvasTime(ctx.now());
  page.last_edited_by = displayUser(ctx.state, ctx.userId, ctx.origin);
}

function newPage(ctx: RouteContext, title: string): CanvasPage {
  const now = formatCanvasTime(ctx.now());
  const url = freeSlug(ctx, title);
  return {
    page_id: ctx.state.nextId++, url, title, body: "", created_at: now, updated_at: now, editing_roles: "teachers",
    published: false, hide_from_students: true, front_page: false, todo_date: null, publish_at: null, locked_for_user: false,
    html_url: `${ctx.origin}/courses/${ctx.state.course.id}/pages/${url}`,
  };
}

/** Pages are created unpublished unless `wiki_page[published]` says otherwise. */
function createPage(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const fields = paramObject(ctx.input.wiki_page);
  const title = paramString(fields.title) ?? "";
  if (title.trim() === "") return invalid("title", "blank");
  const page = newPage(ctx, title);
  applyPageFields(ctx, page, fields);
  ctx.state.pages.push(page);
  return ok(page);
}

/** Upserts: an unknown slug creates the page. A new title changes the slug. */
function updatePage(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const fields = paramObject(ctx.input.wiki_page);
  let page = findPage(ctx);
  if (!page) {
    const key = ctx.params.page ?? "";
    if (key.startsWith("page_id:")) return notFound();
    page = newPage(ctx, paramString(fields.title) ?? key.replace(/-/g, " "));
    ctx.state.pages.push(page);
  }
  applyPageFields(ctx, page, fields);
  return ok(page);
}

function deletePage(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const page = findPage(ctx);
  if (!page) return notFound();
  if (page.front_page) return { status: 400, json: { message: "The front page cannot be deleted" } };
  ctx.state.pages = ctx.state.pages.filter((p) => p !== page);
  return ok(withoutBody(page));
}

export const PAGE_ROUTES: [string, string, RouteHandler][] = [
  ["GET", "/courses/:course_id/pages", listPages],
  ["POST", "/courses/:course_id/pages", createPage],
  ["GET", "/courses/:course_id/pages/:page", getPage],
  ["PUT", "/courses/:course_id/pages/:page", updatePage],
  ["DELETE", "/courses/:course_id/pages/:page", deletePage],
];
