/**
 * Prose between Canvas (HTML) and Discourse (markdown `raw`). A document keeps a message in
 * the form it arrived in; a connector converts only what it sends. The conversions cover what
 * people write in class discussions (paragraphs, line breaks, emphasis, links, lists, headings,
 * code); anything else passes as plain text. Pure functions.
 */

const TAG = /<\/?[a-z][a-z0-9]*(\s[^>]*)?\/?>/i;

/** Whether a message is HTML (Canvas's form) rather than markdown. */
export function isHtml(text: string): boolean {
  return TAG.test(text);
}

/** HTML for Canvas: HTML passes as is, markdown is rendered. */
export function toHtml(text: string): string {
  return isHtml(text) || text.length === 0 ? text : markdownToHtml(text);
}

/** Markdown for Discourse: markdown passes as is, HTML is converted. */
export function toMarkdown(text: string): string {
  return isHtml(text) ? htmlToMarkdown(text) : text;
}

export function markdownToHtml(markdown: string): string {
  const blocks = markdown.replace(/\r\n?/g, "\n").trim().split(/\n{2,}/);
  return blocks.map(blockToHtml).join("");
}

function blockToHtml(block: string): string {
  const lines = block.split("\n");
  const heading = /^(#{1,6})\s+(.*)$/.exec(block);
  if (heading && lines.length === 1) return `<h${heading[1]!.length}>${inline(heading[2]!)}</h${heading[1]!.length}>`;
  if (lines.every((line) => /^\s*[-*]\s+/.test(line))) return `<ul>${lines.map((line) => `<li>${inline(line.replace(/^\s*[-*]\s+/, ""))}</li>`).join("")}</ul>`;
  if (lines.every((line) => /^\s*\d+\.\s+/.test(line))) return `<ol>${lines.map((line) => `<li>${inline(line.replace(/^\s*\d+\.\s+/, ""))}</li>`).join("")}</ol>`;
  if (block.startsWith("```") && block.endsWith("```")) return `<pre><code>${escapeHtml(block.replace(/^```[^\n]*\n?/, "").replace(/\n?```$/, ""))}</code></pre>`;
  return `<p>${lines.map(inline).join("<br>")}</p>`;
}

function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(/\b_([^_]+)_\b/g, "<em>$1</em>")
    .replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<a href="$2">$1</a>');
}

export function htmlToMarkdown(html: string): string {
  let text = html.replace(/\r\n?/g, "\n");
  text = text.replace(/<pre[^>]*>\s*<code[^>]*>([\s\S]*?)<\/code>\s*<\/pre>/gi, (_, code: string) => `\n\n\`\`\`\n${decodeEntities(code)}\n\`\`\`\n\n`);
  text = text.replace(/<h([1-6])[^>]*>([\s\S]*?)<\/h\1>/gi, (_, level: string, body: string) => `\n\n${"#".repeat(Number(level))} ${body}\n\n`);
  text = text.replace(/<ol[^>]*>([\s\S]*?)<\/ol>/gi, (_, items: string) => `\n\n${listItems(items).map((item, i) => `${i + 1}. ${item}`).join("\n")}\n\n`);
  text = text.replace(/<ul[^>]*>([\s\S]*?)<\/ul>/gi, (_, items: string) => `\n\n${listItems(items).map((item) => `- ${item}`).join("\n")}\n\n`);
  text = text
    .replace(/<br\s*\/?>/gi, "\n")
    .replace(/<\/p>\s*/gi, "\n\n")
    .replace(/<p[^>]*>/gi, "")
    .replace(/<(strong|b)(\s[^>]*)?>([\s\S]*?)<\/\1>/gi, "**$3**")
    .replace(/<(em|i)(\s[^>]*)?>([\s\S]*?)<\/\1>/gi, "*$3*")
    .replace(/<code[^>]*>([\s\S]*?)<\/code>/gi, "`$1`")
    .replace(/<a\s[^>]*href="([^"]*)"[^>]*>([\s\S]*?)<\/a>/gi, "[$2]($1)")
    .replace(/<[^>]+>/g, "");
  return decodeEntities(text)
    .replace(/[ \t]+\n/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

function listItems(html: string): string[] {
  return [...html.matchAll(/<li[^>]*>([\s\S]*?)<\/li>/gi)].map((match) => match[1]!.trim());
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function decodeEntities(text: string): string {
  return text
    .replace(/&nbsp;/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCodePoint(Number(code)))
    .replace(/&amp;/g, "&");
}
