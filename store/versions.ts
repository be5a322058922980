import { shapeOf, type DagShape, type SerializedDag } from "../core/dagStructure.ts";
import { BatonError, isBatonError } from "../core/errors.ts";
import type { Queryable, RowDataPacket } from "./db.ts";

/**
 * Whether `err` says a stored DAG version cannot be read (BATON_DAG_VERSION_UNUSABLE: missing, or
 * its structure not a DAG's): reading it again fails the same way, unlike a database error, so
 * callers that batch work of several versions set aside only the work of that one.
 */
export function isUnusableVersion(err: unknown): boolean {
  return isBatonError(err) && err.code === "BATON_DAG_VERSION_UNUSABLE";
}

/**
 * What a run pinned to an unusable version is told (its note) when a scheduler step fails it:
 * the code, the error's message and what to do.
 */
export function unusableVersionNote(err: unknown): string {
  return (
    `its DAG version cannot be read (BATON_DAG_VERSION_UNUSABLE: ${(err as Error).message}); ` +
    "runs stay pinned to their version: trigger a new run (parsing the DAG file stores a new version)"
  );
}

function unusable(versionHash: string, why: string): BatonError {
  return new BatonError("BATON_DAG_VERSION_UNUSABLE", `DAG version ${versionHash} cannot be read: ${why}`);
}

/**
 * Versions are immutable, so their structure and code are cached forever by hash; the
 * scheduler and workers read each one from MySQL once.
 */
export class VersionCache {
  private readonly shapes = new Map<string, Promise<DagShape>>();
  private readonly codes = new Map<string, Promise<string>>();

  constructor(private readonly db: Queryable) {}

  shape(versionHash: string): Promise<DagShape> {
    let cached = this.shapes.get(versionHash);
    if (!cached) {
      cached = loadStructure(this.db, versionHash).then((structure) => {
        try {
          return shapeOf(structure);
        } catch (err) {
          throw unusable(versionHash, `its stored structure is not a DAG's (${(err as Error).message})`);
        }
      });
      cached.catch(() => this.shapes.delete(versionHash));
      this.shapes.set(versionHash, cached);
    }
    return cached;
  }

  /** Code by its own hash (the SDK module a bundle imports), not cached: callers keep it on disk. */
  codeByHash(codeHash: string): Promise<string | null> {
    return loadCodeByHash(this.db, codeHash);
  }

  code(versionHash: string): Promise<string> {
    let cached = this.codes.get(versionHash);
    if (!cached) {
      cached = loadCode(this.db, versionHash);
      cached.catch(() => this.codes.delete(versionHash));
      this.codes.set(versionHash, cached);
    }
    return cached;
  }
}

export async function loadStructure(db: Queryable, versionHash: string): Promise<SerializedDag> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT structure FROM dag_version WHERE version_hash = ? LIMIT 1", [versionHash]);
  if (!rows[0]) throw unusable(versionHash, "it is not in dag_version");
  try {
    return JSON.parse(rows[0].structure) as SerializedDag;
  } catch (err) {
    throw unusable(versionHash, `its stored structure is not JSON (${(err as Error).message})`);
  }
}

export async function loadCode(db: Queryable, versionHash: string): Promise<string> {
  const [rows] = await db.query<RowDataPacket[]>(
    "SELECT c.code FROM dag_version v JOIN dag_code c ON c.code_hash = v.code_hash WHERE v.version_hash = ? LIMIT 1",
    [versionHash],
  );
  if (!rows[0]) throw new Error(`code of dag_version ${versionHash} not found`);
  return rows[0].code as string;
}

/** Code stored in dag_code under this hash (a bundle, or the SDK module bundles import); null if none. */
export async function loadCodeByHash(db: Queryable, codeHash: string): Promise<string | null> {
  const [rows] = await db.query<RowDataPacket[]>("SELECT code FROM dag_code WHERE code_hash = ?", [codeHash]);
  return rows[0] ? (rows[0].code as string) : null;
}
