// The task graph laid out with dagre (left to right), nodes coloured by the selected run's
// states, edges into a task whose trigger rule is not all_success labelled with that rule.
import { Graph as DagreGraph, layout } from "@dagrejs/dagre";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { fitLabel } from "../format.ts";
import { taskPath } from "../router.ts";
import { stateLabel, stateOf } from "../states.ts";
import type { TaskInstance, TaskNode } from "../types.ts";

interface Laid {
  nodes: { id: string; title: string; x: number; y: number; w: number; h: number; kind: string; rule: string }[];
  edges: { from: string; to: string; d: string; label: string | null; lx: number; ly: number }[];
  width: number;
  height: number;
}

const NODE_H = 44;
const NODE_MIN_W = 110;
const NODE_MAX_W = 320;
/** Room around a node's text: 14 px before it (the state stripe), 14 after. */
const NODE_PAD = 28;
/** The longest state a node's second line names. */
const LONGEST_STATE = "up for reschedule";

/** Measures text as a font draws it (canvas); a generous guess where there is no canvas. */
function textMeasure(font: string): (s: string) => number {
  const ctx = document.createElement("canvas").getContext("2d");
  if (!ctx) return (s) => s.length * 9;
  ctx.font = `${font} ${getComputedStyle(document.body).fontFamily}`;
  return (s) => ctx.measureText(s).width;
}

export function layoutTasks(tasks: TaskNode[]): Laid {
  // Nodes as wide as their names in the font they are drawn with (.node-title, .node-sub), within bounds.
  const title = textMeasure("600 12.5px");
  const sub = textMeasure("11px");
  const titles = new Map<string, string>();
  const g = new DagreGraph();
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 56, edgesep: 12, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  const rule = new Map(tasks.map((t) => [t.task_id, t.trigger_rule]));
  for (const t of tasks) {
    const name = fitLabel(t.task_id, NODE_MAX_W - NODE_PAD, title);
    titles.set(t.task_id, name.text);
    const second = sub(`${t.kind !== "task" ? `${t.kind} · ` : ""}${LONGEST_STATE}`);
    g.setNode(t.task_id, { width: Math.ceil(Math.max(NODE_MIN_W, Math.min(NODE_MAX_W, Math.max(name.width, second) + NODE_PAD))), height: NODE_H });
  }
  for (const t of tasks) {
    for (const d of t.downstream_task_ids) {
      if (!rule.has(d)) continue;
      const r = rule.get(d)!;
      const label = r && r !== "all_success" ? r : null;
      g.setEdge(t.task_id, d, label ? { label, width: label.length * 6.2 + 10, height: 16, labelpos: "c" } : {});
    }
  }
  layout(g);
  const kinds = new Map(tasks.map((t) => [t.task_id, t.kind]));
  const nodes = g.nodes().map((id) => {
    const n = g.node(id) as { x: number; y: number; width: number; height: number };
    return { id, title: titles.get(id) ?? id, x: n.x - n.width / 2, y: n.y - n.height / 2, w: n.width, h: n.height, kind: kinds.get(id) ?? "task", rule: rule.get(id) ?? "all_success" };
  });
  const edges = g.edges().map((e) => {
    const label = g.edge(e) as { points: { x: number; y: number }[]; label?: string; x?: number; y?: number };
    return { from: e.v, to: e.w, d: pathOf(label.points), label: label.label ?? null, lx: label.x ?? 0, ly: label.y ?? 0 };
  });
  const gl = g.graph() as { width?: number; height?: number };
  return { nodes, edges, width: Math.ceil(gl.width ?? 0), height: Math.ceil(gl.height ?? 0) };
}

/** A smooth path through dagre's points (quadratic curves through the midpoints). */
function pathOf(points: { x: number; y: number }[]): string {
  if (points.length === 0) return "";
  let d = `M${points[0]!.x},${points[0]!.y}`;
  if (points.length === 2) return `${d} L${points[1]!.x},${points[1]!.y}`;
  for (let i = 1; i < points.length - 1; i++) {
    const p = points[i]!;
    const n = points[i + 1]!;
    const mx = i === points.length - 2 ? n.x : (p.x + n.x) / 2;
    const my = i === points.length - 2 ? n.y : (p.y + n.y) / 2;
    d += ` Q${p.x},${p.y} ${mx},${my}`;
  }
  return d;
}

interface Props {
  dagId: string;
  tasks: TaskNode[];
  runId: string | null;
  /** Task id → task instance of the selected run. */
  states: Map<string, TaskInstance>;
}

export function Graph({ dagId, tasks, runId, states }: Props) {
  const [laid, setLaid] = useState<Laid | null>(null);
  const [scale, setScale] = useState(1);
  const box = useRef<HTMLDivElement>(null);
  // Layout takes a moment for big DAGs: paint "laying out" first.
  useEffect(() => {
    setLaid(null);
    const t = setTimeout(() => setLaid(layoutTasks(tasks)), 0);
    return () => clearTimeout(t);
  }, [tasks]);
  const [fit, setFit] = useState(1);
  useLayoutEffect(() => {
    if (!laid || !box.current) return;
    const f = Math.max(0.2, Math.min(1, (box.current.clientWidth - 8) / Math.max(1, laid.width)));
    setFit(f);
    setScale(f);
  }, [laid]);

  if (!laid) return <p class="muted loading">Laying out {tasks.length} tasks…</p>;
  return (
    <div class="graph">
      <div class="graph-tools" role="group" aria-label="Zoom">
        <button type="button" aria-label="Zoom out" onClick={() => setScale((s) => Math.max(0.1, s / 1.25))}>
          −
        </button>
        <span class="muted small" aria-live="polite">
          {Math.round(scale * 100)}%
        </span>
        <button type="button" aria-label="Zoom in" onClick={() => setScale((s) => Math.min(3, s * 1.25))}>
          +
        </button>
        <button type="button" onClick={() => setScale(fit)}>
          Fit
        </button>
      </div>
      <div class="graph-box" ref={box}>
        <svg
          class="graph-svg"
          width={laid.width * scale}
          height={laid.height * scale}
          viewBox={`0 0 ${laid.width} ${laid.height}`}
          role="img"
          aria-label={`Task graph of ${dagId}`}
        >
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="arrow-head" />
            </marker>
          </defs>
          <g class="edges">
            {laid.edges.map((e) => (
              <g key={`${e.from}>${e.to}`} class={`edge${e.label ? " ruled" : ""}`} data-from={e.from} data-to={e.to}>
                <path d={e.d} marker-end="url(#arrow)" />
                {e.label && (
                  <g class="edge-label" transform={`translate(${e.lx},${e.ly})`}>
                    <rect x={-(e.label.length * 6.2 + 10) / 2} y={-8} width={e.label.length * 6.2 + 10} height={16} rx={4} />
                    <text text-anchor="middle" dominant-baseline="central">
                      {e.label}
                    </text>
                  </g>
                )}
              </g>
            ))}
          </g>
          <g class="nodes">
            {laid.nodes.map((n) => {
              const ti = states.get(n.id);
              const s = stateOf(ti?.state);
              const body = (
                <>
                  {n.title !== n.id && <title>{n.id}</title>}
                  <rect class={`node-box s-${s}`} width={n.w} height={n.h} rx={7} />
                  <rect class={`node-stripe s-${s}`} width={6} height={n.h} rx={3} />
                  <text class="node-title" x={14} y={18}>
                    {n.title}
                  </text>
                  <text class="node-sub" x={14} y={34}>
                    {n.kind !== "task" ? `${n.kind} · ` : ""}
                    {runId ? stateLabel(ti?.state ?? null) : n.rule}
                  </text>
                </>
              );
              return (
                <g key={n.id} class="node" transform={`translate(${n.x},${n.y})`} data-task-id={n.id} data-state={s}>
                  {runId ? (
                    <a href={taskPath(dagId, runId, n.id)} aria-label={`${n.id}: ${stateLabel(ti?.state ?? null)}`}>
                      {body}
                    </a>
                  ) : (
                    body
                  )}
                </g>
              );
            })}
          </g>
        </svg>
      </div>
    </div>
  );
}
