// The grid: runs as columns × tasks as rows, coloured by state. Only the rows in view are
// rendered (1,000 tasks × 100 runs stays cheap); the grid is one tab stop whose active cell
// moves with the arrow keys (aria-activedescendant) and opens with Enter.
import { Fragment } from "preact";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { formatDateTime, formatDuration, secondsBetween, topoOrder } from "../format.ts";
import { navigate, runPath, taskPath } from "../router.ts";
import { stateLabel, stateOf } from "../states.ts";
import type { DagRun, TaskInstance, TaskNode } from "../types.ts";

const ROW_H = 24;
const COL_W = 20;
const HEAD_H = 72;
const OVERSCAN = 8;

export const tiKey = (runId: string, taskId: string) => `${runId}\u0000${taskId}`;

interface Props {
  dagId: string;
  tasks: TaskNode[];
  runs: DagRun[];
  tis: Map<string, TaskInstance>;
  /** Bumped when tis changes in place (live updates). */
  version: number;
}

interface Tip {
  x: number;
  y: number;
  lines: [string, string][];
  title: string;
}

export function Grid({ dagId, tasks, runs, tis, version }: Props) {
  const rows = useMemo(() => {
    const order = topoOrder(tasks);
    const known = new Set(order);
    // Tasks that ran but are not in the latest version (removed, compensations) go last.
    const extra = new Set<string>();
    for (const ti of tis.values()) if (!known.has(ti.task_id)) extra.add(ti.task_id);
    return [...order, ...[...extra].sort()];
  }, [tasks, tis]);
  const scroller = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  const [active, setActive] = useState<{ r: number; c: number }>({ r: 0, c: Math.max(0, runs.length - 1) });
  const [tip, setTip] = useState<Tip | null>(null);
  const [focused, setFocused] = useState(false);
  const frame = useRef(0);

  useLayoutEffect(() => {
    const el = scroller.current!;
    const measure = () => setView({ top: el.scrollTop, height: el.clientHeight });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // New runs arrive on the right: keep the active cell on the newest run when it was there.
  const prevRuns = useRef(runs.length);
  useEffect(() => {
    if (active.c >= prevRuns.current - 1) setActive((a) => ({ ...a, c: Math.max(0, runs.length - 1) }));
    prevRuns.current = runs.length;
  }, [runs.length]);

  // Start scrolled to the right, where the newest runs are.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el) el.scrollLeft = el.scrollWidth;
  }, [runs.length > 0]);

  const onScroll = () => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      const el = scroller.current;
      if (el) setView({ top: el.scrollTop, height: el.clientHeight });
      setTip(null);
    });
  };
  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  const bodyTop = Math.max(0, view.top - HEAD_H);
  const first = Math.max(0, Math.floor(bodyTop / ROW_H) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((bodyTop + view.height) / ROW_H) + OVERSCAN);

  const maxRunSeconds = useMemo(() => Math.max(0.001, ...runs.map((r) => secondsBetween(r.start_date, r.end_date) ?? 0)), [runs, version]);

  const tiAt = (r: number, c: number) => {
    const run = runs[c];
    const task = rows[r];
    return run && task !== undefined ? tis.get(tiKey(run.dag_run_id, task)) : undefined;
  };

  const tipFor = (r: number, c: number, rect: DOMRect): Tip | null => {
    const run = runs[c];
    const task = rows[r];
    if (!run || task === undefined) return null;
    const ti = tis.get(tiKey(run.dag_run_id, task));
    const lines: [string, string][] = [
      ["Run", run.dag_run_id],
      ["State", stateLabel(ti?.state ?? null)],
    ];
    if (ti) {
      lines.push(["Try", `${ti.try_number} of ${ti.max_tries + 1}`]);
      lines.push(["Started", formatDateTime(ti.start_date)]);
      lines.push(["Ended", formatDateTime(ti.end_date)]);
      lines.push(["Duration", formatDuration(ti.duration ?? secondsBetween(ti.start_date, ti.end_date))]);
    }
    return { x: rect.left + rect.width / 2, y: rect.bottom + 6, title: task, lines };
  };

  const runTip = (c: number, rect: DOMRect): Tip | null => {
    const run = runs[c];
    if (!run) return null;
    return {
      x: rect.left + rect.width / 2,
      y: rect.bottom + 6,
      title: run.dag_run_id,
      lines: [
        ["State", stateLabel(run.state)],
        ["Type", run.run_type],
        ["Logical date", formatDateTime(run.logical_date)],
        ["Started", formatDateTime(run.start_date)],
        ["Ended", formatDateTime(run.end_date)],
        ["Duration", formatDuration(secondsBetween(run.start_date, run.end_date))],
      ],
    };
  };

  const onMouseOver = (e: MouseEvent) => {
    const el = (e.target as Element).closest<HTMLElement>("[data-c]");
    if (!el) return setTip(null);
    const c = Number(el.dataset.c);
    const rect = el.getBoundingClientRect();
    setTip(el.dataset.r === undefined ? runTip(c, rect) : tipFor(Number(el.dataset.r), c, rect));
  };

  // Cells and run bars are not links (one tab stop for the whole grid): clicks open them here.
  const onClick = (e: MouseEvent) => {
    const el = (e.target as Element).closest<HTMLElement>("[data-c]");
    if (!el) return;
    const c = Number(el.dataset.c);
    const run = runs[c];
    if (!run) return;
    if (el.dataset.r === undefined) return navigate(runPath(dagId, run.dag_run_id));
    const r = Number(el.dataset.r);
    setActive({ r, c });
    navigate(taskPath(dagId, run.dag_run_id, rows[r]!));
  };

  const scrollToCell = (r: number, c: number) => {
    const el = scroller.current!;
    const top = HEAD_H + r * ROW_H;
    if (top - HEAD_H < el.scrollTop) el.scrollTop = top - HEAD_H;
    else if (top + ROW_H > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_H - el.clientHeight;
    const nameW = (el.querySelector(".grid-corner") as HTMLElement | null)?.offsetWidth ?? 0;
    const left = nameW + c * COL_W;
    if (left - nameW < el.scrollLeft) el.scrollLeft = left - nameW;
    else if (left + COL_W > el.scrollLeft + el.clientWidth) el.scrollLeft = left + COL_W - el.clientWidth;
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (rows.length === 0 || runs.length === 0) return;
    const page = Math.max(1, Math.floor(view.height / ROW_H) - 2);
    let { r, c } = active;
    switch (e.key) {
      case "ArrowDown":
        r++;
        break;
      case "ArrowUp":
        r--;
        break;
      case "ArrowRight":
        c++;
        break;
      case "ArrowLeft":
        c--;
        break;
      case "PageDown":
        r += page;
        break;
      case "PageUp":
        r -= page;
        break;
      case "Home":
        if (e.ctrlKey) r = 0;
        c = 0;
        break;
      case "End":
        if (e.ctrlKey) r = rows.length - 1;
        c = runs.length - 1;
        break;
      case "Enter":
      case " ": {
        e.preventDefault();
        const run = runs[c];
        if (run) navigate(taskPath(dagId, run.dag_run_id, rows[r]!));
        return;
      }
      default:
        return;
    }
    e.preventDefault();
    r = Math.max(0, Math.min(rows.length - 1, r));
    c = Math.max(0, Math.min(runs.length - 1, c));
    setActive({ r, c });
    scrollToCell(r, c);
  };

  // Keyboard users get the tooltip of the active cell.
  useEffect(() => {
    if (!focused) return;
    const el = scroller.current?.querySelector<HTMLElement>(`#cell-${active.r}-${active.c}`);
    if (el) setTip(tipFor(active.r, active.c, el.getBoundingClientRect()));
  }, [active, focused, view.top, version]);

  const width = runs.length * COL_W;
  const activeId = runs.length && rows.length ? `cell-${active.r}-${active.c}` : undefined;

  return (
    <div class="grid-wrap">
      <div
        ref={scroller}
        class="grid-scroll"
        tabIndex={0}
        role="grid"
        aria-label={`Task instances of ${dagId}: ${rows.length} tasks × ${runs.length} runs. Arrow keys move, Enter opens.`}
        aria-rowcount={rows.length + 1}
        aria-colcount={runs.length + 1}
        aria-activedescendant={activeId}
        onScroll={onScroll}
        onKeyDown={onKeyDown}
        onMouseOver={onMouseOver}
        onClick={onClick}
        onMouseLeave={() => setTip(null)}
        onFocus={() => setFocused(true)}
        onBlur={() => {
          setFocused(false);
          setTip(null);
        }}
      >
        <div class="grid-head" role="row" style={{ height: `${HEAD_H}px` }}>
          <div class="grid-corner" role="columnheader">
            <span class="muted small">
              {rows.length} task{rows.length === 1 ? "" : "s"} · {runs.length} run{runs.length === 1 ? "" : "s"}
            </span>
          </div>
          <div class="grid-runs" style={{ width: `${width}px` }}>
            {runs.map((run, c) => {
              const h = Math.max(6, Math.round(((secondsBetween(run.start_date, run.end_date) ?? 0) / maxRunSeconds) * (HEAD_H - 14)));
              return (
                <div
                  key={run.dag_run_id}
                  role="columnheader"
                  class="run-col"
                  data-c={c}
                  data-run-id={run.dag_run_id}
                  aria-label={`run ${run.dag_run_id}: ${stateLabel(run.state)}`}
                >
                  <span class={`run-bar s-${stateOf(run.state)}`} data-state={run.state} style={{ height: `${h}px` }} />
                </div>
              );
            })}
          </div>
        </div>
        <div class="grid-body" role="rowgroup" style={{ height: `${rows.length * ROW_H}px`, width: "100%" }}>
          {rows.slice(first, last).map((task, i) => {
            const r = first + i;
            const latest = runs[runs.length - 1];
            return (
              <div key={task} class="grid-row" role="row" aria-rowindex={r + 2} data-task-id={task} style={{ top: `${r * ROW_H}px` }}>
                <div class="grid-name" role="rowheader">
                  {latest ? (
                    <a tabIndex={-1} href={taskPath(dagId, latest.dag_run_id, task)} title={task}>
                      {task}
                    </a>
                  ) : (
                    <span title={task}>{task}</span>
                  )}
                </div>
                <div class="grid-cells" style={{ width: `${width}px` }}>
                  {runs.map((run, c) => {
                    const ti = tiAt(r, c);
                    const s = stateOf(ti?.state);
                    const isActive = r === active.r && c === active.c;
                    return (
                      <div
                        key={run.dag_run_id}
                        id={`cell-${r}-${c}`}
                        role="gridcell"
                        class={`cell s-${s}${isActive ? " active" : ""}`}
                        data-r={r}
                        data-c={c}
                        data-state={s}
                        aria-label={`${task} in ${run.dag_run_id}: ${stateLabel(ti?.state ?? null)}`}
                      />
                    );
                  })}
                </div>
              </div>
            );
          })}
        </div>
      </div>
      {rows.length === 0 && <p class="muted">This DAG has no tasks.</p>}
      {tip && (
        <div class="tooltip" role="tooltip" style={{ left: `${Math.min(tip.x, window.innerWidth - 160)}px`, top: `${Math.min(tip.y, window.innerHeight - 150)}px` }}>
          <strong>{tip.title}</strong>
          <dl>
            {tip.lines.map(([k, v]) => (
              <Fragment key={k}>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </Fragment>
            ))}
          </dl>
        </div>
      )}
    </div>
  );
}
