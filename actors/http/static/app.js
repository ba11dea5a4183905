// The dashboard's views: log in, the profile list (#/), one profile (#/profile/<space>/<name>/<version>/<type>)
// with its drift charts and alerts. Everything is read through the API (api.js); charts come from charts.js.

import * as api from "./api.js";
import { barChart, formatNumber, formatTime, timeChart } from "./charts.js";

const INTERVALS = [
  ["FiveMinutes", "5 minutes", 5], ["FifteenMinutes", "15 minutes", 15], ["ThirtyMinutes", "30 minutes", 30],
  ["OneHour", "1 hour", 60], ["ThreeHours", "3 hours", 180], ["SixHours", "6 hours", 360],
  ["TwelveHours", "12 hours", 720], ["TwentyFourHours", "24 hours", 1440], ["TwoDays", "2 days", 2880],
  ["FiveDays", "5 days", 7200],
];
const VIEWS = ["login-view", "profiles-view", "profile-view"];
const ALERT_LIMIT = 200;

const state = {
  user: null,
  profiles: [],
  range: { interval: "TwentyFourHours", points: 48, begin: "", end: "" },
  activeOnly: true,
  current: null, // the profile on screen: {space, name, version, drift_type}
  generation: 0, // bumped on every navigation, so a late answer for a view left meanwhile is dropped
};

const $ = (selector) => document.querySelector(selector);

function element(name, { className, text, attributes } = {}, ...children) {
  const el = document.createElement(name);
  if (className) el.className = className;
  if (text !== undefined && text !== null) el.textContent = text;
  for (const [key, value] of Object.entries(attributes ?? {})) el.setAttribute(key, value);
  el.append(...children);
  return el;
}

function show(view) {
  for (const id of VIEWS) document.getElementById(id).hidden = id !== view;
  $("#session").hidden = view === "login-view";
  $("#who").textContent = state.user ?? "";
}

function stamp(text) {
  return text ? formatTime(new Date(text)) : "–";
}

function profileHash(p) {
  return "#/profile/" + [p.space, p.name, p.version, p.drift_type].map(encodeURIComponent).join("/");
}

// --- routing ------------------------------------------------------------------------------------------------------

function route() {
  state.generation += 1;
  if (!api.loggedIn()) {
    show("login-view");
    $("#login-form [name=username]").focus();
    return;
  }
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "profile" && parts.length === 5) {
    const [, space, name, version, drift_type] = parts;
    openProfile({ space, name, version, drift_type });
  } else {
    openProfiles();
  }
}

// --- log in -------------------------------------------------------------------------------------------------------

async function submitLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("#login-error");
  error.textContent = "";
  const username = form.elements.username.value.trim();
  try {
    await api.login(username, form.elements.password.value);
  } catch (failure) {
    error.textContent = failure.message;
    return;
  } finally {
    form.elements.password.value = "";
  }
  state.user = username;
  route();
}

function logout() {
  api.logout();
  state.user = null;
  state.profiles = [];
  window.location.hash = "#/";
  route();
}

// --- the profile list ---------------------------------------------------------------------------------------------

async function openProfiles() {
  state.current = null;
  show("profiles-view");
  const generation = state.generation;
  const status = $("#profiles-status");
  status.textContent = "Loading…";
  try {
    state.profiles = (await api.get("/scouter/profiles")).profiles;
  } catch (failure) {
    if (generation === state.generation) status.textContent = failure.message;
    return;
  }
  if (generation !== state.generation) return;
  renderProfiles();
}

function renderProfiles() {
  const filter = $("#profile-filter").value.trim().toLowerCase();
  const shown = state.profiles.filter((p) =>
    !filter || [p.space, p.name, p.version, p.drift_type, p.uid].some((v) => v.toLowerCase().includes(filter)));
  const rows = shown.map((p) => element("tr", {},
    element("td", { text: p.space }),
    element("td", {}, element("a", { text: p.name, attributes: { href: profileHash(p) } })),
    element("td", { text: p.version }),
    element("td", {}, element("span", { className: `badge ${p.drift_type.toLowerCase()}`, text: p.drift_type })),
    element("td", {}, element("span", { className: p.active ? "state on" : "state off",
      text: p.active ? "active" : "inactive" })),
    element("td", { className: "mono", text: p.schedule }),
    element("td", { text: stamp(p.next_run) }),
    element("td", { text: stamp(p.previous_run) }),
    element("td", { className: "mono", text: p.uid }),
  ));
  $("#profiles-table tbody").replaceChildren(...rows);
  const total = state.profiles.length;
  $("#profiles-status").textContent = total === 0 ? "No profiles you may read yet."
    : shown.length === total ? `${total} profile${total === 1 ? "" : "s"}` : `${shown.length} of ${total} profiles`;
}

// --- one profile --------------------------------------------------------------------------------------------------

function rangeQuery() {
  const { interval, points, begin, end } = state.range;
  const query = { time_interval: interval, max_data_points: points };
  if (begin && end) {
    query.begin_custom_datetime = new Date(begin).toISOString();
    query.end_custom_datetime = new Date(end).toISOString();
  }
  return query;
}

function rangeWindow() {
  const { interval, begin, end } = state.range;
  if (begin && end) return [new Date(begin), new Date(end)];
  const minutes = INTERVALS.find(([key]) => key === interval)[2];
  const now = new Date();
  return [new Date(now.getTime() - minutes * 60_000), now];
}

function syncRangeForm() {
  const form = $("#range-form");
  form.elements.time_interval.value = state.range.interval;
  form.elements.max_data_points.value = state.range.points;
  form.elements.begin.value = state.range.begin;
  form.elements.end.value = state.range.end;
}

function submitRange(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const begin = form.elements.begin.value;
  const end = form.elements.end.value;
  if (Boolean(begin) !== Boolean(end) || (begin && new Date(begin) >= new Date(end))) {
    $("#drift-status").textContent = "A custom range needs both ends, the first before the second.";
    return;
  }
  state.range = {
    interval: form.elements.time_interval.value,
    points: Math.max(1, Math.min(1000, Number(form.elements.max_data_points.value) || 48)),
    begin,
    end,
  };
  if (state.current) loadDrift(state.current, state.generation);
}

async function openProfile(target) {
  state.current = target;
  show("profile-view");
  $("#profile-title").replaceChildren(
    element("span", { text: `${target.space} / ${target.name} / ${target.version}` }),
    element("span", { className: `badge ${target.drift_type.toLowerCase()}`, text: target.drift_type }),
  );
  syncRangeForm();
  const generation = state.generation;
  await Promise.all([loadDrift(target, generation), loadAlerts(target, generation)]);
}

async function loadDrift(target, generation) {
  const status = $("#drift-status");
  const charts = $("#charts");
  status.textContent = "Loading…";
  charts.setAttribute("aria-busy", "true");
  const entity = { space: target.space, name: target.name, version: target.version };
  const kind = target.drift_type.toLowerCase();
  const window_ = rangeWindow();
  let profile;
  let drift;
  try {
    [profile, drift] = await Promise.all([
      api.get("/scouter/profile", { ...entity, drift_type: target.drift_type }),
      api.get(`/scouter/drift/${kind}`, { ...entity, drift_type: target.drift_type, ...rangeQuery() }),
    ]);
  } catch (failure) {
    if (generation === state.generation) {
      status.textContent = failure.message;
      charts.replaceChildren();
      charts.removeAttribute("aria-busy");
    }
    return;
  }
  if (generation !== state.generation) return;
  const document_ = profile[target.drift_type];
  const cards = { Spc: spcCards, Psi: psiCards, Custom: customCards }[target.drift_type](document_, drift, window_);
  charts.replaceChildren(...cards);
  charts.removeAttribute("aria-busy");
  const [begin, end] = window_;
  status.textContent = `${formatTime(begin)} to ${formatTime(end)}, at most ${state.range.points} points per chart`;
}

function card(title, subtitle, ...content) {
  return element("article", { className: "card" },
    element("header", {}, element("h3", { text: title }), element("span", { className: "muted", text: subtitle })),
    ...content);
}

function series(createdAt, values) {
  return createdAt.map((t, i) => ({ t: new Date(t), y: values[i] }));
}

function entries(fromData, fromProfile) {
  return [...new Set([...Object.keys(fromData ?? {}), ...Object.keys(fromProfile ?? {})])].sort();
}

function spcCards(profile, drift, domain) {
  return entries(drift.features, profile.features).map((feature) => {
    const data = drift.features[feature] ?? { created_at: [], values: [] };
    const limits = profile.features[feature];
    const points = series(data.created_at, data.values);
    const rules = [];
    if (limits) {
      for (const p of points) p.alarm = p.y > limits.three_ucl || p.y < limits.three_lcl;
      rules.push(
        { y: limits.center, label: "center", kind: "center" },
        { y: limits.two_ucl, label: "+2σ", kind: "warn" }, { y: limits.two_lcl, label: "−2σ", kind: "warn" },
        { y: limits.three_ucl, label: "UCL +3σ", kind: "limit" }, { y: limits.three_lcl, label: "LCL −3σ", kind: "limit" },
      );
    }
    const latest = data.values.length ? `latest ${formatNumber(data.values[0])}` : "no data";
    return card(feature, `${data.values.length} points · ${latest}`,
      timeChart({ domain, points, rules, label: `SPC values of ${feature}` }));
  });
}

function psiThreshold(profile) {
  const threshold = profile.config?.alert_config?.threshold;
  return threshold?.Fixed ? threshold.Fixed.threshold : null;
}

function psiCards(profile, drift, domain) {
  const fixed = psiThreshold(profile);
  return entries(drift.features, profile.features).map((feature) => {
    const data = drift.features[feature] ?? { created_at: [], psi: [], bins: {} };
    const rules = fixed === null ? [] : [{ y: fixed, label: "threshold", kind: "limit" }];
    const points = series(data.created_at, data.psi).map((p) => ({ ...p, alarm: fixed !== null && p.y > fixed }));
    const content = [timeChart({ domain, points, rules, label: `PSI per bucket of ${feature}` })];
    const expected = profile.features[feature]?.bins ?? [];
    if (expected.length && Object.keys(data.bins ?? {}).length) {
      const groups = expected.map((bin) => ({
        label: `bin ${bin.id}`, values: [data.bins[String(bin.id)] ?? 0, bin.proportion],
      }));
      content.push(barChart({ groups, series: ["observed", "profile"], label: `Bin proportions of ${feature}` }));
    }
    const overall = data.overall_psi === undefined ? "no data" : `overall PSI ${formatNumber(data.overall_psi)}`;
    return card(feature, `${data.psi.length} points · ${overall}`, ...content);
  });
}

// The poller's rule (server.md §6.5): Above alerts over training + margin, Below under training - margin, Outside
// either way; a null margin is 0.
function customBounds(training, condition) {
  if (!condition) return { upper: null, lower: null };
  const margin = condition.alert_threshold_value ?? 0;
  const kind = condition.alert_threshold;
  return {
    upper: kind === "Above" || kind === "Outside" ? training + margin : null,
    lower: kind === "Below" || kind === "Outside" ? training - margin : null,
  };
}

function customCards(profile, drift, domain) {
  const conditions = profile.config?.alert_config?.alert_conditions ?? {};
  return entries(drift.metrics, profile.metrics).map((metric) => {
    const data = drift.metrics[metric] ?? { created_at: [], stats: [] };
    const times = data.created_at.map((t) => new Date(t));
    const band = data.stats.map((s, i) => ({ t: times[i], low: s.lower_bound, high: s.upper_bound }));
    const training = profile.metrics?.[metric];
    const rules = [];
    let alarm = () => false;
    if (training !== undefined) {
      const { upper, lower } = customBounds(training, conditions[metric]);
      rules.push({ y: training, label: "training", kind: "center" });
      if (upper !== null) rules.push({ y: upper, label: "upper", kind: "limit" });
      if (lower !== null) rules.push({ y: lower, label: "lower", kind: "limit" });
      alarm = (avg) => avg !== training && ((upper !== null && avg > upper) || (lower !== null && avg < lower));
    }
    const points = data.stats.map((s, i) => ({ t: times[i], y: s.avg, alarm: alarm(s.avg) }));
    const latest = data.stats.length ? `latest avg ${formatNumber(data.stats[0].avg)}` : "no data";
    return card(metric, `${data.stats.length} points · ${latest}`,
      timeChart({ domain, points, band, rules, label: `Average of ${metric} with ± one standard deviation` }));
  });
}

// --- alerts -------------------------------------------------------------------------------------------------------

async function loadAlerts(target, generation) {
  const status = $("#alerts-status");
  status.textContent = "Loading…";
  let alerts;
  try {
    ({ alerts } = await api.get("/scouter/alerts", {
      space: target.space, name: target.name, version: target.version, active: state.activeOnly,
      limit: ALERT_LIMIT,
    }));
  } catch (failure) {
    if (generation === state.generation) status.textContent = failure.message;
    return;
  }
  if (generation !== state.generation) return;
  const rows = alerts.map((alert) => element("tr", { attributes: { "data-alert-id": String(alert.id) } },
    element("td", { text: stamp(alert.created_at) }),
    element("td", { text: alert.entity_name }),
    element("td", { text: alert.drift_type }),
    element("td", {}, element("dl", { className: "details" }, ...Object.entries(alert.alert)
      .filter(([key]) => key !== "entity_name")
      .flatMap(([key, value]) => [element("dt", { text: key }), element("dd", { text: value })]))),
    element("td", {}, alert.active
      ? acknowledgeButton(target, alert)
      : element("span", { className: "state off", text: "acknowledged" })),
  ));
  $("#alerts-table tbody").replaceChildren(...rows);
  const noun = state.activeOnly ? "active alert" : "alert";
  status.textContent = alerts.length ? `${alerts.length} ${noun}${alerts.length === 1 ? "" : "s"}` : `No ${noun}s.`;
}

function acknowledgeButton(target, alert) {
  const button = element("button", { className: "acknowledge", text: "Acknowledge", attributes: { type: "button" } });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api.put("/scouter/alerts", { id: alert.id, active: false, space: alert.space });
    } catch (failure) {
      button.disabled = false;
      $("#alerts-status").textContent = `Could not acknowledge alert ${alert.id}: ${failure.message}`;
      return;
    }
    await loadAlerts(target, state.generation);
  });
  return button;
}

// --- start --------------------------------------------------------------------------------------------------------

function start() {
  const select = $("#range-form [name=time_interval]");
  select.replaceChildren(...INTERVALS.map(([key, label]) => element("option", { text: label, attributes: { value: key } })));
  $("#login-form").addEventListener("submit", submitLogin);
  $("#logout").addEventListener("click", logout);
  $("#profile-filter").addEventListener("input", renderProfiles);
  $("#profiles-refresh").addEventListener("click", openProfiles);
  $("#range-form").addEventListener("submit", submitRange);
  select.addEventListener("change", () => { // a "last ..." choice replaces a custom range
    const form = $("#range-form");
    form.elements.begin.value = "";
    form.elements.end.value = "";
  });
  $("#alerts-active-only").addEventListener("change", (event) => {
    state.activeOnly = event.currentTarget.checked;
    if (state.current) loadAlerts(state.current, state.generation);
  });
  api.onSessionEnd((message) => {
    state.user = null;
    show("login-view");
    $("#login-error").textContent = `Please log in again (${message}).`;
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
