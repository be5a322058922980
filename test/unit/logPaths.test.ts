import path from "node:path";
import { dagCallbackLogPath, runLogFolder, taskLogPath } from "../../core/logPaths.ts";

const LOGS = path.resolve("/var/log/baton");

/** True when p is strictly inside folder. */
function inside(folder: string, p: string): boolean {
  const rel = path.relative(folder, p);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
}

describe("taskLogPath", () => {
  it("follows Airflow's layout dag_id=…/run_id=…/task_id=…/attempt=N.log", () => {
    expect(taskLogPath(LOGS, { dagId: "etl", runId: "manual__2026-01-01T00:00:00+00:00", taskId: "load", tryNumber: 2 })).toBe(
      path.join(LOGS, "dag_id=etl", "run_id=manual__2026-01-01T00:00:00+00:00", "task_id=load", "attempt=2.log"),
    );
  });

  it("adds map_index=N for mapped task instances only", () => {
    const base = { dagId: "d", runId: "r", taskId: "t", tryNumber: 1 };
    expect(taskLogPath(LOGS, { ...base, mapIndex: 3 })).toBe(path.join(LOGS, "dag_id=d", "run_id=r", "task_id=t", "map_index=3", "attempt=1.log"));
    expect(taskLogPath(LOGS, { ...base, mapIndex: 0 })).toContain(`${path.sep}map_index=0${path.sep}`);
    expect(taskLogPath(LOGS, { ...base, mapIndex: -1 })).toBe(path.join(LOGS, "dag_id=d", "run_id=r", "task_id=t", "attempt=1.log"));
    expect(taskLogPath(LOGS, base)).toBe(path.join(LOGS, "dag_id=d", "run_id=r", "task_id=t", "attempt=1.log"));
  });

  it("gives every try its own file", () => {
    const files = [1, 2, 3].map((tryNumber) => taskLogPath(LOGS, { dagId: "d", runId: "r", taskId: "t", tryNumber }));
    expect(new Set(files).size).toBe(3);
  });

  it("keeps a relative logs folder relative to it", () => {
    expect(taskLogPath("logs", { dagId: "d", runId: "r", taskId: "t", tryNumber: 1 })).toBe(path.join("logs", "dag_id=d", "run_id=r", "task_id=t", "attempt=1.log"));
  });

  describe("hostile ids cannot escape the logs folder", () => {
    const hostile = [
      "..",
      ".",
      "...",
      "../../etc",
      "../../../../../../etc/passwd",
      "/etc/passwd",
      "a/../../b",
      "..\\..\\windows",
      "\\\\server\\share",
      "x\0y",
      "",
      "a/b/c",
    ];

    it.each(hostile)("dagId / runId / taskId = %p", (id) => {
      for (const field of ["dagId", "runId", "taskId"] as const) {
        const p = taskLogPath(LOGS, { dagId: "d", runId: "r", taskId: "t", [field]: id, tryNumber: 1 });
        expect(inside(LOGS, p)).toBe(true);
        // Exactly four levels below the logs folder: dag, run, task, attempt file.
        expect(path.relative(LOGS, p).split(path.sep)).toHaveLength(4);
        expect(p).not.toContain("\0");
      }
    });

    it("with every field hostile at once", () => {
      const p = taskLogPath(LOGS, { dagId: "../..", runId: "../../..", taskId: "/root/.ssh/authorized_keys", tryNumber: 1 });
      expect(inside(LOGS, p)).toBe(true);
      expect(path.basename(p)).toBe("attempt=1.log");
    });

    it("replaces separators instead of dropping them", () => {
      const p = taskLogPath(LOGS, { dagId: "a/b", runId: "c\\d", taskId: "..", tryNumber: 1 });
      expect(p).toBe(path.join(LOGS, "dag_id=a_b", "run_id=c_d", "task_id=_", "attempt=1.log"));
    });

    it("keeps dots inside ordinary ids", () => {
      expect(taskLogPath(LOGS, { dagId: "etl.v2", runId: "r..1", taskId: "t.", tryNumber: 1 })).toBe(
        path.join(LOGS, "dag_id=etl.v2", "run_id=r..1", "task_id=t.", "attempt=1.log"),
      );
    });
  });

  // A file name is at most 255 bytes (NAME_MAX on Linux and macOS). A DAG, task or run id may be
  // 250 characters, and "dag_id=" + 250 characters is 257: the log folder could not be created,
  // so a longer try of such a task kept no log at all (the API answered 404 BATON_LOG_NOT_FOUND).
  describe("ids at their maximum length", () => {
    const longest = { dagId: "d".repeat(250), runId: "r".repeat(250), taskId: "t".repeat(250), tryNumber: 1 };
    const segments = (p: string) => path.relative(LOGS, p).split(path.sep);

    it("keep every folder and file name within 255 bytes", () => {
      for (const p of [taskLogPath(LOGS, longest), taskLogPath(LOGS, { ...longest, mapIndex: 2_147_483_647 }), dagCallbackLogPath(LOGS, longest)]) {
        for (const name of segments(p)) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
      }
    });

    it("still start with the id and tell ids apart that differ only at their end", () => {
      const [dag, run, task] = segments(taskLogPath(LOGS, longest));
      expect(dag).toMatch(/^dag_id=d{200}/);
      expect(run).toMatch(/^run_id=r{200}/);
      expect(task).toMatch(/^task_id=t{200}/);
      const other = { ...longest, dagId: "d".repeat(249) + "e", runId: "r".repeat(249) + "s", taskId: "t".repeat(249) + "u" };
      const [dag2, run2, task2] = segments(taskLogPath(LOGS, other));
      expect([dag2 !== dag, run2 !== run, task2 !== task]).toEqual([true, true, true]);
      expect(runLogFolder(LOGS, other)).not.toBe(runLogFolder(LOGS, longest));
    });

    it("leave an id that fits as it is", () => {
      const fits = { dagId: "d".repeat(248), runId: "r".repeat(248), taskId: "t".repeat(247), tryNumber: 1 };
      expect(taskLogPath(LOGS, fits)).toBe(path.join(LOGS, `dag_id=${fits.dagId}`, `run_id=${fits.runId}`, `task_id=${fits.taskId}`, "attempt=1.log"));
    });
  });
});
