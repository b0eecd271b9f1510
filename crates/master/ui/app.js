// The UI's entry point: the hash router (`#/tasks?q=...` is a permalink to a view), the
// banner that says whether this master leads, and the page's event handling. Views are
// re-rendered whenever the store refreshes, keeping the focus and the filter being typed.

import { Store } from './data.js';
import { html, params, setParams, esc } from './util.js';
import * as views from './views.js';
import * as detail from './detail.js';
import * as sandbox from './sandbox.js';
import * as roles from './roles.js';

const store = new Store();
const main = document.getElementById('main');
let notice = null;

const ROUTES = [
  [/^$/, 'overview', () => views.overview(store)],
  [/^agents$/, 'agents', () => views.agents(store)],
  [/^agents\/(.+)$/, 'agents', (id) => detail.agent(store, decodeURIComponent(id))],
  [/^frameworks$/, 'frameworks', () => views.frameworks(store)],
  [/^frameworks\/(.+)$/, 'frameworks', (id) => detail.framework(store, decodeURIComponent(id))],
  [/^tasks$/, 'tasks', () => views.tasks(store)],
  [/^tasks\/([^/]+)\/(.+)$/, 'tasks', (f, t) => detail.task(store, decodeURIComponent(f), decodeURIComponent(t), params())],
  [/^roles$/, 'roles', () => roles.view(store)],
  [/^maintenance$/, 'maintenance', () => views.maintenance(store)],
];

function route() {
  const path = location.hash.replace(/^#\/?/, '').split('?')[0];
  for (const [pattern, nav, view] of ROUTES) {
    const m = path.match(pattern);
    if (m) return { nav, render: () => view(...m.slice(1)) };
  }
  return { nav: null, render: () => html`<h1>Not found</h1><p>No view <span class="id">${path}</span>. <a href="#/">Overview</a></p>` };
}

function banner() {
  const el = document.getElementById('banner');
  const who = store.whoami;
  let text = '';
  let bad = false;
  if (store.error) {
    text = `Lost contact with the leader: ${store.error}. Retrying…`;
    bad = true;
  } else if (who && !who.leading) {
    text = html`This master (${who.self}) is a follower. The leader is <a id="leader-link" href="http://${who.leader}/">${who.leader}</a>; the data shown is the leader's.`.text;
  }
  const change = store.leaderChanges[store.leaderChanges.length - 1];
  if (change && Date.now() / 1000 - change.at < 60) {
    text += `${text ? ' ' : ''}The leader changed from ${esc(change.from)} to ${esc(change.to)} ${Math.round(Date.now() / 1000 - change.at)} s ago.`;
  }
  el.innerHTML = text;
  el.hidden = !text;
  el.classList.toggle('bad', bad);
  const connection = document.getElementById('connection');
  connection.textContent = store.error ? 'reconnecting…'
    : who ? `${who.leading ? 'leader' : 'follower'} ${who.self} · ${store.streaming ? 'live' : 'polling'}` : '';
  connection.title = store.streaming ? 'Following the leader\'s event stream (SUBSCRIBE)'
    : `Polling the leader every 2 s${store.streamError ? ` (event stream: ${store.streamError})` : ''}`;
}

function render() {
  banner();
  if (!store.state && !store.error) return;
  const { nav, render: view } = route();
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('current', a.dataset.view === nav);
    if (a.dataset.view === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const focused = document.activeElement;
  const focusId = focused && focused.id && main.contains(focused) ? focused.id : null;
  const caret = focusId && focused.selectionStart != null ? [focused.selectionStart, focused.selectionEnd] : null;
  const note = notice ? html`<p class="${notice.ok ? 'muted' : 'error'}" role="alert">${notice.text}</p>`.text : '';
  // Values typed into a form (the role form) survive the re-render; filters live in the URL.
  const typed = [...main.querySelectorAll('input[id]:not([data-filter])')].map((i) => [i.id, i.value]);
  main.innerHTML = note + (store.state ? view().text : '');
  for (const [id, value] of typed) {
    const again = document.getElementById(id);
    if (again) again.value = value;
  }
  if (focusId) {
    const again = document.getElementById(focusId);
    if (again) {
      again.focus();
      if (caret && again.setSelectionRange) again.setSelectionRange(...caret);
    }
  }
}

let filterTimer = null;
main.addEventListener('input', (e) => {
  if (!e.target.matches('[data-filter]')) return;
  clearTimeout(filterTimer);
  const value = e.target.value;
  filterTimer = setTimeout(() => { setParams({ q: value, page: null }); render(); }, 120);
});

function sortBy(key) {
  const p = params();
  const desc = p.get('sort') === key && p.get('desc') !== '1';
  setParams({ sort: key, desc: desc ? '1' : null });
  render();
}

main.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && e.target.matches('th[data-sort]')) sortBy(e.target.dataset.sort);
});

main.addEventListener('click', async (e) => {
  const th = e.target.closest('th[data-sort]');
  if (th) { sortBy(th.dataset.sort); return; }
  const pager = e.target.closest('button[data-page]');
  if (pager) { setParams({ page: pager.dataset.page }); render(); return; }
  const copy = e.target.closest('button[data-copy]');
  if (copy) { navigator.clipboard?.writeText(copy.dataset.copy).catch(() => {}); return; }
  const action = e.target.closest('button[data-action]');
  if (action) {
    const result = await detail.act(action);
    if (result) {
      notice = result;
      render();
      store.poke();
    }
  }
});

window.addEventListener('hashchange', () => { notice = null; sandbox.stop(); render(); main.focus(); });
store.subscribe(render);
store.start();
