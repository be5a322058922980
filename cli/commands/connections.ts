// `baton connections …`: Airflow's `airflow connections` through the REST API (admin role).
// Passwords go in and never come out: the API does not return them.
import type { Command } from "commander";
import { BatonError } from "../../core/errors.ts";
import { printObject, printRows } from "../output.ts";
import { fetchAll, integerArg, printChange, withApi } from "./common.ts";

const enc = encodeURIComponent;

interface AddOptions {
  connType?: string;
  description?: string;
  host?: string;
  login?: string;
  password?: string;
  schema?: string;
  port?: number;
  extra?: string;
}

/** The API's connection fields from the flags that were given (left-out flags are left out). */
function fieldsOf(opts: AddOptions): Record<string, unknown> {
  const given = {
    conn_type: opts.connType,
    description: opts.description,
    host: opts.host,
    login: opts.login,
    password: opts.password,
    schema: opts.schema,
    port: opts.port,
    extra: opts.extra,
  };
  return Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
}

export function registerConnectionsCommands(program: Command): void {
  const connections = program.command("connections").description("list, show, add, update and delete connections (what tasks read with ctx.connection)");

  connections
    .command("list")
    .description("list connections (never their passwords)")
    .action(async (_opts, command: Command) =>
      withApi(command, async (client, { output }) => {
        const rows = await fetchAll<Record<string, unknown>>(client, "/connections", "connections");
        printRows(rows, ["connection_id", "conn_type", "host", "port", "login", "schema", "description"], output);
      }),
    );

  connections
    .command("get <connection_id>")
    .description("show a connection (sensitive extra values as ***, no password)")
    .action(async (id: string, _opts, command: Command) =>
      withApi(command, async (client, { output }) => printObject(await client.call("GET", `/connections/${enc(id)}`), output)),
    );

  connections
    .command("add <connection_id>")
    .description("add a connection")
    .requiredOption("--conn-type <type>", "e.g. postgres, mysql, http, aws")
    .option("--host <host>", "host name or address")
    .option("--login <login>", "user name")
    .option("--password <password>", "password (stored encrypted when BATON_SECRET_KEY is set; never shown again)")
    .option("--schema <schema>", "schema or database")
    .option("--port <port>", "port number", integerArg)
    .option("--extra <json>", `more settings as a JSON object, e.g. '{"sslmode": "require"}' ("" for none)`)
    .option("--description <text>", "what the connection is for")
    .action(async (id: string, opts: AddOptions, command: Command) =>
      withApi(command, async (client, { output }) => {
        const body = { connection_id: id, ...fieldsOf(opts) };
        const created = await client.call("POST", "/connections", { body });
        if (output === "json") printObject(created, output);
        else process.stdout.write(`added connection ${id}\n`);
      }),
    );

  connections
    .command("update <connection_id>")
    .description("change the given fields of a connection (PATCH with update_mask); the others stay")
    .option("--conn-type <type>", "e.g. postgres, mysql, http, aws")
    .option("--host <host>", "host name or address")
    .option("--login <login>", "user name")
    .option("--password <password>", "password (never shown again)")
    .option("--schema <schema>", "schema or database")
    .option("--port <port>", "port number", integerArg)
    .option("--extra <json>", 'more settings as a JSON object (replaces the whole extra; "" removes it)')
    .option("--description <text>", "what the connection is for")
    .action(async (id: string, opts: AddOptions, command: Command) =>
      withApi(command, async (client, { output }) => {
        const body = fieldsOf(opts);
        const fields = Object.keys(body);
        if (fields.length === 0) throw new BatonError("BATON_VALIDATION_FAILED", "give at least one field to change, e.g. --host or --password");
        const updated = await client.call("PATCH", `/connections/${enc(id)}`, { query: { update_mask: fields }, body });
        printChange(output, `updated connection ${id}: ${fields.join(", ")}`, updated);
      }),
    );

  connections
    .command("delete <connection_id>")
    .description("delete a connection")
    .action(async (id: string, _opts, command: Command) =>
      withApi(command, async (client, { output }) => {
        await client.call("DELETE", `/connections/${enc(id)}`);
        printChange(output, `deleted connection ${id}`, { connection_id: id, deleted: true });
      }),
    );
}
