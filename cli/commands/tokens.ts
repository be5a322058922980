import { InvalidArgumentError, type Command } from "commander";
import { tokenLifetimeMs } from "../../core/apiTokens.ts";
import { isRole } from "../../core/roles.ts";
import { printObject, printRows } from "../output.ts";
import { printChange, withApi } from "./common.ts";

/**
 * `--expires-in`, checked by the API's own check (tokenLifetimeMs) before any request, so a refusal names the
 * option and the form: the API's schema answered "0" with "body.expires_in must NOT have fewer than 2 characters".
 */
export function expiresInArg(value: string): string {
  tokenLifetimeMs(value, "--expires-in");
  return value;
}

export function registerTokenCommands(program: Command): void {
  const tokens = program.command("tokens").description("API tokens: create (shown once), list, revoke (admin)");

  tokens
    .command("create")
    .description("create a token and print it once (only its hash is stored)")
    .requiredOption("-n, --name <name>", "a unique name, e.g. ci-deployer")
    .requiredOption("-r, --role <role>", "viewer (read), operator (trigger, clear, signal, pause) or admin (also pools, variables, connections, tokens)", (v: string) => {
      if (!isRole(v)) throw new InvalidArgumentError('must be "viewer", "operator" or "admin"');
      return v;
    })
    .option("--expires-in <duration>", 'from 1s to 10 years, e.g. "90d", "12h"; no expiry when omitted', expiresInArg)
    .action(async function (this: Command, opts: { name: string; role: string; expiresIn?: string }) {
      await withApi(this, async (client, { output }) => {
        const created = await client.call("POST", "/tokens", { body: { name: opts.name, role: opts.role, expires_in: opts.expiresIn } });
        if (output === "json") return printObject(created, "json");
        process.stdout.write(`${created.token}\n`);
        process.stderr.write(`token "${created.name}" (${created.role}) created; it is not shown again\n`);
      });
    });

  tokens
    .command("list")
    .description("list tokens (never their values)")
    .action(async function (this: Command) {
      await withApi(this, async (client, { output }) => {
        const page = await client.call("GET", "/tokens", { query: { limit: 1000 } });
        printRows(page.tokens, ["name", "role", "prefix", "active", "created_at", "expires_at", "last_used_at"], output);
      });
    });

  tokens
    .command("revoke <name>")
    .description("revoke a token: requests with it get 401 within seconds")
    .action(async function (this: Command, name: string) {
      await withApi(this, async (client, { output }) => {
        await client.call("DELETE", `/tokens/${encodeURIComponent(name)}`);
        printChange(output, `revoked token ${name}`, { name, deleted: true });
      });
    });
}
