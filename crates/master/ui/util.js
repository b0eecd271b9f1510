// Small helpers shared by the views: HTML built with escaping, times, resources, task
// states, and a sortable, filterable, paged table whose settings live in the URL.

/** Text that is already HTML and must not be escaped again. */
export class Raw {
  constructor(text) { this.text = text; }
  toString() { return this.text; }
}

export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => (
    { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function part(value) {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return value.map(part).join('');
  return esc(value);
}

/** Tagged template: `html\`<b>${name}</b>\`` escapes `name` unless it is `Raw`. */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => { out += part(value) + strings[i + 1]; });
  return new Raw(out);
}

/** Seconds since the epoch, from a number or a `TimeInfo` ({nanoseconds}). */
export function seconds(time) {
  if (time == null) return null;
  if (typeof time === 'number') return time;
  if (time.nanoseconds != null) return Number(time.nanoseconds) / 1e9;
  return null;
}

export function relative(secs, now = Date.now() / 1000) {
  const d = Math.round(now - secs);
  const ago = d >= 0;
  const a = Math.abs(d);
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.floor(a / 60)} min`
    : a < 86400 ? `${Math.floor(a / 3600)} h` : `${Math.floor(a / 86400)} d`;
  return ago ? `${text} ago` : `in ${text}`;
}

/** A time shown relative, with the absolute time on hover. */
export function when(time) {
  const secs = seconds(time);
  if (secs == null) return html`<span class="muted">—</span>`;
  const iso = new Date(secs * 1000).toISOString();
  return html`<time datetime="${iso}" title="${iso}">${relative(secs)}</time>`;
}

export function duration(secs) {
  if (secs == null) return '—';
  const s = Math.floor(secs);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

/** An id in monospace with a button that copies it. */
export function copyable(id) {
  return html`<span class="id">${id}</span><button class="copy" type="button" data-copy="${id}" title="Copy" aria-label="Copy ${id}">⧉</button>`;
}

/** Scalar totals of a resource list, by name (reserved or not). */
export function scalars(resources = []) {
  const out = {};
  for (const r of resources) {
    if (r.type === 'SCALAR' && r.scalar) out[r.name] = (out[r.name] ?? 0) + r.scalar.value;
  }
  return out;
}

function amount(name, value) {
  if (name === 'mem' || name === 'disk') {
    return value >= 1024 ? `${(value / 1024).toFixed(1)} GB` : `${Math.round(value)} MB`;
  }
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

export function resourceText(resources = []) {
  const s = scalars(resources);
  const names = ['cpus', 'mem', 'disk', 'gpus', ...Object.keys(s).sort()]
    .filter((n, i, all) => s[n] != null && all.indexOf(n) === i);
  const ranges = resources.filter((r) => r.type === 'RANGES' && r.ranges)
    .map((r) => `${r.name} ${r.ranges.range.map((x) => `${x.begin}-${x.end}`).join(',')}`);
  return [...names.map((n) => `${n} ${amount(n, s[n])}`), ...ranges].join(' · ') || '—';
}

export function reservedText(resources = []) {
  const roles = {};
  for (const r of resources) {
    const stack = r.reservations ?? [];
    const role = stack.length ? stack[stack.length - 1].role : (r.role && r.role !== '*' ? r.role : null);
    if (role) (roles[role] ??= []).push(r);
  }
  const parts = Object.entries(roles).map(([role, rs]) => `${role}: ${resourceText(rs)}`);
  return parts.length ? parts.join('; ') : 'none';
}

const STATE_GROUPS = {
  TASK_RUNNING: ['ok', '●'], TASK_FINISHED: ['idle', '■'],
  TASK_STAGING: ['warn', '◌'], TASK_STARTING: ['warn', '◌'], TASK_KILLING: ['warn', '◍'],
  TASK_KILLED: ['idle', '✕'], TASK_FAILED: ['bad', '✕'], TASK_ERROR: ['bad', '✕'],
  TASK_LOST: ['bad', '?'], TASK_DROPPED: ['bad', '✕'], TASK_GONE: ['bad', '✕'],
  TASK_UNREACHABLE: ['warn', '?'], TASK_GONE_BY_OPERATOR: ['bad', '✕'], TASK_UNKNOWN: ['bad', '?'],
};

/** A task state in colour, with a shape and its name so it never relies on colour alone. */
export function stateBadge(state) {
  const [group, shape] = STATE_GROUPS[state] ?? ['idle', '·'];
  return html`<span class="state ${group}" data-state="${state}"><span aria-hidden="true">${shape}</span> ${String(state ?? '').replace(/^TASK_/, '')}</span>`;
}

/** A plain-text flag badge: active / inactive and the like. */
export function flag(good, yes, no) {
  return good ? html`<span class="state ok">● ${yes}</span>` : html`<span class="state bad">✕ ${no}</span>`;
}

/** The view's settings from the hash's query: `#/tasks?q=x&sort=state&page=2`. */
export function params() {
  const query = location.hash.split('?')[1] ?? '';
  return new URLSearchParams(query);
}

export function setParams(update) {
  const [path] = location.hash.split('?');
  const p = params();
  for (const [k, v] of Object.entries(update)) {
    if (v == null || v === '') p.delete(k); else p.set(k, v);
  }
  const query = p.toString();
  history.replaceState(null, '', `${path || '#/'}${query ? `?${query}` : ''}`);
}

export const PAGE_SIZE = 100;

/**
 * A table over `rows`: `columns` are {key, label, value(row) for sort and filter,
 * cell(row) -> html, optional}. The filter matches every column's value; sort, filter and
 * page live in the URL so a view has a permalink. Returns {html, shown, total}.
 */
export function table({ id, columns, rows, placeholder = 'Filter' }) {
  const p = params();
  const q = (p.get('q') ?? '').toLowerCase();
  const sortKey = p.get('sort') ?? columns[0].key;
  const desc = p.get('desc') === '1';
  const column = columns.find((c) => c.key === sortKey) ?? columns[0];
  const text = (row) => columns.map((c) => String(c.value(row) ?? '')).join('\u0000').toLowerCase();
  let shown = q ? rows.filter((r) => text(r).includes(q)) : rows.slice();
  shown.sort((a, b) => compare(column.value(a), column.value(b)) * (desc ? -1 : 1));
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  const page = Math.min(pages, Math.max(1, Number(p.get('page') ?? 1)));
  const slice = shown.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
  const head = columns.map((c) => html`<th tabindex="0" data-sort="${c.key}" class="${c.optional ? 'optional' : ''}" aria-sort="${c.key === column.key ? (desc ? 'descending' : 'ascending') : 'none'}">${c.label}</th>`);
  const body = slice.map((row) => html`<tr>${columns.map((c) => html`<td class="${c.optional ? 'optional' : ''}">${c.cell ? c.cell(row) : c.value(row)}</td>`)}</tr>`);
  const pager = pages > 1 ? html`<div class="pager"><button type="button" data-page="${page - 1}" ${new Raw(page <= 1 ? 'disabled' : '')}>‹ Previous</button><span>Page ${page} of ${pages}</span><button type="button" data-page="${page + 1}" ${new Raw(page >= pages ? 'disabled' : '')}>Next ›</button></div>` : '';
  return html`<div class="table-tools"><input type="search" id="${id}-filter" data-filter placeholder="${placeholder}" value="${p.get('q') ?? ''}" aria-label="${placeholder}"><span class="muted" data-count>${shown.length} of ${rows.length}</span></div>
    <table id="${id}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${pager}`;
}

function compare(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a ?? '').localeCompare(String(b ?? ''), undefined, { numeric: true });
}
