// Scheduled runs end to end on a fake clock: catchup true/false, no duplicates across ticks
// and schedulers, maxActiveRuns for creation, pause/unpause, dagrunTimeout, ctx.dataInterval.
// The scheduler ticks only when a test calls tick(); real MariaDB, real workers.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { FakeClock } from "../../core/clock.ts";
import { Scheduler } from "../../scheduler/loop.ts";
import type { RowDataPacket } from "../../store/db.ts";
import { createScheduledRuns } from "../../store/transitions/createScheduledRuns.ts";
import { Harness, dagSource } from "../helpers/harness.ts";
import { waitFor } from "../helpers/db.ts";

const HOUR = 3_600_000;
const clock = new FakeClock("2026-01-04T00:00:00Z");
const h = new Harness({ clock, manualTicks: true, workers: 4 });

const readInterval = `async (ctx) => ({
    start: ctx.dataInterval.start ? ctx.dataInterval.start.toISOString() : null,
    end: ctx.dataInterval.end ? ctx.dataInterval.end.toISOString() : null,
    logical: ctx.logicalDate ? ctx.logicalDate.toISOString() : null,
  })`;

/** A task that waits until `file` exists (the test releases it), then returns. */
const holdUntil = (file: string) => `async () => {
    await new Promise((resolve) => { const t = setInterval(() => { if (existsSync(${JSON.stringify(file)})) { clearInterval(t); resolve(); } }, 20); });
    return "released";
  }`;

const held = (id: string, options: string, file: string, extra = "") => `import { existsSync } from "node:fs";
import { dag } from "baton";
export default dag({ id: "${id}", ${options} }, (t) => {
  const hold = t.task("hold", ${holdUntil(file)});
  ${extra}
});
`;

let releaseLimited: string;
let releaseTimeout: string;

async function runs(dagId: string): Promise<RowDataPacket[]> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>(
    `SELECT id, run_id, run_type, external_trigger, state, logical_date, data_interval_start, data_interval_end, version_hash
       FROM dag_run WHERE dag_id = ? ORDER BY id`,
    [dagId],
  );
  return rows;
}

async function dagRow(dagId: string): Promise<RowDataPacket> {
  const [[row]] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM dag WHERE dag_id = ?", [dagId]);
  return row!;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const logicalDates = async (dagId: string) => (await runs(dagId)).map((r) => iso(r.logical_date));

async function allDone(dagId: string, n: number): Promise<RowDataPacket[]> {
  return waitFor(`${n} runs of ${dagId} to succeed`, async () => {
    const rows = await runs(dagId);
    return rows.length === n && rows.every((r) => r.state === "success") ? rows : null;
  });
}

async function tis(dagId: string): Promise<Map<string, RowDataPacket>> {
  const [rows] = await h.db.pool.query<RowDataPacket[]>("SELECT task_id, state, error FROM task_instance WHERE dag_id = ?", [dagId]);
  return new Map(rows.map((r) => [r.task_id as string, r]));
}

beforeAll(async () => {
  await h.start();
  const root = path.dirname(h.dagsFolder);
  releaseLimited = path.join(root, "release_limited");
  releaseTimeout = path.join(root, "release_timeout");
  await h.writeDag(
    "catchup.ts",
    dagSource(`export default dag({ id: "sc_catchup", schedule: "@daily", startDate: "2026-01-01", catchup: true }, (t) => {
  t.task("interval", ${readInterval});
});`),
  );
  await h.writeDag(
    "latest.ts",
    dagSource(`export default dag({ id: "sc_latest", schedule: "@daily", startDate: "2026-01-01", catchup: false }, (t) => {
  t.task("interval", ${readInterval});
});`),
  );
  await h.writeDag(
    "paused.ts",
    dagSource(`export default dag({ id: "sc_paused", schedule: "@daily", startDate: "2026-01-01", catchup: true, isPausedUponCreation: true }, (t) => {
  t.task("noop", async () => 1);
});`),
  );
  await h.writeDag("limited.ts", held("sc_limited", `schedule: "@daily", startDate: "2026-01-01", catchup: true, maxActiveRuns: 2`, releaseLimited));
  await h.writeDag(
    "timeout.ts",
    held(
      "sc_timeout",
      `schedule: null, dagrunTimeout: "1h"`,
      releaseTimeout,
      `t.task("after", { upstream: [hold] }, async () => "never");\n  t.task("quick", async () => "done");`,
    ),
  );
  await h.run();
}, 60_000);

afterAll(() => h.stop());

describe("scheduled runs", () => {
  it("catchup: true creates exactly one run per missed interval, oldest first, and tasks see their data interval", async () => {
    const report = await h.scheduler.tick();
    expect(report.runsCreated).toBeGreaterThanOrEqual(3);
    const rows = await runs("sc_catchup");
    const { latest_version_hash } = await dagRow("sc_catchup");
    expect(
      rows.map((r) => ({
        run_id: r.run_id,
        run_type: r.run_type,
        external_trigger: r.external_trigger,
        logical_date: iso(r.logical_date),
        start: iso(r.data_interval_start),
        end: iso(r.data_interval_end),
        version_hash: r.version_hash,
      })),
    ).toEqual(
      ["2026-01-01", "2026-01-02", "2026-01-03"].map((day, i) => ({
        run_id: `scheduled__${day}T00:00:00.000Z`,
        run_type: "scheduled",
        external_trigger: 0,
        logical_date: `${day}T00:00:00.000Z`,
        start: `${day}T00:00:00.000Z`,
        end: `2026-01-0${i + 2}T00:00:00.000Z`,
        version_hash: latest_version_hash,
      })),
    );
    const dag = await dagRow("sc_catchup");
    expect([iso(dag.next_dagrun), iso(dag.next_dagrun_data_interval_end), iso(dag.next_dagrun_create_after)]).toEqual([
      "2026-01-04T00:00:00.000Z",
      "2026-01-05T00:00:00.000Z",
      "2026-01-05T00:00:00.000Z",
    ]);

    const done = await allDone("sc_catchup", 3);
    const [outputs] = await h.db.pool.query<RowDataPacket[]>(
      `SELECT dag_run_id, value FROM xcom WHERE dag_run_id IN (?, ?, ?) AND task_id = 'interval' ORDER BY dag_run_id`,
      done.map((r) => r.id),
    );
    expect(outputs.map((o) => JSON.parse(o.value))).toEqual(
      done.map((r) => ({ start: iso(r.data_interval_start), end: iso(r.data_interval_end), logical: iso(r.logical_date) })),
    );
  });

  it("never creates a run twice: repeated ticks, a second scheduler, a rewound dag row, two schedulers at once", async () => {
    for (let i = 0; i < 3; i++) expect((await h.scheduler.tick()).runsCreated).toBe(0);
    const second = new Scheduler(h.db, clock, h.logger, { intervalMs: 100 });
    try {
      expect((await second.tick()).runsCreated).toBe(0);
      const rewind = () =>
        h.db.pool.query(
          `UPDATE dag SET next_dagrun = '2026-01-01', next_dagrun_data_interval_start = '2026-01-01',
                  next_dagrun_data_interval_end = '2026-01-02', next_dagrun_create_after = '2026-01-02' WHERE dag_id = 'sc_catchup'`,
        );
      await rewind();
      const direct = await createScheduledRuns(h.db, clock.now());
      expect(direct.created.filter((c) => c.dagId === "sc_catchup")).toEqual([]);
      expect(direct.duplicates.filter((c) => c.dagId === "sc_catchup").map((c) => c.runId)).toEqual([
        "scheduled__2026-01-01T00:00:00.000Z",
        "scheduled__2026-01-02T00:00:00.000Z",
        "scheduled__2026-01-03T00:00:00.000Z",
      ]);
      expect(iso((await dagRow("sc_catchup")).next_dagrun)).toBe("2026-01-04T00:00:00.000Z");
      // The tick asks again only while a DAG may still be due: here, catching up one run per call.
      expect(direct.mayHaveMore).toBe(false);
      await rewind();
      const again: boolean[] = [];
      for (let pass = 0; pass < 5 && again.at(-1) !== false; pass++) again.push((await createScheduledRuns(h.db, clock.now(), { maxPerDag: 1 })).mayHaveMore);
      expect(again).toEqual([true, true, false]);
      expect(iso((await dagRow("sc_catchup")).next_dagrun)).toBe("2026-01-04T00:00:00.000Z");
      await rewind();
      await Promise.all([h.scheduler.tick(), second.tick(), h.scheduler.tick(), second.tick()]);
      expect(await logicalDates("sc_catchup")).toEqual(["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]);
      expect(iso((await dagRow("sc_catchup")).next_dagrun)).toBe("2026-01-04T00:00:00.000Z");
    } finally {
      await second.stop();
    }
  });

  it("the key itself refuses a second scheduled run for a logical date, but not a manual run on it", async () => {
    const [[first]] = await h.db.pool.query<RowDataPacket[]>("SELECT * FROM dag_run WHERE dag_id = 'sc_catchup' ORDER BY id LIMIT 1");
    const insert = (runId: string, runType: string) =>
      h.db.pool.query(
        `INSERT INTO dag_run (dag_id, run_id, version_hash, run_type, state, logical_date, data_interval_start, data_interval_end, queued_at)
         VALUES ('sc_catchup', ?, ?, ?, 'queued', ?, ?, ?, ?)`,
        [runId, first!.version_hash, runType, first!.logical_date, first!.data_interval_start, first!.data_interval_end, clock.now()],
      );
    await expect(insert("another_id", "scheduled")).rejects.toMatchObject({ code: "ER_DUP_ENTRY" });
    await insert("manual_same_date", "manual");
    await h.db.pool.query("DELETE FROM dag_run WHERE dag_id = 'sc_catchup' AND run_id = 'manual_same_date'");
  });

  it("a re-parse with a changed timetable recomputes next_dagrun from the latest scheduled run", async () => {
    await h.db.pool.query(
      `UPDATE dag SET start_date = NULL, next_dagrun = NULL, next_dagrun_data_interval_start = NULL,
              next_dagrun_data_interval_end = NULL, next_dagrun_create_after = NULL WHERE dag_id = 'sc_catchup'`,
    );
    await h.writeDag(
      "catchup.ts",
      dagSource(`export default dag({ id: "sc_catchup", schedule: "@daily", startDate: "2026-01-01", catchup: true }, (t) => {
  t.task("interval", ${readInterval});
}); // edited`),
    );
    await h.processor.scan();
    const dag = await dagRow("sc_catchup");
    expect([iso(dag.start_date), iso(dag.next_dagrun), iso(dag.next_dagrun_create_after)]).toEqual([
      "2026-01-01T00:00:00.000Z",
      "2026-01-04T00:00:00.000Z",
      "2026-01-05T00:00:00.000Z",
    ]);
    await h.scheduler.tick();
    expect(await runs("sc_catchup")).toHaveLength(3);
  });

  it("catchup: false creates only the latest complete interval", async () => {
    const rows = await allDone("sc_latest", 1);
    expect([rows[0]!.run_id, iso(rows[0]!.data_interval_start), iso(rows[0]!.data_interval_end)]).toEqual([
      "scheduled__2026-01-03T00:00:00.000Z",
      "2026-01-03T00:00:00.000Z",
      "2026-01-04T00:00:00.000Z",
    ]);
    await h.scheduler.tick();
    expect(await runs("sc_latest")).toHaveLength(1);
  });

  it("maxActiveRuns caps creation: no scheduled run beyond it until runs finish", async () => {
    expect(await logicalDates("sc_limited")).toEqual(["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"]);
    const blocked = await dagRow("sc_limited");
    expect(iso(blocked.next_dagrun)).toBe("2026-01-03T00:00:00.000Z");
    expect(blocked.next_dagrun_create_after.getTime()).toBeGreaterThan(clock.now().getTime()); // re-checked shortly
    await h.scheduler.tick();
    expect(await runs("sc_limited")).toHaveLength(2);
    await writeFile(releaseLimited, "go");
    await allDone("sc_limited", 2);
    clock.advance(5000);
    expect((await h.scheduler.tick()).runsCreated).toBe(1);
    expect((await logicalDates("sc_limited")).at(-1)).toBe("2026-01-03T00:00:00.000Z");
    await allDone("sc_limited", 3);
  });

  it("a paused DAG creates no runs; unpausing resumes from next_dagrun (catchup) or jumps to the latest interval", async () => {
    expect(await runs("sc_paused")).toHaveLength(0);
    expect(iso((await dagRow("sc_paused")).next_dagrun)).toBe("2026-01-01T00:00:00.000Z");
    const patch = (dagId: string, paused: boolean) => h.app.inject({ method: "PATCH", url: `/api/v1/dags/${dagId}`, payload: { is_paused: paused } });
    expect((await patch("sc_latest", true)).statusCode).toBe(200);

    clock.set("2026-01-08T12:00:00Z");
    await h.scheduler.tick();
    expect(await runs("sc_paused")).toHaveLength(0);
    expect(await runs("sc_latest")).toHaveLength(1);

    await patch("sc_latest", false);
    await patch("sc_paused", false);
    await h.scheduler.tick();
    expect(await logicalDates("sc_latest")).toEqual(["2026-01-03T00:00:00.000Z", "2026-01-07T00:00:00.000Z"]);
    expect(await logicalDates("sc_paused")).toEqual(
      ["01", "02", "03", "04", "05", "06", "07"].map((day) => `2026-01-${day}T00:00:00.000Z`),
    );
    expect(iso((await dagRow("sc_latest")).next_dagrun)).toBe("2026-01-08T00:00:00.000Z");
    await allDone("sc_paused", 7);
  });

  it("dagrunTimeout fails the run: running tasks failed (BATON_DAGRUN_TIMEOUT), unstarted ones skipped, late results fenced", async () => {
    const trigger = await h.app.inject({ method: "POST", url: "/api/v1/dags/sc_timeout/dagRuns", payload: {} });
    expect(trigger.statusCode).toBe(200);
    const startedAt = clock.now();
    await h.scheduler.tick();
    await waitFor("hold running and quick done", async () => {
      const t = await tis("sc_timeout");
      return t.get("hold")?.state === "running" && t.get("quick")?.state === "success";
    });

    clock.set(new Date(startedAt.getTime() + HOUR - 1000));
    expect((await h.scheduler.tick()).runsTimedOut).toBe(0);
    clock.set(new Date(startedAt.getTime() + HOUR + 1));
    expect((await h.scheduler.tick()).runsTimedOut).toBe(1);

    const [run] = await runs("sc_timeout");
    expect(run!.state).toBe("failed");
    const t = await tis("sc_timeout");
    expect(t.get("hold")!.state).toBe("failed");
    expect(JSON.parse(t.get("hold")!.error)).toMatchObject({ code: "BATON_DAGRUN_TIMEOUT", message: expect.stringContaining("dagrunTimeout (60m)") });
    expect(t.get("after")!.state).toBe("skipped");
    expect(t.get("quick")!.state).toBe("success");
    const [[pool]] = await h.db.pool.query<RowDataPacket[]>(
      `SELECT p.occupied_slots, (SELECT COALESCE(SUM(pool_slots), 0) FROM task_instance WHERE state = 'running' AND pool = p.name) AS running
         FROM pool p WHERE p.name = 'default_pool'`,
    );
    expect(Number(pool!.occupied_slots)).toBe(Number(pool!.running));
    expect((await h.scheduler.tick()).runsTimedOut).toBe(0);

    // The held try ends after all: the worker records it, and the fence discards it.
    await writeFile(releaseTimeout, "go");
    await h.worker!.stop(10_000);
    expect((await tis("sc_timeout")).get("hold")!.state).toBe("failed");
    expect((await runs("sc_timeout"))[0]!.state).toBe("failed");
  });
});

describe("manual runs of scheduled DAGs", () => {
  it("cover the schedule's latest complete interval before their logical date, as in Airflow", async () => {
    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/dags/sc_latest/dagRuns",
      payload: { dag_run_id: "manual_interval", logical_date: "2026-03-03T10:30:00Z" },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      logical_date: "2026-03-03T10:30:00.000Z",
      data_interval_start: "2026-03-02T00:00:00.000Z",
      data_interval_end: "2026-03-03T00:00:00.000Z",
    });
  });
});
