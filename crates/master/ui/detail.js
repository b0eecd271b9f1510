// The pages of one agent, framework or task, and the operator actions on them. Every
// action asks for confirmation first and reports the master's answer.

import { call } from './data.js';
import { html, when, copyable, resourceText, reservedText, stateBadge, table } from './util.js';
import { agentBadge, frameworkBadge, taskColumns } from './views.js';
import * as sandbox from './sandbox.js';
import * as roles from './roles.js';

function props(pairs) {
  return html`<dl class="props">${pairs.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

function missing(kind, id) {
  return html`<h1>${kind} not found</h1><p class="muted">The leader knows no ${kind.toLowerCase()} <span class="id">${id}</span>.</p>`;
}

export function agent(store, id) {
  const a = store.agent(id);
  if (!a) return missing('Agent', id);
  const info = a.agent_info ?? {};
  const attributes = (info.attributes ?? []).map((x) => `${x.name}=${x.text?.value ?? x.scalar?.value ?? ''}`).join(', ');
  const tasks = store.tasks().filter((t) => t.agent_id?.value === id);
  return html`<h1>Agent ${info.hostname}</h1>
    <div class="actions">
      <button type="button" data-action="deactivate-agent" data-agent="${id}">Deactivate</button>
      <button type="button" data-action="reactivate-agent" data-agent="${id}">Reactivate</button>
      <button type="button" data-action="drain-agent" data-agent="${id}">Drain</button>
      <button type="button" class="danger" data-action="mark-gone" data-agent="${id}">Mark gone</button>
    </div>
    ${props([
      ['Id', copyable(id)], ['State', agentBadge(a)], ['Address', a.pid ?? ''],
      ['Version', a.version ?? ''], ['Registered', when(a.registered_time)],
      ['Reregistered', when(a.reregistered_time)], ['Resources', resourceText(a.total_resources)],
      ['Reserved', reservedText(a.total_resources)], ['Attributes', attributes || '—'],
      ['Drain', a.drain_info ? `${a.drain_info.state ?? ''}` : '—'],
    ])}
    <h2>Tasks on this agent</h2>
    ${table({ id: 'agent-tasks', rows: tasks, columns: taskColumns(store), placeholder: 'Filter tasks' })}`;
}

export function framework(store, id) {
  const f = store.framework(id);
  if (!f) return missing('Framework', id);
  const info = f.framework_info ?? {};
  const tasks = store.tasks().filter((t) => t.framework_id?.value === id);
  const capabilities = (info.capabilities ?? []).map((c) => c.type).join(', ');
  return html`<h1>Framework ${info.name}</h1>
    <div class="actions"><button type="button" class="danger" data-action="teardown" data-framework="${id}">Tear down</button></div>
    ${props([
      ['Id', copyable(id)], ['State', frameworkBadge(f)], ['User', info.user ?? ''],
      ['Roles', (info.roles ?? [info.role ?? '*']).join(', ')], ['Principal', info.principal ?? '—'],
      ['Capabilities', capabilities || '—'], ['Failover timeout', `${info.failover_timeout ?? 0} s`],
      ['Checkpoint', info.checkpoint ? 'yes' : 'no'], ['Hostname', info.hostname ?? '—'],
      ['Registered', when(f.registered_time)], ['Offers outstanding', (f.offers ?? []).length],
    ])}
    <h2>Tasks</h2>
    ${table({ id: 'framework-tasks', rows: tasks, columns: taskColumns(store), placeholder: 'Filter tasks' })}`;
}

export function task(store, frameworkId, taskId, query = new URLSearchParams()) {
  const t = store.task(frameworkId, taskId);
  if (!t) return missing('Task', taskId);
  const shown = sandbox.relativePath(query.get('file')) || 'stdout';
  const dir = query.has('dir') ? sandbox.relativePath(query.get('dir')) : null;
  const statuses = (t.statuses ?? []).slice().reverse();
  return html`<h1>Task ${taskId}</h1>
    ${props([
      ['Id', copyable(taskId)], ['State', stateBadge(t.state)], ['Name', t.name ?? ''],
      ['Framework', html`<a href="#/frameworks/${frameworkId}">${store.frameworkName(frameworkId)}</a>`],
      ['Agent', html`<a href="#/agents/${t.agent_id?.value}">${store.hostname(t.agent_id?.value)}</a>`],
      ['Executor', t.executor_id?.value ?? '—'], ['Resources', resourceText(t.resources)],
      ['Labels', (t.labels?.labels ?? []).map((l) => `${l.key}=${l.value ?? ''}`).join(', ') || '—'],
    ])}
    <h2>Status history</h2>
    <table id="statuses"><thead><tr><th>State</th><th>When</th><th class="optional">Reason</th><th>Message</th><th class="optional">Source</th><th class="optional">Healthy</th></tr></thead>
    <tbody>${statuses.map((s) => html`<tr><td>${stateBadge(s.state)}</td><td>${when(s.timestamp)}</td><td class="optional">${s.reason ?? ''}</td><td>${s.message ?? ''}</td><td class="optional">${s.source ?? ''}</td><td class="optional">${s.healthy == null ? '' : s.healthy ? 'yes' : 'no'}</td></tr>`)}</tbody></table>
    ${sandbox.section(t, shown, dir)}`;
}

/** What each action asks, and the operator call that does it. */
const ACTIONS = {
  teardown: (d) => [`Tear down framework ${d.framework}? All its tasks are killed.`,
    () => call('TEARDOWN', { teardown: { framework_id: { value: d.framework } } })],
  'deactivate-agent': (d) => [`Deactivate agent ${d.agent}? It gets no new tasks; running ones keep running.`,
    () => call('DEACTIVATE_AGENT', { deactivate_agent: { agent_id: { value: d.agent } } })],
  'reactivate-agent': (d) => [`Reactivate agent ${d.agent}?`,
    () => call('REACTIVATE_AGENT', { reactivate_agent: { agent_id: { value: d.agent } } })],
  'drain-agent': (d) => [`Drain agent ${d.agent}? Every task on it is killed.`,
    () => call('DRAIN_AGENT', { drain_agent: { agent_id: { value: d.agent } } })],
  'mark-gone': (d) => [`Mark agent ${d.agent} gone? This cannot be undone: its tasks are lost and it may never rejoin.`,
    () => call('MARK_AGENT_GONE', { mark_agent_gone: { agent_id: { value: d.agent } } })],
  'machine-down': (d) => [`Start maintenance on ${d.hostname || d.ip}? Its agents are removed.`,
    () => call('START_MAINTENANCE', { start_maintenance: { machines: [machine(d)] } })],
  'machine-up': (d) => [`Bring ${d.hostname || d.ip} back up?`,
    () => call('STOP_MAINTENANCE', { stop_maintenance: { machines: [machine(d)] } })],
};

function machine(d) {
  const id = {};
  if (d.hostname) id.hostname = d.hostname;
  if (d.ip) id.ip = d.ip;
  return id;
}

function confirmed(text) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    document.getElementById('confirm-ok').focus();
  });
}

/** Runs the action a button names; returns the message to show. */
export async function act(button) {
  const make = ACTIONS[button.dataset.action] ?? roles.ACTIONS[button.dataset.action];
  if (!make) return null;
  let question, run;
  try {
    [question, run] = make(button.dataset);
  } catch (e) {
    return { ok: false, text: e.message ?? String(e) };
  }
  if (!(await confirmed(question))) return null;
  try {
    await run();
    return { ok: true, text: 'Done.' };
  } catch (e) {
    return { ok: false, text: e.message ?? String(e) };
  }
}
