import { createHash } from "node:crypto";
import { serializeDag } from "../../parser/serialize.ts";
import { dag } from "../../sdk/dag.ts";
import { forgetFile, recordParsedFile, type ParsedFile } from "../../store/dagFiles.ts";
import type { Db, RowDataPacket } from "../../store/db.ts";
import { parseJsonText } from "../../store/rows.ts";
import { createTestDb, dropTestDb, waitFor } from "../helpers/db.ts";

const FOLDER = "/race/dags";
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** What the DAG processor records for a file defining DAG `dagId` with one task `task`. */
function parsedFile(name: string, dagId: string, task: string): ParsedFile {
  const fileloc = `${FOLDER}/${name}`;
  const structure = serializeDag(
    dag({ id: dagId }, (t) => void t.task(task, async () => undefined)),
    fileloc,
  );
  const code = `// ${name}: ${dagId}.${task}`;
  const codeHash = sha256(code);
  return { fileloc, dagsFolder: FOLDER, contentHash: sha256(`content ${name}`), deps: [], codeHash, code, dags: [{ structure, versionHash: sha256(codeHash + JSON.stringify(structure)) }] };
}

/** Whether a statement starting with `prefix` is running on this database (waiting for a lock, here). */
async function running(db: Db, prefix: string): Promise<boolean> {
  const [rows] = await db.pool.query<RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE CONCAT(?, '%')",
    [prefix],
  );
  return Number(rows[0]!.n) > 0;
}

describe("two files defining one new DAG id, recorded at once", () => {
  let db: Db;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(() => dropTestDb(db));

  it("accept the first and make the second a BATON_DAG_ID_CONFLICT; deleting the first lets the second take over", async () => {
    const first = parsedFile("first.ts", "raced", "from_first");
    const second = parsedFile("second.ts", "raced", "from_second");
    const now = new Date("2026-03-01T00:00:00Z");

    // The first file's recording is held between looking for an owner of "raced" and storing the
    // DAG: a connection holds the first file's bundled code row, which it inserts in between.
    const held = await db.pool.getConnection();
    let recordingFirst: Promise<{ conflicts: string[] }> | undefined;
    let recordingSecond: Promise<{ conflicts: string[] }> | undefined;
    try {
      await held.query("START TRANSACTION");
      await held.query("INSERT INTO dag_code (code_hash, code, created_at) VALUES (?, ?, ?)", [first.codeHash, first.code, now]);
      recordingFirst = recordParsedFile(db, now, first, false);
      await waitFor("the first recording to wait for its code row", () => running(db, "INSERT IGNORE INTO dag_code"));

      // The second runs meanwhile: it either waits for the first's dag row or goes through.
      let secondDone = false;
      recordingSecond = recordParsedFile(db, now, second, false);
      void recordingSecond.then(
        () => (secondDone = true),
        () => (secondDone = true),
      );
      await waitFor("the second recording to finish or wait for the dag row", async () => secondDone || (await running(db, "INSERT INTO dag (")));
    } finally {
      await held.query("ROLLBACK").catch(() => undefined);
      held.release();
    }
    expect(await recordingFirst).toEqual({ conflicts: [] });
    expect(await recordingSecond).toEqual({ conflicts: [`DAG id "raced" is already defined in ${first.fileloc}`] });

    const [dags] = await db.pool.query<RowDataPacket[]>("SELECT fileloc, is_active FROM dag WHERE dag_id = 'raced'");
    expect(dags.map((r) => ({ ...r }))).toEqual([{ fileloc: first.fileloc, is_active: 1 }]);
    const [files] = await db.pool.query<RowDataPacket[]>("SELECT fileloc, dag_ids FROM dag_file ORDER BY fileloc");
    expect(files.map((r) => [r.fileloc, parseJsonText<string[]>(r.dag_ids, [])])).toEqual([
      [first.fileloc, ["raced"]],
      [second.fileloc, []],
    ]);
    const [errors] = await db.pool.query<RowDataPacket[]>("SELECT fileloc, code FROM import_error");
    expect(errors.map((r) => ({ ...r }))).toEqual([{ fileloc: second.fileloc, code: "BATON_DAG_ID_CONFLICT" }]);

    // The first file deleted: the second is parsed again (its hash forgotten) and takes over.
    await forgetFile(db, first.fileloc);
    const [known] = await db.pool.query<RowDataPacket[]>("SELECT fileloc FROM dag_file");
    expect(known).toEqual([]);
    expect(await recordParsedFile(db, now, second, false)).toEqual({ conflicts: [] });
    const [after] = await db.pool.query<RowDataPacket[]>("SELECT fileloc, is_active FROM dag WHERE dag_id = 'raced'");
    expect(after.map((r) => ({ ...r }))).toEqual([{ fileloc: second.fileloc, is_active: 1 }]);
  });

  it("leaves no dag row behind for a new DAG id whose file ends as an import error", async () => {
    const file = parsedFile("pooled.ts", "needs_pool", "a");
    file.dags[0]!.structure.tasks[0]!.pool = "no_such_pool";
    const { conflicts } = await recordParsedFile(db, new Date("2026-03-01T00:00:00Z"), file, false);
    expect(conflicts[0]).toContain("pool does not exist");
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT dag_id FROM dag WHERE dag_id = 'needs_pool'");
    expect(rows).toEqual([]);
  });

  it("keeps is_paused from the file for a new DAG, and schedules it", async () => {
    const file = parsedFile("paused.ts", "born_paused", "a");
    file.dags[0]!.structure.schedule = "@daily";
    file.dags[0]!.structure.startDate = "2026-01-01T00:00:00.000Z";
    expect(await recordParsedFile(db, new Date("2026-03-01T12:00:00Z"), file, true)).toEqual({ conflicts: [] });
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT is_paused, is_active, next_dagrun FROM dag WHERE dag_id = 'born_paused'");
    expect(rows[0]!.is_paused).toBe(1);
    expect(rows[0]!.is_active).toBe(1);
    expect(rows[0]!.next_dagrun).not.toBeNull();
  });
});
