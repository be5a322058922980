import { InvalidArgumentError, type Command } from "commander";
import { MAX_TOKEN_LIFETIME_MS } from "../../core/apiTokens.ts";
import { parseDuration } from "../../core/durations.ts";
import { BatonError } from "../../core/errors.ts";
import { isRole } from "../../core/roles.ts";
import { printObject, printRows } from "../output.ts";
import { printChange, withApi } from "./common.ts";

/**
 * `--expires-in`, checked as the API checks `expires_in` (a duration from 1s to 10 years), so a refusal names the
 * option and the form: the API's schema answered "0" with "body.expires_in must NOT have fewer than 2 characters".
 */
function expiresInArg(value: string): string {
  let ms = Number.NaN;
  try {
    ms = parseDuration(value, "--expires-in");
  } catch {
    // refused below
  }
  if (!(ms >= 1000 && ms <= MAX_TOKEN_LIFETIME_MS) || value.length > 32) {
    throw new BatonError("BATON_VALIDATION_FAILED", `--expires-in "${value}" must be a duration from 1s to 10 years, such as 90d, 12h or 30m`);
  }
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
