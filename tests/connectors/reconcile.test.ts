import { describe, expect, it } from "vitest";
import { reconcile, TIE_MS, type ReconcileInput } from "../../src/connectors/reconcile.js";
import { mergeText } from "../../src/connectors/text-merge.js";

const base = { local: { title: "Lab 1", message: "Bring goggles and a notebook.", points: 10 }, remote: { title: "Lab 1", message: "Bring goggles and a notebook.", points: 10 } };
const input = (over: Partial<ReconcileInput>): ReconcileInput => ({ system: "canvas", base, local: base.local, remote: base.remote, strategy: "merge_prefer_canvas", textFields: new Set(["message"]), ...over });

describe("mergeText", () => {
  it("keeps both edits when they touch different words", () => {
    expect(mergeText("Bring goggles and a notebook.", "Bring safety goggles and a notebook.", "Bring goggles and a pen.")).toBe("Bring safety goggles and a pen.");
  });

  it("refuses two different rewrites of the same words", () => {
    expect(mergeText("Due Friday.", "Due Monday.", "Due Tuesday.")).toBeNull();
  });

  it("takes one side when the other did not change, and agreeing edits once", () => {
    expect(mergeText("a b", "a b", "a c")).toBe("a c");
    expect(mergeText("a b", "a c d", "a c d")).toBe("a c d");
    expect(mergeText("one two three", "zero one two three", "one two three four")).toBe("zero one two three four");
  });

  it("refuses two insertions at the same place (their order is unknowable)", () => {
    expect(mergeText("a b", "a x b", "a y b")).toBeNull();
  });
});

describe("reconcile", () => {
  it("sends nothing for a field each side holds in its own form, unchanged since the last sync", () => {
    const forms = { local: { ...base.local, message: "Bring **goggles**." }, remote: { ...base.remote, message: "<p>Bring <strong>goggles</strong>.</p>" } };
    const outcome = reconcile(input({ base: forms, local: forms.local, remote: forms.remote }));
    expect(outcome).toMatchObject({ toLocal: {}, toRemote: {}, conflicts: [] });
    expect(outcome.nextBase).toEqual(forms);
  });

  it("takes a change made on one side only, whatever the strategy", () => {
    for (const strategy of ["prefer_canvas", "prefer_discourse", "prefer_recent", "merge_prefer_canvas", "merge_prefer_discourse"] as const) {
      const there = reconcile(input({ strategy, remote: { ...base.remote, points: 12 } }));
      expect(there.toLocal).toEqual({ points: 12 });
      expect(there.toRemote).toEqual({});
      const here = reconcile(input({ strategy, local: { ...base.local, title: "Lab one" } }));
      expect(here.toRemote).toEqual({ title: "Lab one" });
      expect(here.toLocal).toEqual({});
      expect(here.conflicts).toEqual([]);
    }
  });

  it("merges field by field and text where both changed different parts", () => {
    const out = reconcile(input({ local: { ...base.local, title: "Lab one", message: "Bring safety goggles and a notebook." }, remote: { ...base.remote, points: 12, message: "Bring goggles and a pen." } }));
    expect(out.toLocal).toEqual({ points: 12, message: "Bring safety goggles and a pen." });
    expect(out.toRemote).toEqual({ title: "Lab one", message: "Bring safety goggles and a pen." });
    expect(out.conflicts).toEqual([expect.objectContaining({ field: "message", resolution: "text merged: both changes kept" })]);
  });

  it("gives a real clash to the preferred system under the merge strategies", () => {
    const clash = { local: { ...base.local, title: "Lab A" }, remote: { ...base.remote, title: "Lab B" } };
    expect(reconcile(input({ ...clash, strategy: "merge_prefer_canvas" })).toLocal).toEqual({ title: "Lab B" });
    expect(reconcile(input({ ...clash, strategy: "merge_prefer_discourse" })).toRemote).toEqual({ title: "Lab A" });
    // Against Discourse, preferring Canvas means keeping the document (what Canvas gets).
    expect(reconcile(input({ ...clash, system: "discourse", strategy: "merge_prefer_canvas" })).toRemote).toEqual({ title: "Lab A" });
  });

  it("lets the preferred side win the whole object under prefer_*", () => {
    const both = { local: { ...base.local, title: "Lab one" }, remote: { ...base.remote, points: 12 } };
    const canvasWins = reconcile(input({ ...both, strategy: "prefer_canvas" }));
    expect(canvasWins.toLocal).toEqual({ title: "Lab 1", points: 12 });
    expect(canvasWins.toRemote).toEqual({});
    expect(canvasWins.conflicts.map((c) => c.field)).toEqual(["title"]);
    const localWins = reconcile(input({ ...both, strategy: "prefer_discourse" }));
    expect(localWins.toRemote).toEqual({ title: "Lab one", points: 10 });
    expect(localWins.conflicts.map((c) => c.field)).toEqual(["points"]);
  });

  it("lets the later side win under prefer_recent, ties going to the system", () => {
    const clash = { local: { ...base.local, title: "Lab A" }, remote: { ...base.remote, title: "Lab B" }, strategy: "prefer_recent" as const };
    expect(reconcile(input({ ...clash, localTime: "2026-03-01T10:00:10Z", remoteTime: "2026-03-01T10:00:00Z" })).toRemote).toEqual({ title: "Lab A" });
    expect(reconcile(input({ ...clash, localTime: "2026-03-01T10:00:00Z", remoteTime: "2026-03-01T10:00:10Z" })).toLocal).toEqual({ title: "Lab B" });
    const tie = new Date(Date.parse("2026-03-01T10:00:00Z") + TIE_MS - 1).toISOString();
    expect(reconcile(input({ ...clash, localTime: tie, remoteTime: "2026-03-01T10:00:00Z" })).toLocal).toEqual({ title: "Lab B" });
  });

  it("compares each side with its own base, so a system's rewrite of what it was sent is no change", () => {
    const sent = { local: { message: "See [notes](https://x.test/n)" }, remote: { message: '<p>See <a href="https://x.test/n" data-api-endpoint="z">notes</a></p>' } };
    const out = reconcile({ system: "canvas", base: sent, local: sent.local, remote: sent.remote, strategy: "merge_prefer_canvas" });
    expect(out).toMatchObject({ toLocal: {}, toRemote: {}, conflicts: [] });
  });

  it("takes the remote object as it is when the two were never in step", () => {
    const out = reconcile(input({ base: null, local: { title: "Mine" }, remote: { title: "Theirs" } }));
    expect(out.toLocal).toEqual({ title: "Theirs" });
    expect(out.conflicts).toEqual([]);
  });

  it("takes the system's value of a field added to the kind since the last sync, sending nothing and leaving the other fields to the strategy", () => {
    // The document reads the new field's fallback; the base, older than the field, names it on neither side.
    const local = { ...base.local, title: "Lab one", types: ["online_text_entry"] };
    const remote = { ...base.remote, types: ["online_upload"] };
    for (const strategy of ["prefer_canvas", "prefer_discourse", "prefer_recent", "merge_prefer_canvas", "merge_prefer_discourse"] as const) {
      const out = reconcile(input({ strategy, local, remote, localTime: "2026-03-01T10:00:10Z", remoteTime: "2026-03-01T10:00:00Z" }));
      expect(out.toLocal, strategy).toEqual({ types: ["online_upload"] });
      expect(out.toRemote, strategy).toEqual({ title: "Lab one" });
      expect(out.conflicts, strategy).toEqual([]);
      expect(out.nextBase.local.types, strategy).toEqual(["online_upload"]);
    }
  });

  it("records a next base under which a value still to send shows as changed here", () => {
    const out = reconcile(input({ local: { ...base.local, title: "Lab one" } }));
    expect(out.nextBase.local.title).toBe("Lab 1");
    expect(reconcile(input({ base: out.nextBase, local: { ...base.local, title: "Lab one" } })).toRemote).toEqual({ title: "Lab one" });
  });
});

describe("merging a text the document holds in another form than the system", () => {
  it("merges in the system's form from the remote base, so the form is no difference", async () => {
    const { toMarkdown } = await import("../../src/connectors/content-format.js");
    const sent = { local: { message: "<p>Bring goggles and a notebook.</p>" }, remote: { message: "Bring goggles and a notebook." } };
    const out = reconcile({
      system: "discourse",
      base: sent,
      local: { message: "<p>Bring safety goggles and a notebook.</p>" },
      remote: { message: "Bring goggles and a pen." },
      strategy: "merge_prefer_canvas",
      textFields: new Set(["message"]),
      remoteForm: toMarkdown,
    });
    expect(out.conflicts).toEqual([expect.objectContaining({ resolution: "text merged: both changes kept" })]);
    expect(out.toRemote).toEqual({ message: "Bring safety goggles and a pen." });
  });
});
