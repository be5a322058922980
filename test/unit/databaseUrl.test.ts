// How BATON_DATABASE_URL becomes mysql2 options: ?socket=, the localhost rule, errors, printing.
// The socket lookup is injected, so nothing here depends on this machine's files.
import { firstExisting, LOCAL_SOCKETS } from "../../core/mysqlUrl.ts";
import { BatonError } from "../../core/errors.ts";
import { thrown } from "../helpers/expect.ts";
import { connectionOptions, databaseNameOf, databaseUrlOn, describeDatabaseUrl, isConnectionError, redactUrl } from "../../store/db.ts";

const SOCKET = "/run/mysqld/mysqld.sock";
const found = () => SOCKET;
const none = () => undefined;


describe("connectionOptions", () => {
  it("?socket= (URL-decoded) connects over that socket, whatever the host", () => {
    expect(connectionOptions("mysql://root@localhost:3306/baton?socket=/var/lib/mysql/mysql.sock", none)).toMatchObject({ socketPath: "/var/lib/mysql/mysql.sock" });
    expect(connectionOptions("mysql://root@127.0.0.1/baton?socket=%2Ftmp%2Fmy%20db%2Bx.sock", none).socketPath).toBe("/tmp/my db+x.sock");
    expect(connectionOptions("mysql://root@localhost/baton?socket=/tmp/x.sock", found).socketPath).toBe("/tmp/x.sock");
  });

  it.each(["mysql://u:p%40ss@localhost:3306/baton", "mysql://u:p%40ss@localhost/baton"])("%s without ?socket= takes the local socket the lookup finds", (url) => {
    const options = connectionOptions(url, found);
    expect(options).toMatchObject({ socketPath: SOCKET, host: "localhost", port: 3306, user: "u", password: "p@ss", timezone: "Z" });
  });

  it("host localhost on another port stays on TCP to localhost:port: the local socket is the server on 3306", () => {
    let lookups = 0;
    const options = connectionOptions("mysql://u@localhost:3307/appdb", () => (lookups++, SOCKET));
    expect(options).not.toHaveProperty("socketPath");
    expect(options).toMatchObject({ host: "localhost", port: 3307 });
    expect(lookups).toBe(0);
    // An explicit socket still wins, whatever the port.
    expect(connectionOptions("mysql://u@localhost:3307/appdb?socket=/run/mysqld/other.sock", found).socketPath).toBe("/run/mysqld/other.sock");
  });

  it("host localhost falls back to TCP localhost:port when no socket exists", () => {
    const options = connectionOptions("mysql://root@localhost:3306/baton", none);
    expect(options).not.toHaveProperty("socketPath");
    expect(options).toMatchObject({ host: "localhost", port: 3306 });
  });

  it.each(["mysql://root@127.0.0.1:3306/baton", "mysql://root@db.internal/baton", "mysql://root@LOCALHOST/baton", "mysql://root@localhost.localdomain/baton"])(
    "%s stays on TCP and never looks for a socket",
    (url) => {
      let lookups = 0;
      expect(connectionOptions(url, () => (lookups++, SOCKET))).not.toHaveProperty("socketPath");
      expect(lookups).toBe(0);
    },
  );

  it("keeps the old defaults: root, no password, 127.0.0.1:3306", () => {
    expect(connectionOptions("mysql:///baton", found)).toMatchObject({ host: "127.0.0.1", port: 3306, user: "root", password: "" });
  });

  it.each([
    ["mysql://root@localhost/baton?ssl=true", /unknown parameter "ssl"/],
    ["mysql://root@localhost/baton?socket=", /empty socket parameter/],
    ["mysql://root@localhost/baton?socket", /empty socket parameter/],
    ["mysql://root@localhost/baton?socket=/a.sock&socket=/b.sock", /socket twice/],
    ["mysql://root@localhost/baton?socket=%E0%A4%A", /badly encoded socket path/],
    ["postgres://root@localhost/baton", /must start with mysql:\/\//],
    ["not a url", /is not a URL/],
  ])("%s is BATON_CONFIG_INVALID (%p)", (url, message) => {
    const err = thrown(() => connectionOptions(url, found));
    expect(err).toBeInstanceOf(BatonError);
    expect(err.code).toBe("BATON_CONFIG_INVALID");
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/^BATON_DATABASE_URL /);
  });

  it("stays strict about parameters on every port and host (only the SDK's sensor URLs ignore them)", () => {
    for (const url of ["mysql://root@localhost:3307/baton?charset=utf8mb4", "mysql://root@db.internal/baton?ssl=true"]) {
      expect(thrown(() => connectionOptions(url, found)).code).toBe("BATON_CONFIG_INVALID");
    }
  });

  it("reports a bad parameter without its secrets", () => {
    const err = thrown(() => connectionOptions("mysql://u:hunter2@localhost/baton?password=hunter3", found));
    expect(err.message).toContain('unknown parameter "password"');
    expect(err.message).not.toMatch(/hunter/);
  });
});

describe("databaseNameOf", () => {
  it("reads the path with or without ?socket=", () => {
    expect(databaseNameOf("mysql://root@localhost:3306/baton?socket=/run/mysqld/mysqld.sock")).toBe("baton");
  });

  it("rejects an unknown parameter before any connection is made", () => {
    expect(thrown(() => databaseNameOf("mysql://root@localhost/baton?timeout=5")).code).toBe("BATON_CONFIG_INVALID");
  });
});

describe("the local socket lookup", () => {
  it("takes the first candidate that exists, in the documented order", () => {
    expect(LOCAL_SOCKETS).toEqual(["/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock"]);
    expect(firstExisting(LOCAL_SOCKETS, (p) => p !== "/run/mysqld/mysqld.sock")).toBe("/var/run/mysqld/mysqld.sock");
    expect(firstExisting(LOCAL_SOCKETS, (p) => p === "/tmp/mysql.sock")).toBe("/tmp/mysql.sock");
    expect(firstExisting(LOCAL_SOCKETS, () => false)).toBeUndefined();
  });
});

describe("printing the URL", () => {
  it("redactUrl hides the password and keeps ?socket=", () => {
    expect(redactUrl("mysql://u:s3cret@localhost:3306/baton?socket=/run/mysqld/mysqld.sock")).toBe("mysql://u:***@localhost:3306/baton?socket=/run/mysqld/mysqld.sock");
    expect(redactUrl("mysql://u@localhost/baton?socket=/a.sock&password=x")).toBe("mysql://u@localhost/baton?socket=/a.sock&password=***");
  });

  // A URL that does not parse (a password with an unencoded "/" or "#", a bad port) was returned
  // whole, password included, in the BATON_CONFIG_INVALID message that says the URL is wrong.
  it("redactUrl hides the password of a URL that does not parse", () => {
    expect(redactUrl("mysql://root:p/ss@db:3306/baton")).toBe("mysql://root:***@db:3306/baton");
    expect(redactUrl("mysql://root:p#s@s@db/baton")).toBe("mysql://root:***@db/baton");
    expect(redactUrl("mysql://u:s3cretpw@db:99999/baton?socket=/a.sock&password=x")).toBe("mysql://u:***@db:99999/baton?socket=/a.sock&password=***");
    expect(redactUrl("not a url?password=x")).toBe("not a url?password=***");
    for (const url of ["mysql://root:p/ss@db:3306/baton", "mysql://u:s3cretpw@db:99999/baton"]) {
      // (the first: an "@" after the host, since the "/" ends it; the second: not a URL)
      expect(() => databaseNameOf(url)).toThrow(/^BATON_DATABASE_URL .*, got "mysql:\/\/(root|u):\*\*\*@db/);
    }
  });

  // A password holding "@" and then "/", "?" or "#" unencoded, or digits and then one of those,
  // parses as a URL, but not the one meant: the text after the "/" became the database name (or a
  // parameter, or a fragment), so the password (all of "2024/secret", or "ss#w/rd" of "p@ss#w/rd")
  // was printed in the error, which blamed the database name. Now it is masked, and the error says
  // to encode it.
  it.each([
    ["mysql://baton:2024/secret@db.internal:3306/baton", "mysql://baton:***@db.internal:3306/baton", ["2024", "secret"]],
    ["mysql://root:p@ss#w/rd@127.0.0.1:3306/qa_config", "mysql://root:***@127.0.0.1:3306/qa_config", ["ss#w", "w/rd"]],
    ["mysql://root:12?ss@db/baton", "mysql://root:***@db/baton", ["12", "?ss"]],
    ["mysql://root:p@ss/wd@db/baton?socket=/tmp/my.sock", "mysql://root:***@db/baton?socket=/tmp/my.sock", ["ss/wd"]],
  ])("a password with unencoded special characters stays hidden: %s", (url, printed, secrets) => {
    expect(redactUrl(url)).toBe(printed);
    const err = thrown(() => databaseNameOf(url));
    expect(err.code).toBe("BATON_CONFIG_INVALID");
    expect(err.message).toContain("URL-encode");
    for (const secret of secrets) expect(err.message.replace(printed, "")).not.toContain(secret);
    expect(err.message).toContain(printed);
  });

  it("a socket path holding @ is no password", () => {
    const url = "mysql://root:pw@localhost/baton?socket=/run/user@1/mysqld.sock";
    expect(redactUrl(url)).toBe("mysql://root:***@localhost/baton?socket=/run/user@1/mysqld.sock");
    expect(connectionOptions(url, none)).toMatchObject({ socketPath: "/run/user@1/mysqld.sock", password: "pw" });
  });

  it("describeDatabaseUrl says which transport connections use", () => {
    expect(describeDatabaseUrl("mysql://root:pw@localhost:3306/baton", found)).toBe(`mysql://root:***@localhost:3306/baton via ${SOCKET}`);
    expect(describeDatabaseUrl("mysql://root@localhost:3306/baton?socket=/tmp/x.sock", none)).toBe("mysql://root@localhost:3306/baton?socket=/tmp/x.sock via /tmp/x.sock");
    expect(describeDatabaseUrl("mysql://root@127.0.0.1:3306/baton", found)).toBe("mysql://root@127.0.0.1:3306/baton over TCP");
    expect(describeDatabaseUrl("mysql://root@localhost:3306/baton", none)).toMatch(/^mysql:\/\/root@localhost:3306\/baton over TCP \(no MySQL socket at \/run\/mysqld\/mysqld.sock, /);
    // Another port is TCP by rule, not for want of a socket.
    expect(describeDatabaseUrl("mysql://root@localhost:3307/baton", found)).toBe("mysql://root@localhost:3307/baton over TCP");
    // An invalid URL still prints (the error that follows explains it).
    expect(describeDatabaseUrl("mysql://root:pw@localhost/baton?x=1", found)).toBe("mysql://root:***@localhost/baton?x=***");
  });

  it("databaseUrlOn names a database on a server URL, keeping ?socket=", () => {
    expect(databaseUrlOn("mysql://root@localhost:3306?socket=/run/mysqld/mysqld.sock", "baton_x")).toBe("mysql://root@localhost:3306/baton_x?socket=/run/mysqld/mysqld.sock");
    expect(databaseUrlOn("mysql://u:p@127.0.0.1:3306", "baton_y")).toBe("mysql://u:p@127.0.0.1:3306/baton_y");
    expect(databaseUrlOn("mysql://root@localhost:3306/", "baton_z")).toBe("mysql://root@localhost:3306/baton_z");
  });
});

describe("isConnectionError", () => {
  it("counts a missing or forbidden socket as unreachable, not other file errors", () => {
    expect(isConnectionError(Object.assign(new Error("connect ENOENT /nope.sock"), { code: "ENOENT", syscall: "connect" }))).toBe(true);
    expect(isConnectionError(Object.assign(new Error("connect EACCES /x.sock"), { code: "EACCES", syscall: "connect" }))).toBe(true);
    expect(isConnectionError(Object.assign(new Error("open ENOENT migrations"), { code: "ENOENT", syscall: "open" }))).toBe(false);
    expect(isConnectionError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(true);
  });
});
