// SVG charts drawn by hand: a time series (points, an optional shaded band, horizontal reference lines) and a
// grouped bar chart. Pure functions of their data returning an <svg> element; every colour and stroke is in
// dashboard.css, keyed by class.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 240;
const MARGIN = { left: 56, right: 84, top: 14, bottom: 30 };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR,
  3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY];

function node(name, attributes = {}, parent = null, text = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== null) element.textContent = text;
  if (parent) parent.appendChild(element);
  return element;
}

function svgRoot(label) {
  return node("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": label,
    preserveAspectRatio: "xMidYMid meet",
  });
}

/** A number in at most four significant digits, without trailing zeros ("0.0123", "12.5", "1.23e+6"). */
export function formatNumber(value) {
  if (!Number.isFinite(value)) return String(value);
  if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-4)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

const pad = (n) => String(n).padStart(2, "0");

/** Local time as "2026-05-04 13:07:09", the one date form the page shows. */
export function formatTime(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function tickLabel(date, span) {
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return span <= DAY ? clock : `${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${clock}`;
}

/** About `count` round values covering [low, high] (steps of 1, 2 or 5 times a power of ten). */
function valueTicks(low, high, count = 5) {
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Times on a round step (whole minutes, hours, days in local time) inside [begin, end]. */
function timeTicks(begin, end, count = 6) {
  const span = end - begin;
  const step = TIME_STEPS.find((s) => span / s <= count) ?? Math.ceil(span / count / DAY) * DAY;
  const offset = new Date(begin).getTimezoneOffset() * MINUTE; // round in local time, not UTC
  const ticks = [];
  for (let t = Math.ceil((begin - offset) / step) * step + offset; t <= end; t += step) ticks.push(t);
  return ticks;
}

function extent(values) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (!Number.isFinite(low) || !Number.isFinite(high)) return [0, 1];
  if (low === high) {
    const spread = Math.abs(low) * 0.1 || 1;
    low -= spread;
    high += spread;
  }
  const margin = (high - low) * 0.08;
  return [low - margin, high + margin];
}

/**
 * A time series over the window `domain` ([Date, Date]).
 *
 * points: [{t: Date, y: number, alarm?: boolean}] in any order; drawn as a line through dots (class "point").
 * band:   [{t: Date, low: number, high: number}]; a shaded range, e.g. mean ± standard deviation.
 * rules:  [{y: number, label: string, kind: "center" | "warn" | "limit"}]; horizontal reference lines.
 */
export function timeChart({ domain, points, band = [], rules = [], label }) {
  const svg = svgRoot(label);
  const sorted = [...points].sort((a, b) => a.t - b.t);
  // Buckets start on an epoch-aligned grid, so the first one may begin a little before the window does.
  const begin = Math.min(domain[0].getTime(), ...sorted.map((p) => p.t.getTime()));
  const end = Math.max(domain[1].getTime(), ...sorted.map((p) => p.t.getTime()));
  const [low, high] = extent([
    ...sorted.map((p) => p.y), ...band.flatMap((b) => [b.low, b.high]), ...rules.map((r) => r.y),
  ]);
  const x = (t) => MARGIN.left + ((t - begin) / (end - begin)) * (WIDTH - MARGIN.left - MARGIN.right);
  const y = (v) => HEIGHT - MARGIN.bottom - ((v - low) / (high - low)) * (HEIGHT - MARGIN.top - MARGIN.bottom);

  const grid = node("g", { class: "grid" }, svg);
  for (const v of valueTicks(low, high)) {
    node("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v) }, grid);
    node("text", { x: MARGIN.left - 6, y: y(v), class: "tick y" }, grid, formatNumber(v));
  }
  for (const t of timeTicks(begin, end)) {
    node("line", { x1: x(t), x2: x(t), y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom }, grid);
    node("text", { x: x(t), y: HEIGHT - MARGIN.bottom + 16, class: "tick x" }, grid, tickLabel(new Date(t), end - begin));
  }
  node("rect", {
    x: MARGIN.left, y: MARGIN.top, width: WIDTH - MARGIN.left - MARGIN.right,
    height: HEIGHT - MARGIN.top - MARGIN.bottom, class: "frame",
  }, svg);

  if (band.length) {
    const ordered = [...band].sort((a, b) => a.t - b.t);
    const upper = ordered.map((b) => `${x(b.t)},${y(b.high)}`);
    const lower = ordered.reverse().map((b) => `${x(b.t)},${y(b.low)}`);
    node("polygon", { points: [...upper, ...lower].join(" "), class: "band" }, svg);
  }
  for (const rule of rules) {
    const g = node("g", { class: `rule ${rule.kind}` }, svg);
    node("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(rule.y), y2: y(rule.y) }, g);
    node("text", { x: WIDTH - MARGIN.right + 4, y: y(rule.y) }, g, rule.label);
  }
  if (sorted.length) {
    const path = sorted.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ");
    node("path", { d: path, class: "line" }, svg);
    const dots = node("g", { class: "points" }, svg);
    for (const p of sorted) {
      const dot = node("circle", { cx: x(p.t), cy: y(p.y), r: 3.5, class: p.alarm ? "point alarm" : "point" }, dots);
      node("title", {}, dot, `${formatTime(p.t)}  ${formatNumber(p.y)}`);
    }
  } else {
    node("text", { x: WIDTH / 2, y: HEIGHT / 2, class: "nodata" }, svg, "No data in this time range");
  }
  return svg;
}

/**
 * Grouped bars, one group per category: [{label: string, values: [number, ...]}] with `series` naming each value
 * (bars and legend keys get classes "s0", "s1", ...).
 */
export function barChart({ groups, series, label }) {
  const svg = svgRoot(label);
  const high = Math.max(...groups.flatMap((g) => g.values), 0) * 1.1 || 1;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const y = (v) => HEIGHT - MARGIN.bottom - (v / high) * (HEIGHT - MARGIN.top - MARGIN.bottom);
  const grid = node("g", { class: "grid" }, svg);
  for (const v of valueTicks(0, high)) {
    node("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v) }, grid);
    node("text", { x: MARGIN.left - 6, y: y(v), class: "tick y" }, grid, formatNumber(v));
  }
  const slot = plotWidth / Math.max(groups.length, 1);
  const barWidth = (slot * 0.8) / series.length;
  groups.forEach((group, i) => {
    const left = MARGIN.left + i * slot + slot * 0.1;
    group.values.forEach((value, s) => {
      const bar = node("rect", {
        x: left + s * barWidth, y: y(value), width: Math.max(barWidth - 1, 1), height: y(0) - y(value),
        class: `bar s${s}`,
      }, svg);
      node("title", {}, bar, `${group.label}: ${series[s]} ${formatNumber(value)}`);
    });
    node("text", { x: left + slot * 0.4, y: HEIGHT - MARGIN.bottom + 16, class: "tick x" }, svg, group.label);
  });
  const legend = node("g", { class: "legend" }, svg);
  series.forEach((name, s) => {
    node("rect", { x: WIDTH - MARGIN.right + 8, y: MARGIN.top + s * 18, width: 10, height: 10, class: `key s${s}` },
      legend);
    node("text", { x: WIDTH - MARGIN.right + 22, y: MARGIN.top + s * 18 + 5 }, legend, name);
  });
  return svg;
}
