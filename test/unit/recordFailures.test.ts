import { fileRecordFailure } from "../../store/recordFailures.ts";
import { isDataError, type Db } from "../../store/db.ts";

const err = (code: string, message = code) => Object.assign(new Error(message), { code });
const noDb = {} as Db;
const sizes = { codeBytes: 1, structureBytes: 1 };

describe("fileRecordFailure: the file's fault or the database's", () => {
  it.each(["ER_DATA_TOO_LONG", "ER_WARN_DATA_OUT_OF_RANGE", "ER_TRUNCATED_WRONG_VALUE_FOR_FIELD"])("%s is the file's: an import error", async (code) => {
    expect(isDataError(err(code))).toBe(true);
    expect(await fileRecordFailure(noDb, err(code, "Data too long for column 'owners' at row 1"), sizes)).toEqual({
      code: "BATON_INVALID_DAG",
      message: "the DAG cannot be stored: Data too long for column 'owners' at row 1",
    });
  });

  // ER_BAD_NULL_ERROR too: an INSERT … SELECT racing a DELETE can raise it, no value being at fault.
  it.each(["PROTOCOL_CONNECTION_LOST", "ECONNREFUSED", "ER_LOCK_WAIT_TIMEOUT", "ER_LOCK_DEADLOCK", "ER_SERVER_SHUTDOWN", "ETIMEDOUT", "ER_BAD_NULL_ERROR"])(
    "%s is the database's: no import error (the next scan retries)",
    async (code) => {
      expect(isDataError(err(code))).toBe(false);
      expect(await fileRecordFailure(noDb, err(code), sizes)).toBeNull();
    },
  );

  it("a packet over max_allowed_packet is the file's, with its size", async () => {
    const db = { pool: { query: async () => [[{ n: 16 * 1024 * 1024 }]] } } as unknown as Db;
    const failure = await fileRecordFailure(db, err("ER_NET_PACKET_TOO_LARGE"), { codeBytes: 20 * 1024 * 1024, structureBytes: 1024 });
    expect(failure?.code).toBe("BATON_DAG_TOO_LARGE");
    expect(failure!.message).toContain("20.0 MB");
    expect(failure!.message).toContain("max_allowed_packet (16.0 MB)");
  });
});
