// The operator API's SUBSCRIBE stream: RecordIO framing ("<length>\n<json>") read from a
// fetch body, and each event applied to the GET_STATE document the views read.

const TERMINAL = new Set([
  'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_LOST', 'TASK_ERROR', 'TASK_DROPPED',
  'TASK_GONE', 'TASK_GONE_BY_OPERATOR',
]);

/** Calls onEvent with each JSON record of the body until it ends. */
export async function readRecords(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    const joined = new Uint8Array(buffer.length + value.length);
    joined.set(buffer);
    joined.set(value, buffer.length);
    buffer = joined;
    for (;;) {
      const newline = buffer.indexOf(10);
      if (newline < 0) break;
      const length = Number(decoder.decode(buffer.subarray(0, newline)));
      if (!Number.isInteger(length) || length < 0) throw new Error('bad RecordIO length');
      if (buffer.length < newline + 1 + length) break;
      const record = buffer.subarray(newline + 1, newline + 1 + length);
      buffer = buffer.slice(newline + 1 + length);
      onEvent(JSON.parse(decoder.decode(record)));
    }
  }
}

const same = (a, b) => a?.task_id?.value === b?.task_id?.value
  && a?.framework_id?.value === b?.framework_id?.value;

function upsert(list, item, key) {
  const i = list.findIndex((x) => key(x) === key(item));
  if (i >= 0) list[i] = item; else list.push(item);
}

function taskUpdated(tasks, { framework_id: frameworkId, status, state }) {
  const wanted = { task_id: status.task_id, framework_id: frameworkId };
  for (const key of ['pending_tasks', 'tasks', 'unreachable_tasks']) {
    const list = tasks[key] ?? [];
    const i = list.findIndex((t) => same(t, wanted));
    if (i < 0) continue;
    const task = list[i];
    task.state = state;
    task.statuses = [...(task.statuses ?? []), status];
    if (TERMINAL.has(state)) {
      list.splice(i, 1);
      (tasks.completed_tasks ??= []).push(task);
    } else if (state === 'TASK_UNREACHABLE' && key !== 'unreachable_tasks') {
      list.splice(i, 1);
      (tasks.unreachable_tasks ??= []).push(task);
    } else if (key !== 'tasks' && state !== 'TASK_UNREACHABLE') {
      list.splice(i, 1);
      (tasks.tasks ??= []).push(task);
    }
    return;
  }
}

/** The state after `event`; SUBSCRIBED replaces it. Returns null when there is none yet. */
export function applyEvent(state, event) {
  if (event.type === 'SUBSCRIBED') return event.subscribed?.get_state ?? {};
  if (!state) return null;
  const tasks = (state.get_tasks ??= {});
  const agents = ((state.get_agents ??= {}).agents ??= []);
  const frameworks = (state.get_frameworks ??= {});
  const agentId = (a) => a.agent_info?.id?.value;
  const frameworkId = (f) => f.framework_info?.id?.value;
  switch (event.type) {
    case 'TASK_ADDED': {
      const task = event.task_added.task;
      const list = (tasks.tasks ??= []);
      const i = list.findIndex((t) => same(t, task));
      if (i >= 0) list[i] = task; else list.push(task);
      break;
    }
    case 'TASK_UPDATED':
      taskUpdated(tasks, event.task_updated);
      break;
    case 'AGENT_ADDED':
      upsert(agents, event.agent_added.agent, agentId);
      break;
    case 'AGENT_REMOVED': {
      const id = event.agent_removed.agent_id?.value;
      state.get_agents.agents = agents.filter((a) => agentId(a) !== id);
      break;
    }
    case 'FRAMEWORK_ADDED':
      upsert((frameworks.frameworks ??= []), event.framework_added.framework, frameworkId);
      break;
    case 'FRAMEWORK_UPDATED':
      upsert((frameworks.frameworks ??= []), event.framework_updated.framework, frameworkId);
      break;
    case 'FRAMEWORK_REMOVED': {
      const info = event.framework_removed.framework_info;
      const id = info?.id?.value;
      frameworks.frameworks = (frameworks.frameworks ?? []).filter((f) => frameworkId(f) !== id);
      upsert((frameworks.completed_frameworks ??= []), { framework_info: info, active: false, connected: false }, frameworkId);
      break;
    }
    default:
      break;
  }
  return state;
}
