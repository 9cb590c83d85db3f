import type { Suite } from "../suite.js";
import { abuseLimits } from "./abuse-limits.js";
import { authorization } from "./authorization.js";
import { connectorFaults } from "./connector-faults.js";
import { convergence } from "./convergence.js";
import { crashes } from "./crashes.js";
import { frameFuzz } from "./frame-fuzz.js";
import { powerLoss } from "./power-loss.js";
import { storageFaults } from "./storage-faults.js";

/** Every suite, in the order `npm run reliability` runs them. */
export const SUITES: Suite[] = [convergence, crashes, powerLoss, storageFaults, frameFuzz, authorization, abuseLimits, connectorFaults];
