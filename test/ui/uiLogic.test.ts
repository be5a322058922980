// The UI's pure parts: the event-stream parser, ANSI colours, conf validation, schedules,
// durations, task order, tries from the event log; what a role may do; the dead letters'
// selection and re-drive outcome, the event log's filters and its load-more walk.
import { roleAllows, ROLES, type Role } from "../../core/roles.ts";
import { RunState, TaskState } from "../../core/states.ts";
import { parseAnsi } from "../../ui/src/ansi.ts";
import {
  ACTIONS,
  continueAt,
  continueWalk,
  EVENT_STATES,
  eventFiltersFrom,
  eventLogPath,
  eventLogQuery,
  intParam,
  keepListed,
  letterLabel,
  matchesEventFilters,
  may,
  mayAct,
  rangeText,
  redriveOutcome,
  selectionOf,
  startWalk,
  toggled,
  type Action,
  type EventFilters,
  type Walk,
  runsToReload,
} from "../../ui/src/browse.ts";
import { clearedText, clearRunMessage, currentTry, describeSchedule, fitLabel, importErrorsOf, signalClosedNote, formatDuration, zoneLabel, nextRunText, parseConf, parseJsonValue, relativeTime, topoOrder, triesFromEvents } from "../../ui/src/format.ts";
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

  it("takes the id of a block without data as the last event id (the stream's position), as EventSource does", () => {
    const p = new SseParser();
    expect(p.push(": connected\nid: 41\n\n")).toEqual([]);
    expect(p.lastEventId).toBe("41");
    expect(p.push('id: 42\nevent: run\ndata: {}\n\nid: 57\n\n')).toEqual([{ id: "42", event: "run", data: "{}" }]);
    expect(p.lastEventId).toBe("57");
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

describe("clearedText", () => {
  const ti = (task_id: string, state: string) => ({ task_id, state, new_state: null });
  it("says when a clear found nothing to clear, rather than that it cleared", () => {
    expect(clearedText({ task_instances: [] }, "failed tasks")).toBe("No failed tasks to clear: nothing changed.");
    expect(clearedText({ task_instances: [] }, "tasks")).toBe("No tasks to clear: nothing changed.");
  });
  it("counts and names what was cleared", () => {
    expect(clearedText({ task_instances: [ti("load", "failed")] }, "failed tasks")).toBe("Cleared 1 task instance: load.");
    expect(clearedText({ task_instances: [ti("a", "failed"), ti("b", "upstream_failed"), ti("c", "success")] }, "tasks")).toBe("Cleared 3 task instances: a, b, c.");
    const many = Array.from({ length: 12 }, (_, i) => ti(`t${i}`, "success"));
    expect(clearedText({ task_instances: many }, "tasks")).toBe("Cleared 12 task instances: t0, t1, t2, t3, t4, t5, t6, t7, t8, t9 and 2 more.");
  });
});

describe("what a role may do", () => {
  const as = (role: Role) => ({ auth: "on" as const, token_name: "t", role });
  it("offers an action to the roles at or above the one it needs, as the API's roleAllows decides", () => {
    for (const has of ROLES) for (const needs of ROLES) expect({ has, needs, may: mayAct(as(has), needs) }).toEqual({ has, needs, may: roleAllows(has, needs) });
    // Auth off: whoami answers admin, so everything is offered.
    expect(mayAct({ auth: "off", token_name: null, role: "admin" }, "admin")).toBe(true);
  });
  it("offers nothing before the role is known, and everything to a server that cannot say (no GET /whoami)", () => {
    for (const needs of ROLES) {
      expect(mayAct(undefined, needs)).toBe(false);
      expect(mayAct(null, needs)).toBe(true);
    }
  });
  it("offers nothing to a role it does not know (a newer server's)", () => {
    expect(mayAct({ auth: "on", token_name: "t", role: "auditor" as Role }, "operator")).toBe(false);
  });
  it("gives every action of the pages the role of its routes: a viewer gets none, an operator all (none needs admin yet)", () => {
    const actions = Object.keys(ACTIONS) as Action[];
    expect(actions).toEqual(expect.arrayContaining(["pause", "trigger", "failRun", "clear", "markTask", "signal", "createBackfill", "controlBackfill", "redrive"]));
    for (const action of actions) {
      expect({ action, viewer: may(as("viewer"), action), operator: may(as("operator"), action), admin: may(as("admin"), action) }).toEqual({ action, viewer: false, operator: true, admin: true });
      expect({ action, loading: may(undefined, action), unknownServer: may(null, action) }).toEqual({ action, loading: false, unknownServer: true });
    }
  });
});

describe("paging helpers", () => {
  it("reads whole numbers from the URL within bounds, else the default", () => {
    expect(intParam("25", 50, 1, 500)).toBe(25);
    expect(intParam("0", 50, 1, 500)).toBe(1);
    expect(intParam("9999", 50, 1, 500)).toBe(500);
    for (const bad of [null, "", "abc", "-3", "2.5", "1e3"]) expect(intParam(bad, 50, 1, 500)).toBe(50);
  });
  it("says which rows a page shows", () => {
    expect(rangeText(0, 50, 120)).toBe("1–50 of 120");
    expect(rangeText(100, 20, 120)).toBe("101–120 of 120");
    expect(rangeText(0, 0, 0)).toBe("0 of 0");
  });
});

describe("selection", () => {
  it("checks and unchecks ids, and tells all, some or none of a page", () => {
    let s = toggled(new Set(), [1, 2, 3], true);
    expect(selectionOf(s, [1, 2, 3])).toBe("all");
    s = toggled(s, [2], false);
    expect([...s]).toEqual([1, 3]);
    expect(selectionOf(s, [1, 2, 3])).toBe("some");
    expect(selectionOf(s, [4, 5])).toBe("none");
    expect(selectionOf(new Set(), [])).toBe("none");
  });
  it("drops what is no longer listed (re-driven, or gone after a refresh), keeping the rest", () => {
    expect([...keepListed(new Set([1, 2, 3]), [3, 1, 9])]).toEqual([1, 3]);
  });
});

describe("redriveOutcome", () => {
  const letter = (id: number, task: string, skipped: string | null = null) => ({
    task_instance_id: id,
    dag_id: "etl",
    dag_run_id: "manual__1",
    task_id: task,
    map_index: -1,
    try_number: 1,
    max_tries: 0,
    failed_at: null,
    hostname: null,
    error_class: "Error",
    error_code: null,
    error_message: "boom",
    skipped,
  });
  it("lists what was re-driven, then each refusal with its reason in words", () => {
    const out = redriveOutcome({
      dead_letters: [letter(1, "a"), letter(2, "b", "changed")],
      redriven: 1,
      dry_run: false,
      not_dead_letters: [
        { task_instance_id: 3, dag_id: "etl", dag_run_id: "manual__1", task_id: "c", state: "up_for_retry", reason: "not_failed" },
        { task_instance_id: 4, dag_id: null, dag_run_id: null, task_id: null, state: null, reason: "not_found" },
        { task_instance_id: 5, dag_id: "etl", dag_run_id: "manual__1", task_id: "d", state: "failed", reason: "some_new_reason" },
      ],
    });
    expect(out.headline).toBe("Re-driven: 1 dead letter, cleared to run again; 4 refused.");
    expect(out.redriven).toEqual([{ id: 1, dagId: "etl", runId: "manual__1", taskId: "a", label: "etl / manual__1 / a" }]);
    expect(out.refused).toEqual([
      { id: 2, label: "etl / manual__1 / b", why: "it was no longer failed (cleared or marked meanwhile)" },
      { id: 3, label: "etl / manual__1 / c", why: "it is no longer failed (it is up for retry): re-driven or cleared meanwhile" },
      { id: 4, label: "task instance 4", why: expect.stringContaining("no task instance has this id") },
      { id: 5, label: "etl / manual__1 / d", why: "some_new_reason" },
    ]);
  });
  it("says when nothing was re-driven", () => {
    const none = { dead_letters: [], redriven: 0, dry_run: false };
    expect(redriveOutcome({ ...none, not_dead_letters: [{ task_instance_id: 7, dag_id: "x", dag_run_id: "r", task_id: "t", state: "failed", reason: "failed_by_operator" }] }).headline).toBe(
      "Nothing re-driven: 1 task instance refused.",
    );
    expect(redriveOutcome({ ...none, not_dead_letters: [] }).headline).toBe("Nothing re-driven.");
  });
  it("names a mapped task instance with its index", () => {
    expect(letterLabel({ task_instance_id: 1, dag_id: "d", dag_run_id: "r", task_id: "t", map_index: 2 })).toBe("d / r / t[2]");
  });
});

describe("event log filters", () => {
  const none: EventFilters = { dagId: "", runId: "", taskId: "", kind: "", state: "", newestFirst: true };
  it("covers every run and task state core knows: 'every task event' is sent as each state's event", () => {
    expect([...EVENT_STATES.run].sort()).toEqual(Object.values(RunState).sort());
    expect([...EVENT_STATES.task].sort()).toEqual(Object.values(TaskState).sort());
  });
  it("round-trips through the page's URL, ignoring an unknown kind", () => {
    const f: EventFilters = { dagId: "etl", runId: "manual__2026-01-01T00:00:00+00:00", taskId: "load", kind: "task", state: "failed", newestFirst: false };
    const path = eventLogPath(f);
    expect(path.startsWith("/event-log?")).toBe(true);
    expect(eventFiltersFrom(new URLSearchParams(path.slice("/event-log".length)))).toEqual(f);
    expect(eventLogPath(none)).toBe("/event-log");
    expect(eventFiltersFrom(new URLSearchParams("kind=bogus"))).toEqual(none);
  });
  it("asks the API for one event, every event of a kind, or a state of any kind, newest or oldest first", () => {
    expect(eventLogQuery(none)).toEqual({ order_by: "-event_log_id" });
    expect(eventLogQuery({ ...none, dagId: "etl", runId: "r1", taskId: "t", newestFirst: false })).toEqual({ dag_id: "etl", run_id: "r1", task_id: "t", order_by: "event_log_id" });
    expect(eventLogQuery({ ...none, kind: "task", state: "failed" }).event).toBe("task:failed");
    expect(eventLogQuery({ ...none, kind: "run" }).included_events).toBe("run:queued,run:running,run:success,run:failed");
    expect(eventLogQuery({ ...none, kind: "auth" }).included_events).toBe("auth:unauthenticated,auth:forbidden");
    expect(eventLogQuery({ ...none, state: "queued" }).included_events).toBe("run:queued,task:queued");
    expect(eventLogQuery({ ...none, state: "up_for_retry" }).included_events).toBe("task:up_for_retry");
  });
  it("tells which live events the filters list", () => {
    const e = { dag_id: "etl", dag_run_id: "r1", task_id: "load", kind: "task", to_state: "failed" };
    expect(matchesEventFilters(e, none)).toBe(true);
    expect(matchesEventFilters(e, { ...none, dagId: "etl", runId: "r1", taskId: "load", kind: "task", state: "failed" })).toBe(true);
    expect(matchesEventFilters(e, { ...none, dagId: "other" })).toBe(false);
    expect(matchesEventFilters(e, { ...none, kind: "run" })).toBe(false);
    expect(matchesEventFilters(e, { ...none, state: "success" })).toBe(false);
  });
});

describe("load-more walk", () => {
  /**
   * The API's event log as a cursor walk sees it: ids in `list` (any order), the page of `limit`
   * after the cursor's id in the order asked, and the next page's cursor (null on the last page).
   */
  const serve = (list: readonly number[], newestFirst: boolean, cursor: string | null, limit: number) => {
    const ordered = [...list].sort((a, b) => (newestFirst ? b - a : a - b)).filter((id) => cursor === null || (newestFirst ? id < Number(cursor) : id > Number(cursor)));
    const rows = ordered.slice(0, limit);
    return { rows, total: cursor === null ? list.length : -1, next: ordered.length > limit ? String(rows.at(-1)) : null };
  };
  /** One "load more": the page continueAt says, continued with continueWalk. */
  const more = (walk: Walk<number>, list: readonly number[], newestFirst: boolean, limit: number) => {
    const from = continueAt(walk);
    const p = serve(list, newestFirst, from.cursor, limit);
    // A cursor page's total_entries is the first page's, which the walk holds.
    return continueWalk(walk, from, p.rows, p.total === -1 ? walk.total : p.total, p.next);
  };
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it("newest first: every row of the log as the walk began, once each, while rows are recorded above it", () => {
    let list = range(1, 25);
    const first = serve(list, true, null, 10);
    let walk = startWalk(first.rows, first.total, first.next);
    // 3 rows arrive before the first "load more", then more than a page, then none.
    const arriving = [3, 12];
    while (!walk.done) {
      const n = arriving.shift() ?? 0;
      list = [...list, ...range(list.length + 1, list.length + n)];
      walk = more(walk, list, true, 10).walk;
    }
    expect(walk.rows).toEqual(range(1, 25).reverse());
    expect(walk.total).toBe(25);
  });

  it("oldest first: rows recorded during the walk come at its end, and after it by reading its last page again", () => {
    let list = range(1, 12);
    const first = serve(list, false, null, 5);
    let walk = startWalk(first.rows, first.total, first.next);
    list = [...list, 13, 14];
    walk = more(walk, list, false, 5).walk;
    walk = more(walk, list, false, 5).walk;
    expect(walk).toMatchObject({ rows: range(1, 14), next: null, done: true });
    // The end was read; two rows are recorded (the view counts them live and offers "load more").
    list = [...list, 15, 16];
    const from = continueAt({ ...walk, done: false });
    expect(from).toEqual({ cursor: "10", keep: 10 });
    // Read again, the last page (11-14) is a full one (11-15) with a next_cursor.
    const again = more({ ...walk, done: false }, list, false, 5);
    expect(again.added).toBe(1);
    expect(again.walk).toMatchObject({ rows: range(1, 15), next: "15", done: false });
    // The rest follows that next_cursor, nothing twice.
    walk = more(again.walk, [...list, 17], false, 5).walk;
    expect(walk).toMatchObject({ rows: range(1, 17), done: true });
  });

  it("a walk of one page reads the first page again, and ends at the last page", () => {
    const first = serve([1, 2, 3], false, null, 5);
    const walk = startWalk(first.rows, first.total, first.next);
    expect(walk).toEqual({ rows: [1, 2, 3], total: 3, next: null, last: { cursor: null, kept: 0 }, done: true });
    expect(continueAt(walk)).toEqual({ cursor: null, keep: 0 });
    const again = more(walk, [1, 2, 3, 4], false, 5);
    expect(again).toEqual({ walk: { rows: [1, 2, 3, 4], total: 4, next: null, last: { cursor: null, kept: 0 }, done: true }, added: 1 });
    expect(startWalk([], 0, null).done).toBe(true);
  });
});

describe("runsToReload (the graph's ?run= run)", () => {
  const listed = { runs: [{ dag_run_id: "new" }], extra: null, missing: null };
  it("reloads for a run not listed, or to drop an extra run once none is named, and not otherwise", () => {
    expect(runsToReload(listed, "new", null, undefined)).toBe(false);
    expect(runsToReload(listed, null, null, undefined)).toBe(false);
    expect(runsToReload(listed, "old", null, undefined)).toBe(true);
    expect(runsToReload({ ...listed, missing: { runId: "gone" } }, "gone", null, undefined)).toBe(false);
    expect(runsToReload({ runs: [{ dag_run_id: "old" }, { dag_run_id: "new" }], extra: "old", missing: null }, null, null, "old")).toBe(true);
  });
  it("does not ask again for the run whose reload just failed (a 5xx, the API down): it looped as fast as each fetch failed", () => {
    const down = new Error("503");
    expect(runsToReload(listed, "old", down, "old")).toBe(false);
    expect(runsToReload({ runs: [{ dag_run_id: "old" }, { dag_run_id: "new" }], extra: "old", missing: null }, null, down, null)).toBe(false);
    // Another run named since: asked once more.
    expect(runsToReload(listed, "older", down, "old")).toBe(true);
  });
});
