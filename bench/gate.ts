// gate: what the hand-off gate costs as a statement of its own (finishTries' claimReads, one pool
// and one queue), in the two reads a worker chooses between (GateDepths) and a third shape, on one
// connection, the statement alone, variants alternated round by round:
//   shallow            claimReads() as built by default: the pool's first queued try, one index
//                      entry, no check (refuses at a try no claim takes; the worker then reads deep);
//   deep               claimReads() for a pool whose shallow read refused a hand-off lately: the
//                      pool's first GATE_DEPTH queued tries (index only, a derived table), the first
//                      a claim could take (task_instance and dag by PK);
//   first_then_prefix  the first entry checked (task_instance and dag by PK), the deep prefix only
//                      when that try is one no claim takes (IF: not run when the first passes or
//                      nothing is queued; ANALYZE FORMAT=JSON shows its r_loops 0).
// Cases: the first queued try passes (4,000 queued, 20,000 ended), nothing queued, 1,000 tries of
// a paused DAG ahead (priority 100; live tries at 1 past the depth). Metrics: client-seen p50 per
// statement (round trip included) and, where the server is local Linux MariaDB, the server's CPU per
// statement from the connection's own thread (/proc/<pid>/task/<tid>/schedstat): unlike wall time,
// it barely moves with other load on the machine.
import { execSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { RowDataPacket } from "../store/db.ts";
import { BACKFILL_PRIORITY_FLOOR } from "../store/transitions/claimTasks.ts";
import { claimReads } from "../store/transitions/finishTries.ts";
import { environment, freshDatabase, median, migrateDatabase, round, serverVersion, writeResult } from "./lib.ts";

const ROUNDS = 12;
const PER_ROUND = 200;
const QUEUE = "q";
const CASES = { first_passes: "g_first", nothing_queued: "g_empty", paused_ahead: "g_paused" } as const;

/** The three shapes, each for one pool and one queue. */
function shapes(pool: string): Record<string, { sql: string; params: unknown[] }> {
  const built = (deep: boolean) => {
    const s = claimReads([], [{ name: pool, released: 1, deep }], [QUEUE]);
    return { sql: s.sql, params: s.params ?? [] };
  };
  const deep = built(true);
  const room = "@baton_room_0 := (SELECT slots - occupied_slots FROM pool WHERE name = ?) + ? AS room_0";
  const prefix = deep.sql.slice(deep.sql.indexOf("@baton_top_0 := ") + "@baton_top_0 := ".length, deep.sql.lastIndexOf(" AS top_0"));
  return {
    shallow: built(false),
    deep,
    first_then_prefix: {
      sql: `SELECT ${room}, @baton_top_0 := (SELECT IF(d.dag_id IS NOT NULL AND t.pool_slots <= (SELECT slots FROM pool WHERE name = ?)
                                                       AND (d.is_paused = 0 OR t.priority_weight < ${BACKFILL_PRIORITY_FLOOR}), t.priority_weight, ${prefix})
              FROM task_instance t FORCE INDEX (ix_ti_pool_queue) LEFT JOIN dag d ON d.dag_id = t.dag_id
             WHERE t.state = 'queued' AND t.pool = ? AND t.queue = ? ORDER BY t.priority_weight DESC, t.id LIMIT 1) AS top_0`,
      params: [pool, 1, pool, ...deep.params.slice(2), pool, QUEUE],
    },
  };
}

export async function gate(): Promise<void> {
  const db = await freshDatabase("gate", 2);
  try {
    await migrateDatabase(db);
    const q = (sql: string, params: unknown[] = []) => db.pool.query(sql, params);
    await q("INSERT INTO dag (dag_id, fileloc, is_paused, last_parsed_at, created_at) VALUES ('g_live', 'x', 0, NOW(), NOW()), ('g_held', 'x', 1, NOW(), NOW())");
    await q("INSERT INTO pool (name, slots) VALUES ('g_first', 10), ('g_empty', 10), ('g_paused', 1)");
    let id = 0;
    const tries = async (n: number, dagId: string, pool: string, state: string, priority: number) => {
      for (let done = 0; done < n; done += 1000) {
        const rows = Array.from({ length: Math.min(1000, n - done) }, () => (++id, [id, id, dagId, "r", `t${id}`, state, priority, pool, QUEUE]));
        await q("INSERT INTO task_instance (id, dag_run_id, dag_id, run_id, task_id, state, priority_weight, pool, queue) VALUES ?", [rows]);
      }
    };
    await tries(20_000, "g_live", "g_first", "success", 1);
    await tries(4_000, "g_live", "g_first", "queued", 1);
    await tries(1_000, "g_held", "g_paused", "queued", 100);
    await tries(5, "g_live", "g_paused", "queued", 1);
    await q("ANALYZE TABLE task_instance, dag, pool");

    const conn = await db.pool.getConnection();
    try {
      let cpuNs: (() => number) | null = null;
      try {
        const [[row]] = await conn.query<RowDataPacket[]>("SELECT tid FROM information_schema.processlist WHERE id = CONNECTION_ID()");
        const pid = execSync("pgrep -xo mariadbd || pgrep -xo mysqld", { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
        const file = `/proc/${pid}/task/${row!.tid}/schedstat`;
        readFileSync(file);
        cpuNs = () => Number(readFileSync(file, "utf8").split(" ")[0]);
      } catch {
        // not a local Linux MariaDB: wall times only
      }
      const metrics: Record<string, number> = {};
      const notes: string[] = [];
      const wall = new Map<string, number[]>();
      const cpu = new Map<string, number[]>();
      for (const [name, pool] of Object.entries(CASES)) {
        const variants = shapes(pool);
        const reads: string[] = [];
        for (const [variant, s] of Object.entries(variants)) {
          await conn.query("FLUSH STATUS");
          const [[answer]] = (await conn.query(s.sql, s.params)) as unknown as [RowDataPacket[]];
          const [status] = await conn.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Handler_read%'");
          const counts = status.filter((r) => Number(r.Value) > 0).map((r) => `${String(r.Variable_name).replace("Handler_read_", "")} ${r.Value}`);
          reads.push(`${variant}: top ${answer!.top_0}, ${counts.join(", ")}`);
        }
        notes.push(`${name} (Handler_read_*): ${reads.join("; ")}`);
        for (let r = 0; r < ROUNDS; r++) {
          const order = Object.keys(variants);
          for (const variant of r % 2 === 0 ? order : order.reverse()) {
            const s = variants[variant]!;
            const key = `${variant}_${name}`;
            for (let i = 0; i < 10; i++) await conn.query(s.sql, s.params);
            const cpu0 = cpuNs?.();
            for (let i = 0; i < PER_ROUND; i++) {
              const t0 = performance.now();
              await conn.query(s.sql, s.params);
              if (!wall.has(key)) wall.set(key, []);
              wall.get(key)!.push((performance.now() - t0) * 1000);
            }
            if (cpuNs) cpu.set(key, [...(cpu.get(key) ?? []), (cpuNs() - cpu0!) / PER_ROUND / 1000]); // one value per round
          }
        }
      }
      for (const [key, values] of wall) metrics[`${key}_p50_us`] = round(median(values), 0);
      for (const [key, values] of cpu) metrics[`${key}_server_cpu_us`] = round(median(values), 0);
      notes.unshift(`${ROUNDS} alternated rounds × ${PER_ROUND} statements per shape and case, one connection; server CPU: median over rounds of the connection thread's CPU per statement${cpuNs ? "" : " (not measured: not a local Linux MariaDB)"}`);
      await writeResult({ name: "gate", metrics, targets: {}, env: environment({ version: await serverVersion(db) }), notes });
    } finally {
      conn.release();
    }
  } finally {
    await db.drop();
  }
}
