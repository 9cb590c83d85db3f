import { InvalidArgumentError, Option, type Command } from "commander";
import { Authority } from "../../net/authority.js";
import { ROLES, TokenError, type Role } from "../../net/principal.js";
import { decodeToken, type TokenPayload } from "../../net/tokens.js";
import { revokeToken, Verifier } from "../../net/trust.js";
import { command, printJson, printResult, type CommonOptions } from "../cli-kit.js";

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A token's lifetime unless `--ttl` says otherwise: a school day, so a lost token is dead by tomorrow. */
export const DEFAULT_TTL = "8h";

/** Parses a lifetime for a flag (`30s`, `15m`, `8h`, `7d`) into milliseconds, refusing anything else with commander's one-line error. */
export function duration(value: string): number {
  const match = /^(\d+)([smhd])$/.exec(value);
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new InvalidArgumentError("expected a lifetime such as 30s, 15m, 8h or 7d");
  return ms;
}

function role(value: string): Role {
  if (!(ROLES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${ROLES.join(", ")}`);
  return value as Role;
}

function nonEmpty(value: string): string {
  if (value.length === 0) throw new InvalidArgumentError("expected a non-empty value");
  return value;
}

function collectCourse(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), nonEmpty(value)];
}

interface IssueFlags extends CommonOptions {
  user: string;
  course: string[];
  role: Role;
  ttl: number;
  key?: string;
}

export function registerToken(program: Command): void {
  const token = program.command("token").description("issue, revoke and inspect the signed tokens nodes accept");

  command(token, "issue", "sign a token with this node's authority key (created on first use)")
    .requiredOption("--user <user>", "the user's document URL (a node's name for role node)", nonEmpty)
    .requiredOption("--course <course>", 'a course document URL; repeat for more ("*": every course, role node only)', collectCourse)
    .addOption(new Option("--role <role>", `what the token grants: ${ROLES.join(", ")}`).argParser(role).makeOptionMandatory())
    .addOption(new Option("--ttl <ttl>", "how long the token lives: 30s, 15m, 8h, 7d").argParser(duration).default(duration(DEFAULT_TTL), DEFAULT_TTL))
    .option("--key <public-key>", "bind the token to the device that holds this key (`ordo authority` there prints it); required for role node", nonEmpty)
    .action((options: IssueFlags) => {
      const issued = Authority.open(options.data).issue({ user: options.user, role: options.role, courses: options.course, ttlMs: options.ttl, holderKey: options.key });
      const payload = decodeToken(issued);
      printResult(options, { token: issued, user: payload.sub, role: payload.role, courses: payload.courses, expiresAt: isoOf(payload.exp), tokenId: payload.jti }, issued);
    });

  command(token, "revoke", "refuse a token from now on, on this node (a running node notices within a second)")
    .argument("<token-or-id>", "the token, or its id (an id starting with '-', from an older node, goes after --)")
    .action((value: string, options: CommonOptions) => {
      const revocation = revokeToken(options.data, value);
      const payload = value.includes(".") ? decodeToken(value) : undefined;
      const who = payload ? `: ${payload.sub} (${payload.role}), would have expired ${isoOf(payload.exp)}` : "";
      printResult(options, revocation, `revoked token ${revocation.jti}${who}`);
    });

  command(token, "show", "print a token's claims and whether this node accepts it (exit code 1 when it does not)")
    .argument("<token>", "the token")
    .action((value: string, options: CommonOptions) => {
      let payload: TokenPayload | undefined;
      let refusal: TokenError | undefined;
      try {
        payload = decodeToken(value);
        Verifier.open(options.data).verify(value);
      } catch (error) {
        if (!(error instanceof TokenError)) throw error;
        refusal = error;
      }
      if (refusal) process.exitCode = 1;
      const verdict = refusal ? { accepted: false, problem: refusal.problem, message: refusal.message } : { accepted: true };
      if (options.json) {
        printJson({ payload: payload ?? null, ...verdict });
        return;
      }
      const lines = payload
        ? [
            `user:     ${payload.sub}`,
            `role:     ${payload.role}`,
            `courses:  ${payload.courses.join(", ")}`,
            `issuer:   ${payload.iss}`,
            `issued:   ${isoOf(payload.iat)}`,
            `expires:  ${isoOf(payload.exp)}`,
            `token id: ${payload.jti}`,
          ]
        : [];
      lines.push(refusal ? `refused:  ${refusal.problem} (${refusal.message})` : "accepted: yes");
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}

function isoOf(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}
