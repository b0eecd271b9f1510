// The UI's data: what this master is (/ui/whoami) and the leader's state, read through
// /ui/leader/ so a page served by a follower reads the leader. The store refreshes itself
// and tells its listeners; a lost leader is retried and a new one announced.

const API = '/ui/leader/api/v1';
const REFRESH_MS = 2000;
const HISTORY = 150; // samples kept for the resource chart (5 minutes at 2 s)

export async function call(type, fields = {}) {
  const response = await fetch(API, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ type, ...fields }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${type}: ${response.status} ${text || response.statusText}`);
  return text ? JSON.parse(text) : {};
}

async function json(path) {
  const response = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Calls that only some masters answer: a failure leaves the value unset. */
async function optional(type, key) {
  try {
    return (await call(type))[key];
  } catch {
    return undefined;
  }
}

export class Store {
  constructor() {
    this.listeners = [];
    this.whoami = null;
    this.state = null;
    this.master = null;
    this.metrics = {};
    this.maintenance = null;
    this.roles = null;
    this.history = [];
    this.error = null;
    this.leaderChanges = [];
    this.loadedAt = null;
  }

  subscribe(listener) { this.listeners.push(listener); }

  notify() { for (const l of this.listeners) l(this); }

  start() { this.loop(); }

  async loop() {
    for (;;) {
      await this.refresh();
      await new Promise((resolve) => { this.wake = resolve; setTimeout(resolve, REFRESH_MS); });
    }
  }

  /** Refresh now (after an action), not at the next tick. */
  poke() { if (this.wake) this.wake(); }

  async refresh() {
    try {
      const whoami = await json('/ui/whoami');
      if (this.whoami && this.whoami.leader && whoami.leader !== this.whoami.leader) {
        this.leaderChanges.push({ from: this.whoami.leader, to: whoami.leader, at: Date.now() / 1000 });
      }
      this.whoami = whoami;
      if (!whoami.leader) throw new Error('No leader elected: the masters are electing one');
      const [state, master, metrics, maintenance, roles] = await Promise.all([
        call('GET_STATE'),
        call('GET_MASTER'),
        json('/ui/leader/metrics/snapshot').catch(() => ({})),
        optional('GET_MAINTENANCE_STATUS', 'get_maintenance_status'),
        optional('GET_ROLES', 'get_roles'),
      ]);
      this.state = state.get_state ?? {};
      this.master = master.get_master ?? {};
      this.metrics = metrics;
      this.maintenance = maintenance;
      this.roles = roles;
      this.sample();
      this.error = null;
      this.loadedAt = Date.now() / 1000;
    } catch (e) {
      this.error = e.message ?? String(e);
    }
    this.notify();
  }

  sample() {
    const m = this.metrics;
    this.history.push({
      at: Date.now() / 1000,
      cpus: [m['master/cpus_used'] ?? 0, m['master/cpus_total'] ?? 0],
      mem: [m['master/mem_used'] ?? 0, m['master/mem_total'] ?? 0],
    });
    if (this.history.length > HISTORY) this.history.shift();
  }

  // ------------------------------------------------------------------ derived views

  agents() { return this.state?.get_agents?.agents ?? []; }

  recoveredAgents() { return this.state?.get_agents?.recovered_agents ?? []; }

  frameworks() { return this.state?.get_frameworks?.frameworks ?? []; }

  completedFrameworks() { return this.state?.get_frameworks?.completed_frameworks ?? []; }

  /** Every task the master knows, with where it came from. */
  tasks() {
    const t = this.state?.get_tasks ?? {};
    return [
      ...(t.pending_tasks ?? []), ...(t.tasks ?? []), ...(t.unreachable_tasks ?? []),
      ...(t.completed_tasks ?? []), ...(t.orphan_tasks ?? []),
    ];
  }

  agent(id) { return this.agents().find((a) => a.agent_info?.id?.value === id); }

  framework(id) {
    return [...this.frameworks(), ...this.completedFrameworks()]
      .find((f) => f.framework_info?.id?.value === id);
  }

  task(frameworkId, taskId) {
    return this.tasks().find((t) => t.task_id?.value === taskId && t.framework_id?.value === frameworkId);
  }

  hostname(agentId) { return this.agent(agentId)?.agent_info?.hostname ?? agentId; }

  frameworkName(id) { return this.framework(id)?.framework_info?.name ?? id; }
}
