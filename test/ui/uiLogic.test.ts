// The UI's pure parts: the event-stream parser, ANSI colours, conf validation, schedules,
// durations, task order, tries from the event log.
import { parseAnsi } from "../../ui/src/ansi.ts";
import { clearRunMessage, currentTry, describeSchedule, fitLabel, importErrorsOf, signalClosedNote, formatDuration, zoneLabel, nextRunText, parseConf, parseJsonValue, relativeTime, topoOrder, triesFromEvents } from "../../ui/src/format.ts";
import { SseParser } from "../../ui/src/sse.ts";

describe("SseParser", () => {
  it("parses messages split anywhere across chunks, with ids, event names, comments and multi-line data", () => {
    const text = ': connected\n\nid: 7\nevent: task\ndata: {"a":1}\n\nid: 8\ndata: line one\ndata: line two\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const got = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      expect(got).toEqual([
        { id: "7", event: "task", data: '{"a":1}' },
        { id: "8", event: "message", data: "line one\nline two" },
      ]);
      expect(p.lastEventId).toBe("8");
    }
  });

  it("accepts CRLF and CR line endings, and keeps an unfinished message for the next chunk", () => {
    const p = new SseParser();
    expect(p.push("data: a\r\n\r\ndata: b\r\rdata: c")).toEqual([
      { id: null, event: "message", data: "a" },
      { id: null, event: "message", data: "b" },
    ]);
    expect(p.push("\n\n")).toEqual([{ id: null, event: "message", data: "c" }]);
  });

  it("ignores unknown fields and messages without data", () => {
    const p = new SseParser();
    expect(p.push("retry: 1000\nevent: ping\n\nfoo: bar\ndata\n\n")).toEqual([{ id: null, event: "message", data: "" }]);
  });
});

describe("parseAnsi", () => {
  it("turns SGR colours into styled segments and drops other escapes", () => {
    expect(parseAnsi("plain \u001b[31mred\u001b[0m and \u001b[1;32mbold green\u001b[22m green\u001b[39m \u001b[2Kdone")).toEqual([
      { text: "plain " },
      { fg: "ansi-red", text: "red" },
      { text: " and " },
      { fg: "ansi-green", bold: true, text: "bold green" },
      { fg: "ansi-green", text: " green" },
      { text: " done" },
    ]);
  });

  it("reads 256-colour and true-colour codes, bright colours and backgrounds", () => {
    expect(parseAnsi("\u001b[38;5;196ma\u001b[48;2;1;2;300mb\u001b[0m\u001b[93;104mc")).toEqual([
      { fg: "rgb(255,0,0)", text: "a" },
      { fg: "rgb(255,0,0)", bg: "rgb(1,2,255)", text: "b" },
      { fg: "ansi-bright-yellow", bg: "ansi-bright-blue", text: "c" },
    ]);
  });

  it("leaves text without escapes as one segment, and an empty text as none", () => {
    expect(parseAnsi("a\nb")).toEqual([{ text: "a\nb" }]);
    expect(parseAnsi("")).toEqual([]);
    expect(parseAnsi("\u001b[m")).toEqual([]);
  });
});

describe("parseConf", () => {
  it("accepts a JSON object, and empty text as {}", () => {
    expect(parseConf('{"rows": 3}')).toEqual({ ok: true, value: { rows: 3 } });
    expect(parseConf("  ")).toEqual({ ok: true, value: {} });
  });

  it.each([
    ['{"rows": 3,', /not valid JSON/],
    ["{rows: 3}", /not valid JSON/],
    ["[1, 2]", /must be a JSON object.*an array/],
    ["null", /must be a JSON object.*null/],
    ['"text"', /must be a JSON object.*string/],
    ["42", /must be a JSON object.*number/],
  ])("refuses %s", (text, message) => {
    const r = parseConf(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(message);
  });

  it("parses any JSON value for a signal payload, empty meaning none", () => {
    expect(parseJsonValue("[1]")).toEqual({ ok: true, value: [1] });
    expect(parseJsonValue("")).toEqual({ ok: true, value: undefined });
    expect(parseJsonValue("{oops").ok).toBe(false);
  });
});

describe("describeSchedule", () => {
  it.each([
    [null, "manual only"],
    ["@daily", "every day at 00:00"],
    ["@hourly", "every hour"],
    ["0 2 * * *", "every day at 02:00"],
    ["30 6 * * 1-5", "weekdays at 06:30"],
    ["0 9 * * 1", "every Monday at 09:00"],
    ["15 * * * *", "every hour at :15"],
    ["*/5 * * * *", "every 5 minutes"],
    ["0 3 1 * *", "on day 1 of every month at 03:00"],
    ["30m", "every 30 minutes"],
    ["1h", "every hour"],
    ["0 2 * 1 *", "0 2 * 1 *"],
    ["not a cron", "not a cron"],
  ])("%s → %s", (expr, text) => {
    expect(describeSchedule(expr)).toBe(text);
  });
});

describe("formatDuration and relativeTime", () => {
  it.each([
    [0.25, "250 ms"],
    [1.234, "1.2 s"],
    [42, "42 s"],
    [125, "2 m 05 s"],
    [7260, "2 h 01 m"],
    [90_000, "1 d 1 h"],
    [null, "—"],
    [-1, "—"],
  ])("formatDuration(%s) = %s", (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });

  it("says how far a date is from now", () => {
    const now = new Date("2026-03-01T12:00:00Z");
    expect(relativeTime("2026-03-01T15:00:00Z", now)).toBe("in 3 h");
    expect(relativeTime("2026-03-01T11:50:00Z", now)).toBe("10 m ago");
    expect(relativeTime("2026-03-04T12:00:00Z", now)).toBe("in 3 d");
    expect(relativeTime(null, now)).toBe("");
  });
});

describe("nextRunText", () => {
  const now = new Date("2026-03-01T12:00:00Z");
  it("shows the next run in the DAG's time zone, and how far it is", () => {
    expect(nextRunText({ next_dagrun_create_after: "2026-03-02T01:00:00Z", timezone: "Europe/Paris", is_paused: false }, now)).toBe("2026-03-02 02:00 Europe/Paris · in 13 h");
    expect(nextRunText({ next_dagrun_create_after: "2026-03-02T01:00:00Z", timezone: "America/New_York", is_paused: false }, now)).toBe("2026-03-01 20:00 America/New_York · in 13 h");
  });
  it("says due for a time already passed, and nothing without a next run", () => {
    expect(nextRunText({ next_dagrun_create_after: "2026-03-01T01:00:00Z", timezone: "UTC", is_paused: true }, now)).toBe("2026-03-01 01:00 UTC · due once unpaused");
    expect(nextRunText({ next_dagrun_create_after: "2026-03-01T01:00:00Z", timezone: "UTC", is_paused: false }, now)).toBe("2026-03-01 01:00 UTC · due now");
    expect(nextRunText({ next_dagrun_create_after: null, timezone: "UTC", is_paused: false }, now)).toBeNull();
  });
});

describe("topoOrder", () => {
  const t = (task_id: string, ...downstream_task_ids: string[]) => ({ task_id, downstream_task_ids });

  it("puts upstream tasks first and keeps the given order between independent ones", () => {
    expect(topoOrder([t("load"), t("b_extract", "transform"), t("transform", "load"), t("a_extract", "transform")])).toEqual([
      "b_extract",
      "a_extract",
      "transform",
      "load",
    ]);
  });

  it("keeps every task when there is a cycle or an edge to an unknown task", () => {
    const order = topoOrder([t("x", "y"), t("y", "x"), t("z", "ghost")]);
    expect(order.sort()).toEqual(["x", "y", "z"]);
  });

  it("orders 10,000 tasks in a chain quickly", () => {
    const tasks = Array.from({ length: 10_000 }, (_, i) => t(`t${i}`, ...(i + 1 < 10_000 ? [`t${i + 1}`] : [])));
    const start = Date.now();
    const order = topoOrder([...tasks].reverse());
    expect(Date.now() - start).toBeLessThan(1000);
    expect(order[0]).toBe("t0");
    expect(order[9_999]).toBe("t9999");
  });
});

describe("triesFromEvents", () => {
  const ev = (when: string, try_number: number | null, to_state: string) => ({ when, try_number, to_state, hostname: "h1" });

  it("builds one row per try from the transitions, the current try from the task instance", () => {
    const rows = triesFromEvents(
      [
        ev("2026-03-01T00:00:00Z", 0, "scheduled"),
        ev("2026-03-01T00:00:01Z", 1, "queued"),
        ev("2026-03-01T00:00:02Z", 1, "running"),
        ev("2026-03-01T00:00:05Z", 1, "up_for_retry"),
        ev("2026-03-01T00:00:06Z", 2, "queued"),
        ev("2026-03-01T00:00:07Z", 2, "running"),
      ],
      { try_number: 2, state: "success", start_date: "2026-03-01T00:00:07Z", end_date: "2026-03-01T00:00:09Z", hostname: "h2" },
    );
    expect(rows).toEqual([
      { try_number: 1, state: "up_for_retry", start: "2026-03-01T00:00:02Z", end: "2026-03-01T00:00:05Z", hostname: "h1" },
      { try_number: 2, state: "success", start: "2026-03-01T00:00:07Z", end: "2026-03-01T00:00:09Z", hostname: "h2" },
    ]);
  });

  it("puts a reschedule-mode sensor between pokes (its try number given back) on the try its pokes ran as", () => {
    const events = [
      ev("2026-03-01T00:00:00Z", 0, "queued"),
      ev("2026-03-01T00:00:01Z", 1, "running"),
      ev("2026-03-01T00:00:02Z", 0, "up_for_reschedule"),
      ev("2026-03-01T00:01:02Z", 0, "queued"),
      ev("2026-03-01T00:01:03Z", 1, "running"),
      ev("2026-03-01T00:01:04Z", 0, "up_for_reschedule"),
    ];
    const ti = { try_number: 0, state: "up_for_reschedule", start_date: "2026-03-01T00:01:03Z", end_date: "2026-03-01T00:01:04Z", hostname: "h1" };
    expect(currentTry(ti.try_number, events)).toBe(1);
    expect(triesFromEvents(events, ti)).toEqual([{ try_number: 1, state: "up_for_reschedule", start: "2026-03-01T00:01:03Z", end: "2026-03-01T00:01:04Z", hostname: "h1" }]);
    // Marked success while it waited: still that try.
    expect(triesFromEvents([...events, ev("2026-03-01T00:01:30Z", 0, "success")], { ...ti, state: "success", end_date: "2026-03-01T00:01:30Z" })[0]).toMatchObject({ try_number: 1, state: "success" });
    // Any other task: its own try number.
    expect(currentTry(2, [ev("2026-03-01T00:00:01Z", 1, "running"), ev("2026-03-01T00:00:07Z", 2, "running")])).toBe(2);
    expect(currentTry(0, [])).toBe(0);
  });

  it("has no rows for a task never tried", () => {
    expect(triesFromEvents([ev("2026-03-01T00:00:00Z", 0, "scheduled")], { try_number: 0, state: null, start_date: null, end_date: null, hostname: "" })).toEqual([]);
  });
});

describe("fitLabel", () => {
  const measure = (s: string) => s.length * 10;

  it("keeps a label that fits, with its measured width", () => {
    expect(fitLabel("extract", 100, measure)).toEqual({ text: "extract", width: 70 });
  });

  it("cuts a label that does not fit to the longest prefix that fits with an ellipsis", () => {
    expect(fitLabel("process_partition_number_1", 100, measure)).toEqual({ text: "process_p…", width: 100 });
    expect(fitLabel("abc", 5, measure)).toEqual({ text: "…", width: 10 });
  });
});

describe("zoneLabel", () => {
  it("names the time zone the dates are shown in, with its offset at that date", () => {
    expect(zoneLabel(new Date("2026-11-27T12:00:00Z"), "Asia/Tokyo")).toBe("Asia/Tokyo (UTC+09:00)");
    expect(zoneLabel(new Date("2026-07-01T12:00:00Z"), "Europe/Paris")).toBe("Europe/Paris (UTC+02:00)");
    expect(zoneLabel(new Date("2026-01-01T12:00:00Z"), "America/St_Johns")).toBe("America/St_Johns (UTC-03:30)");
    expect(zoneLabel(new Date("2026-01-01T12:00:00Z"), "UTC")).toBe("UTC");
  });
});

describe("importErrorsOf", () => {
  const errors = [
    { import_error_id: 1, filename: "/dags/a.ts", message: "boom" },
    { import_error_id: 2, filename: "/dags/sub/a.ts", message: "other" },
    { import_error_id: 3, filename: "/dags/a.ts.bak", message: "not it" },
  ];
  it("picks the errors of the DAG's own file, matched by its whole fileloc", () => {
    expect(importErrorsOf("/dags/a.ts", errors).map((e) => e.import_error_id)).toEqual([1]);
    expect(importErrorsOf("/dags/b.ts", errors)).toEqual([]);
  });
  it("is empty while the DAG or the errors are not loaded", () => {
    expect(importErrorsOf(undefined, errors)).toEqual([]);
    expect(importErrorsOf("/dags/a.ts", undefined)).toEqual([]);
  });
});

describe("signalClosedNote", () => {
  it("leaves the signal form open while the run is queued or running, or not loaded yet", () => {
    expect(signalClosedNote("queued")).toBeNull();
    expect(signalClosedNote("running")).toBeNull();
    expect(signalClosedNote(undefined)).toBeNull();
  });
  it("closes it with a note once the run has finished (the API would answer 409 BATON_DAG_RUN_FINISHED)", () => {
    for (const state of ["success", "failed"]) expect(signalClosedNote(state)).toMatch(/the run has finished/i);
  });
});

describe("clearRunMessage", () => {
  it("warns that clearing a saga whose compensation ran starts a new attempt", () => {
    for (const compensation of ["compensated", "compensation_failed"]) {
      for (const onlyFailed of [true, false]) {
        const m = clearRunMessage({ state: "failed", compensation }, onlyFailed);
        expect(m.saga).toMatch(/starts a new attempt/);
        expect(m.saga).toMatch(/what was undone is done again/);
      }
    }
  });
  it("says nothing of sagas for a run without compensation", () => {
    expect(clearRunMessage({ state: "failed", compensation: null }, true)).toEqual({ text: expect.stringMatching(/failed/), saga: null });
    expect(clearRunMessage({ state: "success" }, false).saga).toBeNull();
  });
});
