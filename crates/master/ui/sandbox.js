// A task's sandbox on its page: the file shown (stdout, stderr or any other file of the
// sandbox) is followed as the task writes it, through the master's /files/read
// (`/ui/leader/files/...`), by offset; `?dir=<sub dir>` lists a directory of the sandbox
// through /files/browse, with links into subdirectories, to each file and to its download.
// The text read so far and the listings are kept here, so the page's re-renders keep them.

import { html, when } from './util.js';

const FOLLOW_MS = 1000;
const MAX_KEPT = 1 << 20; // characters kept per file (the tail)

const logs = new Map(); // path -> {offset, text, error}
const listings = new Map(); // path -> {entries, error}
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

export function stop() { followed = null; listings.clear(); }

/** A path inside the sandbox as the page names it: no empty, `.` or `..` parts. */
export function relativePath(text) {
  return String(text ?? '').split('/').filter((p) => p && p !== '.' && p !== '..').join('/');
}

function under(dir, rel) {
  return rel ? `${dir}/${rel}` : dir;
}

/** Lists `path` once per visit of the directory (stop() forgets the listings). */
async function list(path) {
  if (listings.has(path)) return;
  listings.set(path, { entries: null, error: null });
  const listing = listings.get(path);
  try {
    const response = await fetch(`/ui/leader/files/browse?path=${encodeURIComponent(path)}`, { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    listing.entries = await response.json();
  } catch (e) {
    listing.error = e.message ?? String(e);
  }
  const el = document.getElementById('listing');
  if (el && el.dataset.path === path) el.innerHTML = listingHtml(el.dataset.task, el.dataset.root, el.dataset.dir, listing).text;
}

function size(bytes) {
  if (bytes == null) return '';
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

function listingHtml(taskPath, root, rel, listing) {
  if (!listing || (!listing.entries && !listing.error)) return html`<p class="muted">Listing…</p>`;
  if (listing.error) return html`<p class="error">${listing.error}</p>`;
  const rows = listing.entries.map((e) => {
    const name = String(e.path ?? '').split('/').pop();
    const child = relativePath(`${rel}/${name}`);
    const isDir = String(e.mode ?? '').startsWith('d');
    const link = isDir ? html`<a href="#/tasks/${taskPath}?dir=${encodeURIComponent(child)}" data-entry="${name}">${name}/</a>`
      : html`<a href="#/tasks/${taskPath}?file=${encodeURIComponent(child)}" data-entry="${name}">${name}</a>`;
    return { name, isDir, link, e, child };
  }).sort((a, b) => (b.isDir - a.isDir) || a.name.localeCompare(b.name));
  const up = rel ? html`<tr><td><a href="#/tasks/${taskPath}?dir=${encodeURIComponent(rel.split('/').slice(0, -1).join('/'))}">../</a></td><td></td><td class="optional"></td><td class="optional"></td><td></td></tr>` : '';
  return html`<table class="files" id="files"><thead><tr><th>Name</th><th>Size</th><th class="optional">Modified</th><th class="optional">Mode</th><th></th></tr></thead>
    <tbody>${up}${rows.map((r) => html`<tr><td>${r.link}</td><td class="size">${r.isDir ? '' : size(r.e.size)}</td><td class="optional">${when(r.e.mtime)}</td><td class="optional id">${r.e.mode ?? ''}</td>
      <td>${r.isDir ? '' : html`<a href="/ui/leader/files/download?path=${encodeURIComponent(under(root, r.child))}">download</a>`}</td></tr>`)}</tbody></table>
    ${rows.length ? '' : html`<p class="muted">This directory is empty.</p>`}`;
}

/**
 * The sandbox section of a task page: tabs for stdout, stderr and the file list; then the
 * file followed (`file`, a path inside the sandbox) or, when `dir` is set, that directory.
 */
export function section(task, file, dir) {
  const root = sandboxOf(task);
  const taskPath = `${task.framework_id?.value}/${task.task_id?.value}`;
  const tab = (name, current, href) => html`<a href="#/tasks/${taskPath}${href}" class="${current ? 'current' : ''}" aria-current="${current ? 'true' : 'false'}">${name}</a>`;
  const browsing = dir != null;
  const tabs = html`<p class="tabs">${tab('stdout', !browsing && file === 'stdout', '?file=stdout')} · ${tab('stderr', !browsing && file === 'stderr', '?file=stderr')} · ${tab('files', browsing, '?dir=')}${!browsing && file !== 'stdout' && file !== 'stderr' ? html` · <span class="current" id="open-file">${file}</span>` : ''}</p>`;
  if (browsing) {
    const path = under(root, dir);
    list(path);
    return html`<h2>Sandbox</h2>${tabs}
      <p class="muted">/${dir}</p>
      <div id="listing" data-path="${path}" data-task="${taskPath}" data-root="${root}" data-dir="${dir}">${listingHtml(taskPath, root, dir, listings.get(path))}</div>`;
  }
  const path = under(root, file);
  follow(path);
  const log = logs.get(path);
  return html`<h2>Sandbox</h2>${tabs}
    <p><a href="/ui/leader/files/download?path=${encodeURIComponent(path)}">download ${file}</a></p>
    <pre id="log" class="log" data-path="${path}" tabindex="0" aria-label="${file} of the task">${log?.text ?? ''}</pre>
    <p id="log-error" class="error">${log?.error ?? ''}</p>`;
}
