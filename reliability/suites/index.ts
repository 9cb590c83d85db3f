import type { Suite } from "../suite.js";
import { crashes } from "./crashes.js";

/** Every suite, in the order `npm run reliability` runs them. */
export const SUITES: Suite[] = [crashes];
