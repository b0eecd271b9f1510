// A task's sandbox on its page: the file shown (stdout or stderr) is followed as the task
// writes it, through the master's /files/read (`/ui/leader/files/...`), by offset. The text
// read so far is kept here, so the page's re-renders do not lose it.

import { html } from './util.js';

const FOLLOW_MS = 1000;
const MAX_KEPT = 1 << 20; // characters kept per file (the tail)

const logs = new Map(); // path -> {offset, text, error}
let followed = null;

/** The sandbox directory of a task, as the master passes it to its agent. */
export function sandboxOf(task) {
  const agent = task.agent_id?.value;
  const framework = task.framework_id?.value;
  // The command executor's id is the task's.
  const executor = task.executor_id?.value ?? task.task_id?.value;
  return `/slaves/${agent}/frameworks/${framework}/executors/${executor}/runs/latest`;
}

async function readMore(path) {
  const log = logs.get(path) ?? { offset: 0, text: '', error: null };
  logs.set(path, log);
  const url = `/ui/leader/files/read?path=${encodeURIComponent(path)}&offset=${log.offset}`;
  try {
    const response = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    const answer = await response.json();
    if (answer.data) {
      log.text = (log.text + answer.data).slice(-MAX_KEPT);
      log.offset = answer.offset + answer.data.length;
    }
    log.error = null;
  } catch (e) {
    log.error = e.message ?? String(e);
  }
  const pre = document.getElementById('log');
  if (pre && pre.dataset.path === path) {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = log.text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
    document.getElementById('log-error').textContent = log.error ?? '';
  }
}

/** Follows `path` (the one on screen) until another is followed or none. */
export function follow(path) {
  if (followed === path) return;
  followed = path;
  const tick = async () => {
    if (followed !== path) return;
    await readMore(path);
    setTimeout(tick, FOLLOW_MS);
  };
  tick();
}

export function stop() { followed = null; }

/** The sandbox section of a task page: which file, a download link and its text. */
export function section(task, file) {
  const dir = sandboxOf(task);
  const path = `${dir}/${file}`;
  const log = logs.get(path);
  const tab = (name) => html`<a href="#/tasks/${task.framework_id?.value}/${task.task_id?.value}?file=${name}" class="${name === file ? 'current' : ''}" aria-current="${name === file ? 'true' : 'false'}">${name}</a>`;
  return html`<h2>Sandbox</h2>
    <p class="tabs">${tab('stdout')} · ${tab('stderr')} · <a href="/ui/leader/files/download?path=${encodeURIComponent(path)}">download</a></p>
    <pre id="log" class="log" data-path="${path}" tabindex="0" aria-label="${file} of the task">${log?.text ?? ''}</pre>
    <p id="log-error" class="error">${log?.error ?? ''}</p>`;
}
