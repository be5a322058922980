// `baton variables …`: Airflow's `airflow variables` through the REST API (admin role).
import type { Command } from "commander";
import { NAME_PATTERN } from "../../core/dagLimits.ts";
import { ApiCallError } from "../client.ts";
import { printObject, printRows } from "../output.ts";
import { fetchAll, printChange, withApi } from "./common.ts";

interface VariableJson {
  key: string;
  value: string;
  description: string | null;
}

const enc = encodeURIComponent;
/** A key POST /variables creates (the API's name rule); others can only be older rows, changed by PATCH. */
const CREATABLE_KEY = new RegExp(NAME_PATTERN, "u");

export function registerVariablesCommands(program: Command): void {
  const variables = program.command("variables").description("list, read, set and delete variables (values tasks read with ctx.variables)");

  variables
    .command("list")
    .description("list variables (values of sensitive keys show as ***)")
    .action(async (_opts, command: Command) =>
      withApi(command, async (client, { output }) => {
        const rows = await fetchAll<VariableJson>(client, "/variables", "variables");
        printRows(rows as unknown as Record<string, unknown>[], ["key", "value", "description"], output);
      }),
    );

  variables
    .command("get <key>")
    .description("print a variable's value (the whole object with --output json)")
    .action(async (key: string, _opts, command: Command) =>
      withApi(command, async (client, { output }) => {
        const v = await client.call<VariableJson>("GET", `/variables/${enc(key)}`);
        if (output === "json") printObject(v as unknown as Record<string, unknown>, output);
        else process.stdout.write(`${v.value}\n`);
      }),
    );

  variables
    .command("set <key> <value>")
    .description("create a variable, or change its value")
    .option("--description <text>", "what the variable is for")
    .action(async (key: string, value: string, opts: { description?: string }, command: Command) =>
      withApi(command, async (client, { output }) => {
        const change = () => client.call<VariableJson>("PATCH", `/variables/${enc(key)}`, { body: opts.description === undefined ? { value } : { value, description: opts.description } });
        const create = () => client.call<VariableJson>("POST", "/variables", { body: { key, value, description: opts.description } });
        let v: VariableJson;
        if (!CREATABLE_KEY.test(key)) {
          // Only an older Baton stored such a key (a tab in it): change it, or let POST say why not.
          v = await change().catch((err: unknown) => {
            if (err instanceof ApiCallError && err.code === "BATON_VARIABLE_NOT_FOUND") return create();
            throw err;
          });
        } else {
          v = await create().catch((err: unknown) => {
            if (err instanceof ApiCallError && err.code === "BATON_VARIABLE_EXISTS") return change();
            throw err;
          });
        }
        if (output === "json") printObject(v as unknown as Record<string, unknown>, output);
        else process.stdout.write(`variable ${key} set\n`);
      }),
    );

  variables
    .command("delete <key>")
    .description("delete a variable")
    .action(async (key: string, _opts, command: Command) =>
      withApi(command, async (client, { output }) => {
        await client.call("DELETE", `/variables/${enc(key)}`);
        printChange(output, `deleted variable ${key}`, { key, deleted: true });
      }),
    );
}
