// The roles view: each role's weight, frameworks, allocation and quota (guarantees and
// limits from GET_QUOTA), and a form that sets a role's weight (UPDATE_WEIGHTS) or its quota
// (UPDATE_QUOTA, guarantees and limits of cpus, mem and disk). Both ask for confirmation;
// the master's refusal is shown as it said it.

import { call } from './data.js';
import { html, resourceText, table } from './util.js';

const QUOTA_NAMES = ['cpus', 'mem', 'disk'];

function scalarsText(map = {}) {
  const parts = Object.entries(map).map(([name, v]) => `${name} ${v?.value ?? v}`);
  return parts.join(' · ') || '—';
}

function quotaOf(store, role) {
  return (store.quota?.configs ?? []).find((c) => c.role === role);
}

function form(store) {
  const names = (store.roles?.roles ?? []).map((r) => r.name);
  const field = (kind, name) => html`<label>${name} <input id="${kind}-${name}" type="number" min="0" step="any" inputmode="decimal" size="6"></label>`;
  return html`<h2>Change a role</h2>
    <div class="role-form" id="role-form">
      <label>Role <input id="role-name" list="role-names" required placeholder="role" autocomplete="off"></label>
      <datalist id="role-names">${names.map((n) => html`<option value="${n}">`)}</datalist>
      <fieldset><legend>Weight</legend>
        <label>weight <input id="role-weight" type="number" min="0" step="any" inputmode="decimal" size="6"></label>
        <button type="button" data-action="set-weight">Set weight</button></fieldset>
      <fieldset><legend>Quota</legend>
        <div>Guarantees ${QUOTA_NAMES.map((n) => field('guarantee', n))}</div>
        <div>Limits ${QUOTA_NAMES.map((n) => field('limit', n))}</div>
        <button type="button" data-action="set-quota">Set quota</button>
        <span class="muted">Empty fields are left out; no guarantee and no limit removes the quota.</span></fieldset>
    </div>`;
}

export function view(store) {
  const roleList = store.roles?.roles ?? [];
  return html`<h1>Roles</h1>${roleList.length ? table({
    id: 'roles',
    placeholder: 'Filter roles',
    rows: roleList,
    columns: [
      { key: 'name', label: 'Role', value: (r) => r.name },
      { key: 'weight', label: 'Weight', value: (r) => r.weight ?? 1, cell: (r) => html`<span data-weight="${r.name}">${r.weight ?? 1}</span>` },
      { key: 'frameworks', label: 'Frameworks', value: (r) => (r.frameworks ?? []).length },
      { key: 'allocated', label: 'Allocated', value: (r) => resourceText(r.allocated ?? r.resources ?? []), optional: true },
      { key: 'guarantee', label: 'Quota guarantee', value: (r) => scalarsText(quotaOf(store, r.name)?.guarantees) },
      { key: 'limit', label: 'Quota limit', value: (r) => scalarsText(quotaOf(store, r.name)?.limits) },
    ],
  }) : html`<p class="muted">No roles in use.</p>`}${form(store)}`;
}

function value(id) {
  return document.getElementById(id)?.value.trim() ?? '';
}

function roleName() {
  const role = value('role-name');
  if (!role) throw new Error('Name the role first.');
  return role;
}

function number(id, what) {
  const text = value(id);
  if (text === '') return null;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${what} must be a number of 0 or more, not "${text}".`);
  return n;
}

function scalarsFrom(kind) {
  const out = {};
  for (const name of QUOTA_NAMES) {
    const n = number(`${kind}-${name}`, `The ${kind} of ${name}`);
    if (n != null) out[name] = { value: n };
  }
  return out;
}

/** The role actions, in detail.js's form: dataset -> [question, call]. They read the form. */
export const ACTIONS = {
  'set-weight': () => {
    const role = roleName();
    const weight = number('role-weight', 'The weight');
    if (weight == null || weight <= 0) throw new Error('The weight must be a number above 0.');
    return [`Set the weight of role ${role} to ${weight}?`,
      () => call('UPDATE_WEIGHTS', { update_weights: { weight_infos: [{ role, weight }] } })];
  },
  'set-quota': () => {
    const role = roleName();
    const guarantees = scalarsFrom('guarantee');
    const limits = scalarsFrom('limit');
    const text = `guarantees ${scalarsText(guarantees)}, limits ${scalarsText(limits)}`;
    return [`Set the quota of role ${role}: ${text}?`,
      () => call('UPDATE_QUOTA', { update_quota: { force: false, quota_configs: [{ role, guarantees, limits }] } })];
  },
};
