// The overview's HA section: every master (leading or standing by, version, reachable), the
// replicated log per replica (status, positions, lag behind the furthest replica) and how
// long the current leader took to recover the registry, from this master's /master/cluster.

import { html, when, flag } from './util.js';

function masterState(m) {
  if (!m.reachable) return html`<span class="state bad" data-master-state="unreachable">✕ unreachable</span>`;
  if (m.leading) return html`<span class="state ok" data-master-state="leading">★ leading</span>`;
  return html`<span class="state idle" data-master-state="standing-by">● standing by</span>`;
}

function replicaStatus(status) {
  const ok = status === 'VOTING';
  const shape = ok ? '●' : status === 'UNKNOWN' ? '?' : '◌';
  return html`<span class="state ${ok ? 'ok' : 'warn'}">${shape} ${String(status ?? '').toLowerCase()}</span>`;
}

function mastersTable(masters) {
  return html`<table id="masters"><thead><tr><th>Master</th><th>State</th><th>Version</th><th>Reachable</th></tr></thead>
    <tbody>${masters.map((m) => html`<tr data-master="${m.address}"><td><a class="id" href="http://${m.address}/">${m.address}</a>${m.this ? html` <span class="muted">(this one)</span>` : ''}</td>
      <td>${masterState(m)}</td>
      <td>${m.version ?? '—'}${m.trireme_version ? html` <span class="muted">Trireme ${m.trireme_version}</span>` : ''}</td>
      <td>${m.reachable ? flag(true, 'yes') : html`<span class="state bad" title="${m.error ?? ''}">✕ no</span>`}</td></tr>`)}</tbody></table>`;
}

function replicasTable(replicas) {
  return html`<table id="replicas"><thead><tr><th>Replica</th><th>Status</th><th class="optional">Master</th><th>Position</th><th>Lag</th><th class="optional">Writer</th></tr></thead>
    <tbody>${replicas.map((r) => html`<tr data-replica="${r.address}"><td class="id">${r.address}</td><td>${replicaStatus(r.status)}</td>
      <td class="optional id">${r.master ?? '—'}</td>
      <td>${r.end == null ? '—' : html`${r.end} <span class="muted">(from ${r.begin})</span>`}</td>
      <td data-lag>${r.lag == null ? '—' : r.lag}</td><td class="optional">${r.writer ? '✎ writer' : ''}</td></tr>`)}</tbody></table>`;
}

/** The section, or a note that this master could not tell. */
export function section(store) {
  const c = store.cluster;
  if (!c) return html`<h2>Masters</h2><p class="muted">This master did not say which masters there are.</p>`;
  const recovery = c.recovery;
  return html`<h2>Masters</h2>
    ${c.members_error ? html`<p class="error">The masters' group could not be read: ${c.members_error}</p>` : ''}
    ${mastersTable(c.masters ?? [])}
    <div class="cards recovery">
      <div class="card"><div class="label">Registry recovery</div><div class="value" id="recovery">${recovery ? `${recovery.took_ms} ms` : '—'}</div>
      <div class="muted">${recovery ? html`by the leader, ${when(recovery.at)}` : 'the leader has not said'}</div></div>
    </div>
    <h2>Replicated log</h2>
    ${(c.replicas ?? []).length ? replicasTable(c.replicas)
    : html`<p class="muted" id="no-replicas">The masters keep the registry in memory: there is no replicated log.</p>`}`;
}
