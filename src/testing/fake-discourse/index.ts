/** The fake Discourse forum for tests: start it, point a connector at `url`, inspect `state`. */
export { FakeDiscourse, DEFAULT_DISCOURSE_API_KEY, type FakeDiscourseOptions, type DiscourseRequestRecord } from "./fake-discourse.js";
export { DiscourseState, DiscourseStateError, DEFAULT_DISCOURSE_SETTINGS, type DiscourseUser, type DiscourseCategory, type DiscourseTopic, type DiscoursePost, type DiscourseSettings, type DiscourseChange } from "./discourse-state.js";
export { DiscourseFaults, type DiscourseFaultKind, type DiscourseFaultRule } from "./discourse-faults.js";
export { signDiscourseWebhook, type DiscourseWebhookOptions, type DiscourseWebhookDelivery } from "./discourse-webhooks.js";
export { generateDiscourseForum, readDiscourseFixture, DEFAULT_DISCOURSE_FIXTURES_DIR, type DiscourseScale } from "./discourse-seed.js";
export { cookRaw } from "./discourse-cook.js";
export { deleteOwnPost, rebakePost, hideRevision, pendingPosts, DELETED_BY_AUTHOR, type PendingPost } from "./discourse-moderation.js";
