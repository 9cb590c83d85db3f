// The fake Canvas LMS for connector tests: real HTTP on loopback, seeded from the BIO101 fixtures.
export { FakeCanvas, type FakeCanvasOptions, type RecordedRequest } from "./fake-canvas.js";
export type { CourseScale } from "./canvas-generator.js";
export type { CanvasFault, RouteMatcher, ThrottleOptions } from "./canvas-throttle.js";
export type * from "./canvas-state.js";
