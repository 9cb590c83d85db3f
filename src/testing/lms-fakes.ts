// The fake Canvas and Discourse servers (real HTTP on loopback, seeded with a small course), for
// trying the connectors and testing apps built on them: `ordo-sync/testing`.
export { FakeCanvas, type FakeCanvasOptions } from "./fake-canvas/index.js";
export { FakeDiscourse, DEFAULT_DISCOURSE_API_KEY, type FakeDiscourseOptions } from "./fake-discourse/index.js";
