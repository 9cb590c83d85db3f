import { DEMO_SYSTEM } from "../demo/demo-course.js";
import { externalDocUrl, type DocUrl } from "../crdt/ids.js";
import { ALL_COURSES, type Principal, type Role } from "../net/principal.js";

/** The URL of the demo course's n-th student or teacher (seed 1), as the demo generator makes it. */
export function demoUser(role: "student" | "teacher", index: number, seed = 1): DocUrl {
  return externalDocUrl("user", { system: DEMO_SYSTEM, id: `${seed}/${role}/${index}` });
}

/** A principal as a verified token would yield it, for tests that do not need real tokens. */
export function principal(user: string, role: Role, courses: readonly string[], expiresAt = Date.now() + 3_600_000): Principal {
  return { user, role, courses, tokenId: `test-${user}-${role}`, issuer: "test-issuer", expiresAt };
}

export function nodePrincipal(name: string): Principal {
  return principal(name, "node", [ALL_COURSES]);
}
