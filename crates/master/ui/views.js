// The list views: overview, agents, frameworks, tasks, roles, maintenance. Each takes the
// store and returns HTML; app.js puts it on the page and wires the table controls.

import {
  html, Raw, when, duration, copyable, scalars, resourceText, reservedText, stateBadge, flag,
  table,
} from './util.js';
import * as cluster from './cluster.js';

function card(label, value, extra = '') {
  return html`<div class="card"><div class="label">${label}</div><div class="value">${value}</div>${extra}</div>`;
}

function usage(name, used, total) {
  const pct = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  const fmt = (v) => (name === 'cpus' ? v.toFixed(2) : `${Math.round(v)} MB`);
  return card(name, html`${fmt(used)} <span class="muted">of ${fmt(total)}</span>`,
    html`<div class="bar" role="img" aria-label="${pct.toFixed(0)}% used"><span style="width:${pct.toFixed(1)}%"></span></div>`);
}

/** The used share of cpus and mem over the last minutes, as two polylines. */
function chart(history) {
  if (history.length < 2) return '';
  const w = 600, h = 120, t0 = history[0].at, t1 = history[history.length - 1].at;
  const line = (key) => history.map((s) => {
    const x = t1 > t0 ? ((s.at - t0) / (t1 - t0)) * w : 0;
    const share = s[key][1] > 0 ? s[key][0] / s[key][1] : 0;
    return `${x.toFixed(1)},${(h - 4 - share * (h - 8)).toFixed(1)}`;
  }).join(' ');
  return html`<svg class="chart" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="Share of cpus (solid) and mem (dashed) in use over the last ${Math.round((t1 - t0) / 60)} minutes">
    <polyline points="${line('cpus')}" fill="none" stroke="#1f5fa8" stroke-width="2"/>
    <polyline points="${line('mem')}" fill="none" stroke="#1d7a3e" stroke-width="2" stroke-dasharray="6 4"/></svg>
    <p class="muted">Share in use: cpus (solid), mem (dashed), last ${Math.max(1, Math.round((t1 - t0) / 60))} min.</p>`;
}

export function overview(store) {
  const m = store.metrics;
  const who = store.whoami ?? {};
  const info = store.master?.master_info ?? {};
  const tasks = store.tasks();
  const byState = {};
  for (const t of tasks) byState[t.state] = (byState[t.state] ?? 0) + 1;
  const agents = store.agents();
  const active = agents.filter((a) => a.active && !a.deactivated).length;
  const deactivated = agents.filter((a) => a.deactivated).length;
  const draining = agents.filter((a) => a.drain_info).length;
  const reserved = agents.flatMap((a) => a.total_resources ?? []);
  const offered = scalars(store.state?.get_frameworks?.frameworks?.flatMap((f) => (f.offers ?? []).flatMap((o) => o.resources ?? [])) ?? []);
  const started = store.master?.start_time;
  const elected = store.master?.elected_time;
  return html`<h1>Cluster ${m['master/cluster'] ?? ''}</h1>
    <div class="cards">
      ${card('Leader', html`<span class="id" id="leader">${who.leader ?? 'none'}</span>`, html`<div class="muted">elected ${when(elected)}</div>`)}
      ${card('Leader uptime', duration(m['master/uptime_secs']), html`<div class="muted">started ${when(started)}</div>`)}
      ${card('This master', html`<span class="id">${who.self}</span>`, html`<div class="muted" id="role">${who.leading ? 'leading' : 'standing by'} · Mesos API ${who.version} · Trireme ${who.trireme_version}</div>`)}
      ${card('Master id', html`<span class="id">${info.id ?? ''}</span>`)}
    </div>
    ${cluster.section(store)}
    <h2>Resources</h2>
    <div class="cards">
      ${usage('cpus', m['master/cpus_used'] ?? 0, m['master/cpus_total'] ?? 0)}
      ${usage('mem', m['master/mem_used'] ?? 0, m['master/mem_total'] ?? 0)}
      ${card('Offered', resourceText(Object.entries(offered).map(([name, value]) => ({ name, type: 'SCALAR', scalar: { value } }))))}
      ${card('Reserved', reservedText(reserved))}
    </div>
    ${chart(store.history)}
    <h2>Tasks</h2>
    <div class="cards" id="task-counts">
      ${card('Tasks known', html`<span data-count="tasks">${tasks.length}</span>`)}
      ${Object.entries(byState).sort().map(([state, n]) => card(stateBadge(state), html`<span data-state-count="${state}">${n}</span>`))}
    </div>
    <h2>Agents</h2>
    <div class="cards" id="agent-counts">
      ${card('Active', html`<span data-count="agents-active">${active}</span>`)}
      ${card('Deactivated', deactivated)}
      ${card('Draining', draining)}
      ${card('Unreachable', m['master/slaves_unreachable'] ?? 0)}
      ${card('Recovered, not back', store.recoveredAgents().length)}
    </div>
    <h2>Frameworks</h2>
    <div class="cards">
      ${card('Active', store.frameworks().filter((f) => f.active).length)}
      ${card('Disconnected', store.frameworks().filter((f) => !f.connected).length)}
      ${card('Completed', store.completedFrameworks().length)}
    </div>`;
}

export function agents(store) {
  const rows = store.agents();
  return html`<h1>Agents</h1>${table({
    id: 'agents',
    placeholder: 'Filter by id, hostname, state, attribute',
    rows,
    columns: [
      { key: 'host', label: 'Hostname', value: (a) => a.agent_info?.hostname, cell: (a) => html`<a href="#/agents/${a.agent_info?.id?.value}">${a.agent_info?.hostname}</a>` },
      { key: 'id', label: 'Id', value: (a) => a.agent_info?.id?.value, cell: (a) => copyable(a.agent_info?.id?.value), optional: true },
      { key: 'state', label: 'State', value: (a) => agentState(a), cell: (a) => agentBadge(a) },
      { key: 'cpus', label: 'CPUs', value: (a) => scalars(a.total_resources).cpus ?? 0 },
      { key: 'mem', label: 'Mem (MB)', value: (a) => scalars(a.total_resources).mem ?? 0 },
      { key: 'registered', label: 'Registered', value: (a) => a.registered_time?.nanoseconds ?? 0, cell: (a) => when(a.registered_time), optional: true },
    ],
  })}`;
}

export function agentState(a) {
  if (a.drain_info) return String(a.drain_info.state ?? 'DRAINING').toLowerCase();
  if (a.deactivated) return 'deactivated';
  return a.active ? 'active' : 'disconnected';
}

export function agentBadge(a) {
  const s = agentState(a);
  return s === 'active' ? flag(true, 'active') : html`<span class="state warn">◍ ${s}</span>`;
}

export function frameworks(store) {
  const rows = [...store.frameworks(), ...store.completedFrameworks().map((f) => ({ ...f, completed: true }))];
  return html`<h1>Frameworks</h1>${table({
    id: 'frameworks',
    placeholder: 'Filter by id, name, role, user',
    rows,
    columns: [
      { key: 'name', label: 'Name', value: (f) => f.framework_info?.name, cell: (f) => html`<a href="#/frameworks/${f.framework_info?.id?.value}">${f.framework_info?.name}</a>` },
      { key: 'id', label: 'Id', value: (f) => f.framework_info?.id?.value, cell: (f) => copyable(f.framework_info?.id?.value), optional: true },
      { key: 'state', label: 'State', value: (f) => frameworkState(f), cell: (f) => frameworkBadge(f) },
      { key: 'roles', label: 'Roles', value: (f) => (f.framework_info?.roles ?? [f.framework_info?.role ?? '*']).join(', ') },
      { key: 'user', label: 'User', value: (f) => f.framework_info?.user, optional: true },
      { key: 'registered', label: 'Registered', value: (f) => f.registered_time?.nanoseconds ?? 0, cell: (f) => when(f.registered_time), optional: true },
    ],
  })}`;
}

export function frameworkState(f) {
  if (f.completed) return 'completed';
  if (!f.connected) return 'disconnected';
  return f.active ? 'active' : 'inactive';
}

export function frameworkBadge(f) {
  const s = frameworkState(f);
  return s === 'active' ? flag(true, 'active') : html`<span class="state ${s === 'completed' ? 'idle' : 'warn'}">◍ ${s}</span>`;
}

export function taskColumns(store) {
  return [
    { key: 'id', label: 'Task', value: (t) => t.task_id?.value, cell: (t) => html`<a href="#/tasks/${t.framework_id?.value}/${t.task_id?.value}">${t.task_id?.value}</a>` },
    { key: 'name', label: 'Name', value: (t) => t.name, optional: true },
    { key: 'state', label: 'State', value: (t) => t.state, cell: (t) => stateBadge(t.state) },
    { key: 'framework', label: 'Framework', value: (t) => store.frameworkName(t.framework_id?.value), optional: true },
    { key: 'agent', label: 'Agent', value: (t) => store.hostname(t.agent_id?.value), cell: (t) => html`<a href="#/agents/${t.agent_id?.value}">${store.hostname(t.agent_id?.value)}</a>`, optional: true },
    { key: 'labels', label: 'Labels', value: (t) => (t.labels?.labels ?? []).map((l) => `${l.key}=${l.value ?? ''}`).join(' '), optional: true },
    { key: 'updated', label: 'Updated', value: (t) => lastStatus(t)?.timestamp ?? 0, cell: (t) => when(lastStatus(t)?.timestamp) },
  ];
}

export function lastStatus(task) {
  const s = task.statuses ?? [];
  return s[s.length - 1];
}

export function tasks(store) {
  return html`<h1>Tasks</h1>${table({
    id: 'tasks',
    placeholder: 'Search by id, name, state, agent, framework, label',
    rows: store.tasks(),
    columns: taskColumns(store),
  })}`;
}

export function maintenance(store) {
  const status = store.maintenance?.status ?? {};
  const machine = (m) => `${m.hostname ?? ''}${m.ip ? ` (${m.ip})` : ''}`;
  const draining = (status.draining_machines ?? []).map((d) => ({ id: d.id, state: 'draining' }));
  const down = (status.down_machines ?? []).map((id) => ({ id, state: 'down' }));
  const rows = [...draining, ...down];
  return html`<h1>Maintenance</h1>${rows.length ? table({
    id: 'machines',
    placeholder: 'Filter machines',
    rows,
    columns: [
      { key: 'machine', label: 'Machine', value: (r) => machine(r.id) },
      { key: 'state', label: 'State', value: (r) => r.state, cell: (r) => html`<span class="state ${r.state === 'down' ? 'bad' : 'warn'}">${r.state === 'down' ? '■' : '◍'} ${r.state}</span>` },
      { key: 'action', label: '', value: () => '', cell: (r) => new Raw(r.state === 'down'
        ? html`<button type="button" data-action="machine-up" data-hostname="${r.id.hostname ?? ''}" data-ip="${r.id.ip ?? ''}">Bring up</button>`.text
        : html`<button type="button" data-action="machine-down" data-hostname="${r.id.hostname ?? ''}" data-ip="${r.id.ip ?? ''}">Start maintenance</button>`.text) },
    ],
  }) : html`<p class="muted">No machines are scheduled for maintenance.</p>`}`;
}
