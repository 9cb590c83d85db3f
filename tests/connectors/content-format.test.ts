import { describe, expect, it } from "vitest";
import { htmlToMarkdown, isHtml, markdownToHtml, toHtml, toMarkdown } from "../../src/connectors/content-format.js";

describe("content format", () => {
  it("turns Canvas HTML into Discourse markdown", () => {
    const html = '<p>Read <strong>chapter 3</strong> and <em>take notes</em>.</p><p>See <a href="https://ex.test/a" data-api-endpoint="x">the guide</a>.<br>Due &amp; graded.</p><ul><li>one</li><li>two</li></ul>';
    expect(htmlToMarkdown(html)).toBe("Read **chapter 3** and *take notes*.\n\nSee [the guide](https://ex.test/a).\nDue & graded.\n\n- one\n- two");
  });

  it("renders markdown as HTML Canvas accepts, escaping what is not markup", () => {
    expect(markdownToHtml("Read **chapter 3** & *notes*.\nNext line\n\n1. a\n2. b\n\n# Title")).toBe("<p>Read <strong>chapter 3</strong> &amp; <em>notes</em>.<br>Next line</p><ol><li>a</li><li>b</li></ol><h1>Title</h1>");
    expect(markdownToHtml("x <script>")).toBe("<p>x &lt;script&gt;</p>");
  });

  it("round-trips what people write in a discussion", () => {
    const markdown = "I measured **3.2 cm** in [lab 2](https://ex.test/l2).\n\n- first\n- second";
    expect(htmlToMarkdown(markdownToHtml(markdown))).toBe(markdown);
  });

  it("converts only what is in the other form", () => {
    expect(isHtml("a < b and c > d")).toBe(false);
    expect(toHtml("<p>kept</p>")).toBe("<p>kept</p>");
    expect(toMarkdown("kept *as is*")).toBe("kept *as is*");
    expect(toHtml("")).toBe("");
  });
});
