import type { Command } from "commander";
import { Authority, readAuthorityPublicKey } from "../../net/authority.js";
import { listTrustedIssuers, trustIssuer } from "../../net/trust.js";
import { command, printResult, printRows, type CommonOptions } from "../cli-kit.js";

interface TrustAddFlags extends CommonOptions {
  note?: string;
}

/** `ordo trust add|list`, and `ordo authority`: which keys this node accepts tokens from, and its own. */
export function registerTrust(program: Command): void {
  const trust = program.command("trust").description("the authorities whose tokens this node accepts, besides its own");

  command(trust, "add", "accept tokens signed by another authority's key (a running node notices within a second)")
    .argument("<public-key>", "the authority's public key, as `ordo authority` prints it there")
    .option("--note <note>", "whose key this is, for people reading the list")
    .action((key: string, options: TrustAddFlags) => {
      const issuer = trustIssuer(options.data, key, options.note);
      printResult(options, issuer, `trusted ${issuer.key}${issuer.note ? ` (${issuer.note})` : ""}`);
    });

  command(trust, "list", "the keys this node accepts tokens from").action((options: CommonOptions) => {
    const own = readAuthorityPublicKey(options.data);
    const rows = [
      ...(own ? [{ key: own, note: "this node's authority", addedAt: "" }] : []),
      ...listTrustedIssuers(options.data).map((issuer) => ({ key: issuer.key, note: issuer.note ?? "", addedAt: issuer.addedAt })),
    ];
    printRows(options, rows, ["key", "note", "addedAt"]);
  });

  command(program, "authority", "print this node's authority public key (creating the key on first use), for other nodes to trust").action((options: CommonOptions) => {
    const authority = Authority.open(options.data);
    printResult(options, { publicKey: authority.publicKey, keyFile: authority.keyFile }, authority.publicKey);
  });
}
