/**
 * Pure text helpers of the fake Discourse: `raw` (markdown) to `cooked` (HTML), slugs and timestamps.
 * Real Discourse curls quotes in `cooked`, so a connector that diffs `cooked` against what it sent
 * sees a change that never happened; the fake reproduces that on purpose (CONTRACT §5.5).
 */

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

function escapeHtml(text: string): string {
  return text.replace(/[&<>]/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** Straight quotes to typographic ones: an opening quote follows a start, space or bracket. */
function curlQuotes(text: string): string {
  return text
    .replace(/(^|[\s([{])"/g, "$1\u201c")
    .replace(/"/g, "\u201d")
    .replace(/(^|[\s([{])'/g, "$1\u2018")
    .replace(/'/g, "\u2019");
}

function cookInline(text: string): string {
  let html = escapeHtml(text);
  const codes: string[] = [];
  // Code spans keep their quotes straight, so they are set aside before curling.
  html = html.replace(/`([^`]+)`/g, (_m, code: string) => `\u0000${codes.push(code) - 1}\u0000`);
  html = html.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_m, label: string, href: string) => `<a href="${href}">${label}</a>`);
  html = html.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  html = html.replace(/(^|[^*\w])[*_]([^*_]+)[*_](?![*\w])/g, "$1<em>$2</em>");
  html = html
    .split(/(<[^>]+>)/)
    .map((part) => (part.startsWith("<") ? part : curlQuotes(part)))
    .join("");
  html = html.replace(/\n/g, "<br>\n");
  return html.replace(/\u0000(\d+)\u0000/g, (_m, i: string) => `<code>${codes[Number(i)] ?? ""}</code>`);
}

/**
 * Renders the markdown subset the fixtures and tests use: paragraphs, `#` headings, `-` lists,
 * bold, italics, code spans and links, with typographic quotes. The result never equals `raw`.
 *
 * @example cookRaw("I'm **here**") === "<p>I\u2019m <strong>here</strong></p>"
 */
export function cookRaw(raw: string): string {
  const blocks = raw.replace(/\r\n/g, "\n").trim().split(/\n{2,}/);
  return blocks
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const heading = /^(#{1,6})\s+(.*)$/.exec(block);
      if (heading?.[1] !== undefined && heading[2] !== undefined) {
        const level = heading[1].length;
        return `<h${level}>${cookInline(heading[2])}</h${level}>`;
      }
      const lines = block.split("\n");
      if (lines.every((line) => /^[-*]\s+/.test(line))) {
        return `<ul>\n${lines.map((line) => `<li>${cookInline(line.replace(/^[-*]\s+/, ""))}</li>`).join("\n")}\n</ul>`;
      }
      return `<p>${cookInline(block)}</p>`;
    })
    .join("\n");
}

/** Rough inverse of {@link cookRaw}, used only to give seeded posts that the fixtures show cooked-only a `raw`. */
export function uncook(cooked: string): string {
  return cooked
    .replace(/<\/?strong>/g, "**")
    .replace(/<\/?em>/g, "*")
    .replace(/<br>\n?/g, "\n")
    .replace(/<\/p>\s*<p>/g, "\n\n")
    .replace(/<[^>]+>/g, "")
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** Plain text of cooked HTML, for excerpts and `description_text`. */
export function textOf(cooked: string): string {
  return cooked.replace(/<[^>]+>/g, "").replace(/\s+/g, " ").trim();
}

/** Discourse slugs: lower-case ASCII words joined by dashes; "" when nothing ASCII is left (§5.9). */
export function slugify(title: string): string {
  return title
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/** Discourse timestamps are UTC with milliseconds and a `Z` (§2.1). */
export function isoMs(ms: number): string {
  return new Date(ms).toISOString();
}
