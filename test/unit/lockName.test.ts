// Names of the server-wide locks Baton takes per database (GET_LOCK): MySQL 8 refuses a name over
// 64 characters (ER_USER_LOCK_WRONG_NAME), and a database name may have 64 on its own.
import { userLockName } from "../../store/db.ts";

describe("userLockName", () => {
  it("keeps today's name (purpose:database) when it fits, so older processes still wait on it", () => {
    expect(userLockName("baton_migrate", "baton")).toBe("baton_migrate:baton");
    const fits = "d".repeat(64 - "baton_migrate:".length);
    expect(userLockName("baton_migrate", fits)).toBe(`baton_migrate:${fits}`);
  });

  it("is at most 64 characters for any database name, and differs for names that differ only at the end", () => {
    const base = "baton_test_a_very_long_database_name_for_one_tenant_and_its_env";
    for (const purpose of ["baton_migrate", "baton_admin_token"]) {
      for (let length = 40; length <= 64; length++) {
        const name = ("x" + base).slice(0, length);
        expect(userLockName(purpose, name).length).toBeLessThanOrEqual(64);
        expect(userLockName(purpose, name).startsWith(`${purpose}:`)).toBe(true);
      }
      const a = userLockName(purpose, base + "1");
      const b = userLockName(purpose, base + "2");
      expect(a).not.toBe(b);
      expect(userLockName(purpose, base + "1")).toBe(a);
    }
  });
});
