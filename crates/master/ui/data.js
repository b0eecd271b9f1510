// The UI's data: what this master is (/ui/whoami) and the leader's state, read through
// /ui/leader/ so a page served by a follower reads the leader. The state comes from the
// operator API's SUBSCRIBE stream (SUBSCRIBED, then every change); while no stream is up it
// is polled with GET_STATE. Metrics and the rest are polled. The store tells its listeners
// of every change; a lost leader is retried and a new one announced. Every master, the
// replicated log and the registry's recovery come from this master's /master/cluster.

import { applyEvent, readRecords } from './stream.js';

const API = '/ui/leader/api/v1';
const REFRESH_MS = 2000;
// With the stream up, GET_STATE still runs this often: deactivation and drains have no event.
const FULL_REFRESH_MS = 30000;
const RESUBSCRIBE_MS = 1000;
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
    this.quota = null;
    this.cluster = null;
    this.history = [];
    this.error = null;
    this.leaderChanges = [];
    this.loadedAt = null;
    this.streaming = false;
    this.streamError = null;
    this.fullAt = 0;
    this.pending = null;
    this.heartbeatMs = 15000;
  }

  subscribe(listener) { this.listeners.push(listener); }

  notify() { for (const l of this.listeners) l(this); }

  start() {
    this.loop();
    this.follow();
  }

  /**
   * Keeps one SUBSCRIBE stream open, resubscribing (to the new leader) when it ends or
   * stays silent for three heartbeat intervals (a leader cut off by a partition).
   */
  async follow() {
    for (;;) {
      const controller = new AbortController();
      let last = Date.now();
      const watchdog = setInterval(() => {
        if (Date.now() - last > 3 * this.heartbeatMs) controller.abort();
      }, 1000);
      try {
        const response = await fetch(API, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ type: 'SUBSCRIBE' }),
          signal: controller.signal,
        });
        if (!response.ok) throw new Error(`SUBSCRIBE: ${response.status} ${await response.text()}`);
        await readRecords(response.body, (event) => { last = Date.now(); this.event(event); });
        throw new Error('the event stream ended');
      } catch (e) {
        this.streamError = e.message ?? String(e);
      } finally {
        clearInterval(watchdog);
      }
      if (this.streaming) {
        this.streaming = false;
        this.notify();
      }
      await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_MS));
    }
  }

  event(event) {
    if (event.type === 'SUBSCRIBED') {
      this.heartbeatMs = 1000 * (event.subscribed?.heartbeat_interval_seconds ?? 15);
      this.streaming = true;
      this.streamError = null;
      this.fullAt = Date.now();
    }
    const state = applyEvent(this.state, event);
    if (state) this.state = state;
    // Many events at once (a launch of thousands) render once.
    this.pending ??= setTimeout(() => { this.pending = null; this.notify(); }, 200);
  }

  async loop() {
    for (;;) {
      await this.refresh();
      await new Promise((resolve) => { this.wake = resolve; setTimeout(resolve, REFRESH_MS); });
    }
  }

  /** Refresh now (after an action), not at the next tick, with the full state. */
  poke() {
    this.fullAt = 0;
    if (this.wake) this.wake();
  }

  /** GET_STATE unless the stream keeps the state and it was read recently. */
  async fetchState() {
    if (this.streaming && Date.now() - this.fullAt < FULL_REFRESH_MS) return this.state;
    const state = (await call('GET_STATE')).get_state ?? {};
    this.fullAt = Date.now();
    return state;
  }

  async refresh() {
    try {
      const whoami = await json('/ui/whoami');
      if (this.whoami && this.whoami.leader && whoami.leader !== this.whoami.leader) {
        this.leaderChanges.push({ from: this.whoami.leader, to: whoami.leader, at: Date.now() / 1000 });
      }
      this.whoami = whoami;
      if (!whoami.leader) throw new Error('No leader elected: the masters are electing one');
      const [state, master, metrics, maintenance, roles, quota, cluster] = await Promise.all([
        this.fetchState(),
        call('GET_MASTER'),
        json('/ui/leader/metrics/snapshot').catch(() => ({})),
        optional('GET_MAINTENANCE_STATUS', 'get_maintenance_status'),
        optional('GET_ROLES', 'get_roles'),
        optional('GET_QUOTA', 'get_quota'),
        // Every master, as this one sees them (any master answers; not through the leader).
        json('/master/cluster').catch(() => null),
      ]);
      this.state = state;
      this.master = master.get_master ?? {};
      this.metrics = metrics;
      this.maintenance = maintenance;
      this.roles = roles;
      this.quota = quota?.status ?? null;
      this.cluster = cluster;
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
