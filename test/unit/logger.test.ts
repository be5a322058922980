import { createLogger, defaultLogFormat, silentLogger, type LogFormat, type LogLevel } from "../../core/logger.ts";
import { loadConfig } from "../../core/config.ts";
import { BatonError } from "../../core/errors.ts";

/** A logger writing into an array, and the array. */
function capture(format: LogFormat, level: LogLevel = "debug", scope = {}) {
  const lines: string[] = [];
  const logger = createLogger(level, scope, (line) => lines.push(line), { format });
  return { logger, lines };
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("json format", () => {
  it("writes one JSON object per line with timestamp, level, message, component, scope and meta", () => {
    const { logger, lines } = capture("json");
    const log = logger.scope({ component: "worker", workerId: "w1" }).scope({ dagId: "etl", tryNumber: 2 });
    log.info("task started", { pid: 42, queue: "default" });
    log.warn("slow");
    expect(lines).toHaveLength(2);
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toEqual({
      timestamp: expect.stringMatching(ISO),
      level: "info",
      message: "task started",
      component: "worker",
      workerId: "w1",
      dagId: "etl",
      tryNumber: 2,
      pid: 42,
      queue: "default",
    });
    expect(Object.keys(first!).slice(0, 4)).toEqual(["timestamp", "level", "message", "component"]);
    expect(second).toMatchObject({ level: "warn", message: "slow", component: "worker" });
    for (const line of lines) expect(line).not.toContain("\n");
  });

  it("never lets meta overwrite timestamp, level or message", () => {
    const { logger, lines } = capture("json");
    logger.scope({ component: "api" }).error("real message", { message: "fake", level: "debug", timestamp: "then" });
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: "error", message: "real message", meta_message: "fake", meta_level: "debug", meta_timestamp: "then" });
    expect(line.timestamp).toMatch(ISO);
  });

  it("serializes errors, bigints and cycles without losing the line", () => {
    const { logger, lines } = capture("json");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    logger.error("with error", { err: new TypeError("boom"), big: 10n });
    logger.error("with cycle", { cyclic });
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!);
    expect(first.err).toMatchObject({ name: "TypeError", message: "boom" });
    expect(first.big).toBe("10");
    expect(typeof JSON.parse(lines[1]!)).toBe("string");
  });
});

describe("text format", () => {
  it("keeps the human line: time, padded level, [component] key=value, message, meta as JSON", () => {
    const { logger, lines } = capture("text");
    logger.scope({ component: "scheduler", dagId: "etl" }).info("tick", { runs: 3 });
    logger.warn("bare");
    expect(lines[0]).toMatch(/^\d{4}-\d{2}-\d{2}T\S+Z INFO  \[scheduler\] dagId=etl tick \{"runs":3\}$/);
    expect(lines[1]).toMatch(/^\S+Z WARN {3}bare$/);
    expect(() => JSON.parse(lines[0]!)).toThrow();
  });
});

describe("levels", () => {
  it("drops lines below the threshold and writes at or above it", () => {
    const { logger, lines } = capture("json", "warn");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(["w", "e"]);
  });

  it("silent writes nothing, at any scope", () => {
    const { logger, lines } = capture("json", "silent");
    logger.error("nothing");
    logger.scope({ component: "x" }).error("nothing either");
    expect(lines).toEqual([]);
    expect(() => silentLogger.scope({ component: "y" }).error("ignored")).not.toThrow();
  });

  it("a sink that throws does not throw into the caller", () => {
    const logger = createLogger("info", {}, () => {
      throw new Error("stderr closed");
    }, { format: "json" });
    expect(() => logger.info("still fine")).not.toThrow();
  });
});

describe("BATON_LOG_FORMAT", () => {
  it("defaults to text on a terminal and json otherwise; an explicit value wins", () => {
    expect(defaultLogFormat(undefined, true)).toBe("text");
    expect(defaultLogFormat(undefined, false)).toBe("json");
    expect(defaultLogFormat("json", true)).toBe("json");
    expect(defaultLogFormat("text", false)).toBe("text");
  });

  it("is read by loadConfig and rejects anything but text or json", () => {
    expect(loadConfig({ BATON_LOG_FORMAT: "json" }).logFormat).toBe("json");
    expect(loadConfig({ BATON_LOG_FORMAT: "text" }).logFormat).toBe("text");
    expect(["text", "json"]).toContain(loadConfig({ BATON_LOG_FORMAT: "" }).logFormat);
    let err: unknown;
    try {
      loadConfig({ BATON_LOG_FORMAT: "yaml" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BatonError);
    expect((err as BatonError).code).toBe("BATON_CONFIG_INVALID");
    expect((err as BatonError).message).toContain("BATON_LOG_FORMAT");
  });
});
