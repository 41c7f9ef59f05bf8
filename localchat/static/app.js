// otajob local chat: shows what the app posts the way Slack would, and sends back what
// a person types or clicks. Everything rendered comes from the app and from cloud data,
// so it is treated as hostile: nodes are built with createElement/textContent only, and
// a link gets an href only for http(s) and mailto.

/* ========================================================================
 * Small helpers
 * ===================================================================== */

const $ = (sel) => document.querySelector(sel);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function str(v) {
  if (typeof v === 'string') return v;
  if (v == null) return '';
  return typeof v === 'object' ? '' : String(v);
}
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const arr = (v) => (Array.isArray(v) ? v : []);
const obj = (v) => (isObj(v) ? v : {});

// Lookups in data maps must not reach Object.prototype ("constructor", "__proto__").
function own(map, key) {
  return isObj(map) && Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
}

// Element builder: attributes are set one by one; text goes in as text nodes.
function h(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  addKids(node, kids);
  return node;
}
function addKids(node, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    node.append(kid instanceof Node ? kid : String(kid));
  }
}

let uidCounter = 0;
const uid = (prefix) => `${prefix}-${++uidCounter}`;

const SAFE_LINK = /^(https?:\/\/|mailto:)/i;
const SAFE_IMAGE = /^https?:\/\//i;
function safeUrl(u) {
  const s = str(u);
  return SAFE_LINK.test(s) ? s : null;
}
function safeImage(u) {
  const s = str(u);
  return SAFE_IMAGE.test(s) ? s : null;
}
// Same-origin paths for uploaded files; "//host" and "/\host" would leave the origin.
function safeFileUrl(u) {
  const s = str(u);
  if (/^\/(?![/\\])[^\s\\\u0000-\u001f\u007f]*$/.test(s)) return s;
  return safeUrl(s);
}

function linkNode(url, label) {
  const safe = safeUrl(url);
  if (!safe) return document.createTextNode(label);
  return h('a', { href: safe, target: '_blank', rel: 'noopener noreferrer', title: safe }, label);
}

function imageNode(url, alt, cls) {
  const src = safeImage(url);
  if (!src) return h('span', { class: 'img-blocked' }, `[image: ${str(alt) || 'not shown'}]`);
  return h('img', { class: cls, src, alt: str(alt), title: str(alt) || null, loading: 'lazy', decoding: 'async', referrerpolicy: 'no-referrer' });
}

// Message timestamps ("1764556800.000100") compared as padded strings: no float rounding.
function tsKey(ts) {
  const [a, b = ''] = str(ts).split('.');
  return `${a.padStart(16, '0')}.${b.padEnd(9, '0')}`;
}
function tsDate(ts) {
  const n = parseFloat(str(ts));
  if (!Number.isFinite(n)) return null;
  const d = new Date(n * 1000);
  return Number.isNaN(d.getTime()) ? null : d;
}
function timeNode(ts) {
  const d = tsDate(ts);
  if (!d) return null;
  return h('time', { class: 'msg-time', datetime: d.toISOString(), title: d.toLocaleString() },
    d.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' }));
}

function fmtSize(n) {
  const v = Number(n);
  if (!Number.isFinite(v) || v < 0) return '';
  if (v < 1024) return `${v} B`;
  const units = ['KB', 'MB', 'GB'];
  let x = v / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
  return `${x < 10 ? x.toFixed(1) : Math.round(x)} ${units[i]}`;
}

// A few emoji codes the app uses; anything else stays as its :code:.
const EMOJI = {
  warning: '⚠️', rotating_light: '🚨', white_check_mark: '✅', heavy_check_mark: '✔️',
  hourglass_flowing_sand: '⏳', hourglass: '⌛', eyes: '👀', x: '❌', pause_button: '⏸️',
  no_entry: '⛔', no_entry_sign: '🚫', no_bell: '🔕', bell: '🔔', information_source: 'ℹ️',
  checkered_flag: '🏁', test_tube: '🧪', repeat: '🔁', octagonal_sign: '🛑', boom: '💥',
  large_green_circle: '🟢', large_yellow_circle: '🟡', red_circle: '🔴', large_blue_circle: '🔵',
  grey_question: '❔', question: '❓', exclamation: '❗', calendar: '📆', date: '📅',
  arrows_counterclockwise: '🔄', arrows_clockwise: '🔃', tada: '🎉', rocket: '🚀', fire: '🔥',
  memo: '📝', package: '📦', gear: '⚙️', mag: '🔍', link: '🔗', bulb: '💡', wave: '👋',
  '+1': '👍', thumbsup: '👍', '-1': '👎', robot_face: '🤖', page_facing_up: '📄', zzz: '💤',
  inbox_tray: '📥', outbox_tray: '📤', stopwatch: '⏱️', alarm_clock: '⏰', lock: '🔒',
  bar_chart: '📊', clipboard: '📋', wrench: '🔧', hammer_and_wrench: '🛠️', sparkles: '✨',
  speech_balloon: '💬', satellite: '📡', arrow_right: '➡️', heavy_plus_sign: '➕',
  heavy_minus_sign: '➖', recycle: '♻️', house: '🏠', stop_sign: '🛑', skull: '💀',
};
function emojify(s) {
  return s.indexOf(':') < 0 ? s : s.replace(/:([a-z0-9_+-]{1,40}):/g, (m, name) => own(EMOJI, name) || m);
}

/* ========================================================================
 * State and polling
 * ===================================================================== */

const S = {
  data: null,          // the last applied state, normalised
  version: null,
  view: null,          // {kind: 'channel', id} | {kind: 'home'}
  thread: null,        // {channel, ts}
  unread: new Set(),
  seen: new Set(),     // channel + ts of every message already known
  drafts: new Map(),
  epoch: '',           // changes when names used inside messages change
  stickMain: true,
  stickThread: true,
  sinceFallback: false,
};

function normalize(raw) {
  const o = obj(raw);
  return {
    version: o.version,
    me: obj(o.me),
    bot: obj(o.bot),
    demo: o.demo === true,
    users: obj(o.users),
    groups: obj(o.groups),
    channels: arr(o.channels).filter((c) => isObj(c) && typeof c.id === 'string' && c.id),
    messages: obj(o.messages),
    ephemerals: arr(o.ephemerals).filter(isObj),
    files: arr(o.files).filter(isObj),
    modal: isObj(o.modal) ? o.modal : null,
    home: isObj(o.home) ? o.home : null,
  };
}

const channelById = (id) => (S.data ? S.data.channels.find((c) => c.id === id) : undefined);
const channelMessages = (id) => arr(own(S.data.messages, id)).filter(isObj);
const botName = () => str(S.data && S.data.bot.name) || 'otajob';
function userName(id) {
  const key = str(id);
  const name = own(S.data.users, key);
  return str(name) || key || 'unknown';
}
function isBotMsg(m, data = S.data) {
  return Boolean(m.bot_id) || (str(data.bot.id) !== '' && str(m.user) === str(data.bot.id));
}
const isThreadReply = (m) => m.thread_ts != null && str(m.thread_ts) !== '' && str(m.thread_ts) !== str(m.ts);
const channelLabel = (c) => (c.is_dm ? botName() : `#${str(c.name)}`);

async function pollLoop() {
  for (;;) {
    const known = typeof S.version === 'number' && Number.isFinite(S.version);
    const since = known ? S.version : (S.sinceFallback ? 0 : -1);
    const started = Date.now();
    try {
      const r = await fetch(`/local/api/state?since=${encodeURIComponent(since)}`, { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!r.ok) {
        // A server that refuses a negative version is asked for everything after 0.
        if (!S.data && r.status >= 400 && r.status < 500) S.sinceFallback = true;
        throw new Error(`HTTP ${r.status}`);
      }
      const data = await r.json();
      if (!isObj(data)) throw new Error('not a state object');
      setOnline(true);
      if (!S.data || data.version !== S.version) applyState(data);
      else if (Date.now() - started < 200) await sleep(1000); // nothing new, answered at once: do not spin
    } catch (err) {
      setOnline(false);
      await sleep(1000);
    }
  }
}

function setOnline(online) {
  $('#conn-status').textContent = online ? '' : 'Reconnecting…';
}

function applyState(raw) {
  const data = normalize(raw);
  const first = !S.data;
  const fresh = findNewMessages(data, first);
  S.data = data;
  S.version = data.version;
  // The reader's language, so the browser picks Japanese or Chinese glyph shapes.
  document.documentElement.lang = readerLocale();
  S.epoch = JSON.stringify([data.users, data.groups, data.channels.map((c) => [c.id, c.name, c.is_dm]), data.bot.name]);
  const v = S.view;
  if (!v || (v.kind === 'channel' && !channelById(v.id))) {
    const firstChannel = data.channels[0];
    S.view = firstChannel ? { kind: 'channel', id: firstChannel.id } : null;
    S.stickMain = true;
    loadDraft();
  }
  try {
    render();
  } catch (err) {
    console.error(err);
  }
  for (const [ch, m] of fresh) notify(ch, m);
  $('#state-version').textContent = str(data.version);
}

// Messages not seen before: unread dots now, and the bot's ones as notifications.
function findNewMessages(data, first) {
  const toNotify = [];
  for (const ch of data.channels) {
    for (const m of arr(own(data.messages, ch.id))) {
      if (!isObj(m)) continue;
      const key = `${ch.id}\u0000${str(m.ts)}`;
      if (S.seen.has(key)) continue;
      S.seen.add(key);
      if (first) continue;
      const inChannel = !isThreadReply(m) || m.subtype === 'thread_broadcast';
      if (!inChannel && !ch.is_dm) continue;
      const fromBot = isBotMsg(m, data);
      const mine = !fromBot && str(m.user) === str(data.me.id);
      const viewing = S.view && S.view.kind === 'channel' && S.view.id === ch.id;
      if (!mine && !viewing) S.unread.add(ch.id);
      if (fromBot) toNotify.push([ch, m]);
    }
  }
  return toNotify;
}

async function post(path, body) {
  let r;
  try {
    r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  } catch (err) {
    showError(`Could not reach otajob: ${err && err.message ? err.message : err}`);
    return null;
  }
  let data = null;
  try { data = await r.json(); } catch (err) { data = null; }
  if (!r.ok || (isObj(data) && data.ok === false)) {
    const msg = isObj(data) && data.error ? str(data.error) : `otajob answered ${r.status} ${r.statusText}`.trim();
    showError(msg || 'The request failed.');
    return null;
  }
  return data || { ok: true };
}

let errorTimer = 0;
function showError(msg) {
  $('#error-text').textContent = msg;
  $('#error-banner').hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { $('#error-banner').hidden = true; }, 10000);
}

/* ========================================================================
 * Conversation rendering: sidebar, timeline, thread pane, Home, toasts
 * ===================================================================== */

// Unchanged messages keep their nodes, so a button in flight stays disabled and
// nothing flickers when the state moves on.
class NodeCache {
  constructor() { this.map = new Map(); this.used = new Set(); }
  get(key, sig, build) {
    this.used.add(key);
    const hit = this.map.get(key);
    if (hit && hit.sig === sig) return hit.node;
    const node = build();
    this.map.set(key, { sig, node });
    return node;
  }
  sweep() {
    for (const key of this.map.keys()) if (!this.used.has(key)) this.map.delete(key);
    this.used.clear();
  }
}
const mainCache = new NodeCache();
const threadCache = new NodeCache();

function render() {
  if (!S.data) return;
  $('#demo-banner').hidden = !S.data.demo;
  renderSidebar();
  renderMain();
  renderThread();
  renderModal();
  updateRight();
}

function renderSidebar() {
  const chans = [];
  const dms = [];
  for (const c of S.data.channels) {
    const active = S.view && S.view.kind === 'channel' && S.view.id === c.id;
    const unread = S.unread.has(c.id) && !active;
    const btn = h('button', {
      type: 'button',
      class: `nav-item${active ? ' active' : ''}${unread ? ' unread' : ''}`,
      'data-testid': `channel-${c.id}`,
      'aria-current': active ? 'page' : null,
      onclick: () => selectChannel(c.id),
    });
    if (c.is_dm) {
      btn.append(h('span', { class: 'nav-prefix dm-avatar', 'aria-hidden': 'true' }), h('span', { class: 'nav-name' }, botName()));
      dms.push(h('li', null, btn));
    } else {
      btn.append(h('span', { class: 'nav-prefix' }, c.is_private ? '🔒' : '#'), ' ', h('span', { class: 'nav-name' }, str(c.name)));
      chans.push(h('li', null, btn));
    }
    if (unread) btn.append(h('span', { class: 'unread-dot', 'aria-label': 'unread messages' }));
  }
  $('#channel-list').replaceChildren(...chans);
  $('#dm-list').replaceChildren(...dms);
  const home = $('#home-tab');
  const onHome = S.view && S.view.kind === 'home';
  home.classList.toggle('active', Boolean(onHome));
  if (onHome) home.setAttribute('aria-current', 'page'); else home.removeAttribute('aria-current');
}

function selectChannel(id) {
  if (!channelById(id)) return;
  saveDraft();
  S.view = { kind: 'channel', id };
  S.unread.delete(id);
  if (S.thread && S.thread.channel !== id) S.thread = null;
  S.stickMain = true;
  loadDraft();
  render();
  $('#composer').focus();
}

function selectHome() {
  saveDraft();
  S.view = { kind: 'home' };
  S.thread = null;
  render();
  post('/local/api/home', {});
}

function saveDraft() {
  if (S.view && S.view.kind === 'channel') S.drafts.set(S.view.id, $('#composer').value);
}
function loadDraft() {
  const box = $('#composer');
  box.value = S.view && S.view.kind === 'channel' ? (S.drafts.get(S.view.id) || '') : '';
  autosize(box);
}

function renderMain() {
  const v = S.view;
  const onHome = Boolean(v && v.kind === 'home');
  $('#conv-scroll').hidden = onHome;
  $('#home-view').hidden = !onHome;
  $('#composer-wrap').hidden = onHome || !v;
  const title = $('#conv-title');
  if (onHome) {
    title.replaceChildren(h('span', null, botName()), h('span', { class: 'badge' }, 'APP'), h('span', { class: 'title-tab' }, 'Home'));
    renderHome();
    mainCache.sweep();
    return;
  }
  const ch = v ? channelById(v.id) : null;
  if (!ch) {
    title.textContent = 'No conversations yet';
    $('#conv-list').replaceChildren();
    return;
  }
  if (ch.is_dm) title.replaceChildren(h('span', null, botName()), h('span', { class: 'badge' }, 'APP'));
  else title.replaceChildren(h('span', { class: 'title-hash' }, ch.is_private ? '🔒' : '#'), h('span', null, str(ch.name)));
  $('#composer').placeholder = ch.is_dm
    ? `Message ${botName()} — try /otajob help`
    : `Message #${str(ch.name)} — try /otajob help`;

  const msgs = channelMessages(ch.id);
  const counts = replyCounts(msgs);
  const shown = msgs.filter((m) => !isThreadReply(m) || m.subtype === 'thread_broadcast');
  const files = S.data.files.filter((f) => str(f.channel_id) === ch.id && !f.thread_ts);
  const openThread = S.thread && S.thread.channel === ch.id ? S.thread.ts : null;
  // An ephemeral answer in a thread shows there when that thread is open, else here.
  const ephs = S.data.ephemerals.filter((e) => str(e.channel) === ch.id && (!e.thread_ts || str(e.thread_ts) !== openThread));
  const intro = mainCache.get(`intro:${ch.id}`, S.epoch, () => channelIntro(ch));
  const nodes = [intro, ...timeline(mainCache, ch, shown, files, ephs, { counts, inThread: false })];
  setList($('#conv-scroll'), $('#conv-list'), nodes, S.stickMain);
  S.stickMain = false;
  mainCache.sweep();
}

function channelIntro(ch) {
  const name = ch.is_dm ? botName() : `#${str(ch.name)}`;
  return h('div', { class: 'conv-intro' },
    h('div', { class: 'conv-intro-title' }, ch.is_dm ? name : `This is the very beginning of ${name}`),
    h('div', { class: 'conv-intro-text' }, 'Type /otajob help to see what otajob can do.'));
}

function replyCounts(msgs) {
  const counts = new Map();
  for (const m of msgs) {
    if (!isThreadReply(m)) continue;
    const root = str(m.thread_ts);
    counts.set(root, (counts.get(root) || 0) + 1);
  }
  return counts;
}

function timeline(cache, ch, msgs, files, ephs, opts) {
  const msgTs = new Set(msgs.map((m) => str(m.ts)));
  const attached = new Map();
  const items = [];
  msgs.forEach((m, i) => items.push({ key: tsKey(m.ts), order: i, m }));
  for (const f of files) {
    const ts = str(f.ts);
    if (msgTs.has(ts)) {
      if (!attached.has(ts)) attached.set(ts, []);
      attached.get(ts).push(f);
    } else {
      items.push({ key: tsKey(ts), order: msgs.length + items.length, f });
    }
  }
  items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.order - b.order));
  const out = [];
  for (const it of items) {
    if (it.m) {
      const m = it.m;
      const ts = str(m.ts);
      const fs = attached.get(ts) || [];
      let count = 0;
      if (!opts.inThread) {
        const given = Number(m.reply_count);
        count = Number.isFinite(given) && given > 0 ? Math.floor(given) : (opts.counts.get(ts) || 0);
        if (isThreadReply(m)) count = 0;
      }
      const broadcast = !opts.inThread && isThreadReply(m) && m.subtype === 'thread_broadcast';
      const sig = JSON.stringify([m, fs, count, opts.inThread, S.epoch]);
      out.push(cache.get(`m:${ts}`, sig, () => buildMessage(m, ch, { inThread: opts.inThread, fs, count, broadcast })));
    } else {
      const f = it.f;
      out.push(cache.get(`f:${str(f.id)}:${str(f.ts)}`, JSON.stringify([f, S.epoch]), () => buildFileItem(f)));
    }
  }
  for (const e of ephs) out.push(cache.get(`e:${str(e.id)}`, JSON.stringify([e, S.epoch]), () => buildEphemeral(e)));
  return out;
}

function setList(scroller, list, nodes, stick) {
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const current = list.children;
  const same = current.length === nodes.length && nodes.every((n, i) => current[i] === n);
  if (!same) list.replaceChildren(...nodes);
  if (stick || (atBottom && !same)) scroller.scrollTop = scroller.scrollHeight;
}

function avatar(name, bot) {
  const first = Array.from(str(name).trim())[0] || '?';
  return h('div', { class: `avatar${bot ? ' bot' : ''}`, 'aria-hidden': 'true' }, first.toUpperCase());
}

function msgHead(name, bot, ts) {
  return h('div', { class: 'msg-head' },
    h('span', { class: 'author' }, name),
    bot ? h('span', { class: 'badge' }, 'APP') : null,
    timeNode(ts));
}

function msgContent(m, ctx) {
  const blocks = arr(m.blocks);
  if (blocks.length) return renderBlocks(blocks, ctx);
  return h('div', { class: 'msg-text' }, mrkdwn(m.text));
}

function buildMessage(m, ch, o) {
  const ts = str(m.ts);
  const bot = isBotMsg(m);
  const name = bot ? botName() : userName(m.user);
  const ctx = { where: 'message', channel: ch.id, message_ts: ts, inputs: [] };
  const body = h('div', { class: 'msg-body' });
  if (o.broadcast) {
    body.append(h('button', { type: 'button', class: 'broadcast-label', onclick: () => openThread(ch.id, str(m.thread_ts)) }, 'replied to a thread'));
  }
  body.append(msgHead(name, bot, ts), msgContent(m, ctx));
  for (const f of o.fs) body.append(fileCard(f));
  if (o.count > 0) {
    body.append(h('button', {
      type: 'button', class: 'replies-link', 'data-testid': `replies-${ts}`, onclick: () => openThread(ch.id, ts),
    }, o.count === 1 ? '1 reply' : `${o.count} replies`));
  }
  const node = h('div', { class: 'message', 'data-ts': ts }, avatar(name, bot), body);
  if (!o.inThread) {
    const root = isThreadReply(m) ? str(m.thread_ts) : ts;
    node.append(h('div', { class: 'msg-actions' },
      h('button', { type: 'button', class: 'msg-action', title: 'Reply in thread', 'aria-label': 'Reply in thread', onclick: () => openThread(ch.id, root) }, '💬')));
  }
  return node;
}

function buildEphemeral(e) {
  const id = str(e.id);
  const ctx = { where: 'ephemeral', channel: str(e.channel) || null, ephemeral_id: id, inputs: [] };
  const body = h('div', { class: 'msg-body' },
    h('div', { class: 'eph-label' }, 'Only visible to you'),
    msgHead(botName(), true, id),
    msgContent(e, ctx));
  return h('div', { class: 'message ephemeral', 'data-ephemeral-id': id }, avatar(botName(), true), body);
}

function buildFileItem(f) {
  const body = h('div', { class: 'msg-body' }, msgHead(botName(), true, f.ts), fileCard(f));
  return h('div', { class: 'message file-share', 'data-ts': str(f.ts) }, avatar(botName(), true), body);
}

function fileCard(f) {
  const id = str(f.id);
  const title = str(f.title) || str(f.filename) || id;
  const filename = str(f.filename) || title;
  const href = safeFileUrl(f.url);
  const ext = (filename.match(/\.([A-Za-z0-9]{1,8})$/) || [])[1];
  const meta = [fmtSize(f.size), ext ? ext.toUpperCase() : ''].filter(Boolean).join(' · ');
  const card = h('div', { class: 'file-card', 'data-testid': `file-${id}` },
    h('div', { class: 'file-icon', 'aria-hidden': 'true' }, ext ? ext.slice(0, 4).toUpperCase() : 'FILE'),
    h('div', { class: 'file-info' },
      h('div', { class: 'file-title' }, title),
      h('div', { class: 'file-meta' }, meta)),
    href
      ? h('a', { class: 'file-download', href, download: filename, rel: 'noopener noreferrer' }, 'Download')
      : h('span', { class: 'file-download blocked' }, 'Download unavailable'));
  const comment = str(f.initial_comment);
  if (!comment) return card;
  return h('div', { class: 'file-share-body' }, h('div', { class: 'msg-text' }, mrkdwn(comment)), card);
}

function openThread(channel, ts) {
  if (!ts) return;
  S.thread = { channel, ts };
  S.stickThread = true;
  render();
  $('#thread-composer').focus();
}

function closeThread() {
  S.thread = null;
  render();
}

function renderThread() {
  const pane = $('#thread-pane');
  const t = S.thread;
  const ch = t ? channelById(t.channel) : null;
  const msgs = ch ? channelMessages(ch.id) : [];
  const parent = t ? msgs.find((m) => str(m.ts) === t.ts) : null;
  if (!t || !ch || !parent || !S.view || S.view.kind !== 'channel') {
    pane.hidden = true;
    threadCache.sweep();
    return;
  }
  pane.hidden = false;
  $('#thread-sub').textContent = channelLabel(ch);
  const replies = msgs.filter((m) => isThreadReply(m) && str(m.thread_ts) === t.ts);
  const files = S.data.files.filter((f) => str(f.channel_id) === ch.id && str(f.thread_ts) === t.ts);
  const ephs = S.data.ephemerals.filter((e) => str(e.channel) === ch.id && str(e.thread_ts) === t.ts);
  const opts = { inThread: true, counts: new Map() };
  const [parentNode] = timeline(threadCache, ch, [parent], [], [], opts);
  const n = replies.length;
  const divider = threadCache.get('divider', String(n), () => h('div', { class: 'thread-divider' }, n === 1 ? '1 reply' : `${n} replies`));
  const nodes = [parentNode, divider, ...timeline(threadCache, ch, replies, files, ephs, opts)];
  setList($('#thread-scroll'), $('#thread-list'), nodes, S.stickThread);
  S.stickThread = false;
  threadCache.sweep();
}

function updateRight() {
  $('#right').hidden = $('#thread-pane').hidden && $('#emulator-panel').hidden;
}

let homeSig = null;
function renderHome() {
  const home = S.data.home;
  const sig = JSON.stringify([home, S.epoch]);
  if (sig === homeSig) return;
  homeSig = sig;
  const view = $('#home-view');
  if (!home) {
    view.replaceChildren(h('div', { class: 'home-empty' }, `Opening ${botName()}'s Home…`));
    return;
  }
  const ctx = { where: 'home', view_id: str(home.id) || null, inputs: [] };
  view.replaceChildren(h('div', { class: 'home-inner' }, renderBlocks(home.blocks, ctx)));
}

// Notifications use the fallback text, as Slack's do, with mentions and links made plain.
function notify(ch, m) {
  const box = $('#toasts');
  const text = mrkdwnPlain(m.text);
  const t = h('div', { class: 'toast', 'data-testid': 'notification', role: 'status' },
    h('div', { class: 'toast-title' }, channelLabel(ch)),
    h('div', { class: 'toast-text' }, text || 'New message'));
  t.addEventListener('click', () => {
    t.remove();
    selectChannel(ch.id);
    if (isThreadReply(m)) openThread(ch.id, str(m.thread_ts));
  });
  box.append(t);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => t.remove(), 6000);
}

/* ========================================================================
 * Block Kit renderer
 * ===================================================================== */

function renderBlocks(blocks, ctx) {
  const wrap = h('div', { class: 'blocks' });
  arr(blocks).forEach((b, i) => {
    let node;
    try {
      node = renderBlock(obj(b), ctx, i);
    } catch (err) {
      console.error(err);
      node = unsupported(isObj(b) ? b.type : '');
    }
    if (node) wrap.append(node);
  });
  return wrap;
}

function unsupported(type) {
  return h('div', { class: 'blk unsupported' }, `[unsupported block: ${str(type) || 'unknown'}]`);
}

function renderBlock(b, ctx, i) {
  switch (b.type) {
    case 'header':
      return h('div', { class: 'blk blk-header' }, emojify(plainOf(b.text)));
    case 'divider':
      return h('hr', { class: 'blk blk-divider' });
    case 'section':
      return sectionBlock(b, ctx);
    case 'context':
      return contextBlock(b, ctx);
    case 'actions':
      return h('div', { class: 'blk blk-actions' }, arr(b.elements).filter(isObj).map((el) => renderElement(el, ctx, b)));
    case 'image':
      return h('div', { class: 'blk blk-image' },
        b.title ? h('div', { class: 'image-title' }, textObj(b.title)) : null,
        imageNode(b.image_url, b.alt_text, 'block-img'));
    case 'rich_text':
      return richText(b);
    case 'markdown':
      return h('div', { class: 'blk blk-markdown' }, mrkdwn(b.text));
    case 'input':
      return inputBlock(b, ctx, i);
    default:
      return unsupported(b.type);
  }
}

function plainOf(t) {
  if (typeof t === 'string') return t;
  return str(obj(t).text);
}

function textObj(t) {
  if (isObj(t) && t.type === 'mrkdwn') return mrkdwn(t.text);
  return h('span', { class: 'plain' }, emojify(plainOf(t)));
}

function blockIdOf(block) {
  return block && block.block_id != null ? str(block.block_id) : '';
}

function sectionBlock(b, ctx) {
  const main = h('div', { class: 'section-main' });
  if (b.text) main.append(h('div', { class: 'section-text' }, textObj(b.text)));
  const fields = arr(b.fields);
  if (fields.length) main.append(h('div', { class: 'section-fields' }, fields.map((f) => h('div', { class: 'section-field' }, textObj(f)))));
  const node = h('div', { class: 'blk blk-section' }, main);
  if (isObj(b.accessory)) {
    const acc = b.accessory;
    const inner = acc.type === 'image' ? imageNode(acc.image_url, acc.alt_text, 'accessory-img') : renderElement(acc, ctx, b);
    node.append(h('div', { class: 'section-accessory' }, inner));
  }
  return node;
}

function contextBlock(b) {
  const items = arr(b.elements).filter(isObj).map((el) => {
    if (el.type === 'image') return imageNode(el.image_url, el.alt_text, 'context-img');
    if (el.type === 'mrkdwn' || el.type === 'plain_text') return h('span', { class: 'context-item' }, textObj(el));
    return h('span', { class: 'context-item unsupported' }, `[unsupported element: ${str(el.type)}]`);
  });
  return h('div', { class: 'blk blk-context' }, items);
}

function renderElement(el, ctx, block) {
  switch (el.type) {
    case 'button':
      return buttonEl(el, ctx, block);
    case 'overflow':
      return overflowEl(el, ctx, block);
    case 'static_select':
      return actionSelect(el, ctx, block);
    case 'checkboxes':
    case 'radio_buttons':
      return actionChoices(el, ctx, block);
    case 'image':
      return imageNode(el.image_url, el.alt_text, 'accessory-img');
    default:
      return h('span', { class: 'unsupported-el' }, `[unsupported element: ${str(el.type)}]`);
  }
}

function buttonEl(el, ctx, block) {
  const label = plainOf(el.text);
  const style = el.style === 'primary' ? ' primary' : el.style === 'danger' ? ' danger' : '';
  const btn = h('button', { type: 'button', class: `bk-btn${style}`, 'data-action-id': str(el.action_id) }, label);
  const confirm = isObj(el.confirm) ? el.confirm : null;
  if (el.url != null && str(el.url) !== '') {
    const url = safeUrl(el.url);
    if (!url) {
      btn.disabled = true;
      btn.title = 'Link not opened: only http, https and mailto links are allowed';
      return btn;
    }
    btn.classList.add('url-btn');
    btn.title = url;
    btn.addEventListener('click', async () => {
      if (confirm && !(await confirmDialog(confirm))) return;
      window.open(url, '_blank', 'noopener,noreferrer');
    });
    return btn;
  }
  btn.addEventListener('click', async () => {
    if (btn.disabled) return;
    if (confirm && !(await confirmDialog(confirm))) return;
    await sendClick(btn, ctx, {
      action_id: str(el.action_id), block_id: blockIdOf(block), value: el.value == null ? null : str(el.value), text: label,
    });
  });
  return btn;
}

async function sendClick(node, ctx, action) {
  if (node) node.disabled = true;
  const body = {
    where: ctx.where,
    channel: ctx.channel || null,
    message_ts: ctx.message_ts || null,
    ephemeral_id: ctx.ephemeral_id || null,
    view_id: ctx.view_id || null,
    action_id: action.action_id,
    block_id: action.block_id,
    value: action.value,
    text: action.text,
    state: ctx.where === 'modal' ? collectValues(ctx) : {},
  };
  try {
    await post('/local/api/click', body);
  } finally {
    if (node) setTimeout(() => { node.disabled = false; }, 300);
  }
}

function overflowEl(el, ctx, block) {
  const wrap = h('span', { class: 'bk-overflow' });
  const btn = h('button', {
    type: 'button', class: 'bk-btn overflow-btn', 'data-action-id': str(el.action_id), 'aria-haspopup': 'menu', 'aria-label': 'More actions',
  }, '⋯');
  const menu = h('div', { class: 'overflow-menu', role: 'menu', hidden: true });
  for (const opt of arr(el.options).filter(isObj)) {
    const label = plainOf(opt.text);
    menu.append(h('button', {
      type: 'button', class: 'overflow-item', role: 'menuitem',
      onclick: async (ev) => {
        ev.stopPropagation();
        menu.hidden = true;
        if (isObj(el.confirm) && !(await confirmDialog(el.confirm))) return;
        if (opt.url != null && str(opt.url) !== '') {
          const url = safeUrl(opt.url);
          if (url) window.open(url, '_blank', 'noopener,noreferrer');
          else showError('Link not opened: only http, https and mailto links are allowed.');
          return;
        }
        await sendClick(btn, ctx, { action_id: str(el.action_id), block_id: blockIdOf(block), value: opt.value == null ? null : str(opt.value), text: label });
      },
    }, emojify(label)));
  }
  btn.addEventListener('click', (ev) => {
    ev.stopPropagation();
    const wasHidden = menu.hidden;
    closeMenus();
    menu.hidden = !wasHidden;
  });
  wrap.append(btn, menu);
  return wrap;
}

function closeMenus() {
  for (const m of document.querySelectorAll('.overflow-menu')) m.hidden = true;
}

function actionSelect(el, ctx, block) {
  const built = selectInput(el, null);
  const actionId = str(el.action_id);
  built.node.setAttribute('data-action-id', actionId);
  if (ctx.inputs) ctx.inputs.push({ block_id: blockIdOf(block), action_id: actionId, get: built.get, set: built.set });
  built.node.addEventListener('change', () => {
    const opt = built.get().selected_option;
    if (!opt) return;
    sendClick(built.node, ctx, { action_id: actionId, block_id: blockIdOf(block), value: opt.value == null ? null : str(opt.value), text: plainOf(opt.text) });
  });
  return built.node;
}

function actionChoices(el, ctx, block) {
  const built = el.type === 'checkboxes' ? checkboxesInput(el, null) : radioInput(el, null);
  const actionId = str(el.action_id);
  if (ctx.inputs) ctx.inputs.push({ block_id: blockIdOf(block), action_id: actionId, get: built.get, set: built.set });
  built.node.addEventListener('change', (ev) => {
    const target = ev.target;
    const opt = target && target.bkOption;
    sendClick(null, ctx, { action_id: actionId, block_id: blockIdOf(block), value: opt && opt.value != null ? str(opt.value) : null, text: opt ? plainOf(opt.text) : '' });
  });
  return built.node;
}

/* ----- rich_text ----- */

function richText(b) {
  const root = h('div', { class: 'blk rich-text' });
  for (const el of arr(b.elements).filter(isObj)) root.append(richBlock(el));
  return root;
}

function richBlock(el) {
  switch (el.type) {
    case 'rich_text_section':
      return h('div', { class: 'rt-section' }, richInline(el.elements));
    case 'rich_text_quote':
      return h('blockquote', { class: 'quote' }, richInline(el.elements));
    case 'rich_text_preformatted':
      return h('pre', { class: 'code-block' }, richInline(el.elements, true));
    case 'rich_text_list': {
      const ordered = el.style === 'ordered';
      const list = h(ordered ? 'ol' : 'ul', { class: 'rt-list' });
      const indent = Math.max(0, Math.min(8, Math.floor(Number(el.indent) || 0)));
      list.style.marginLeft = `${indent * 24}px`;
      const offset = Math.floor(Number(el.offset) || 0);
      if (ordered && offset > 0) list.setAttribute('start', String(offset + 1));
      for (const item of arr(el.elements).filter(isObj)) list.append(h('li', null, richInline(item.elements)));
      return list;
    }
    default:
      return h('div', { class: 'unsupported' }, `[unsupported block: ${str(el.type)}]`);
  }
}

function richInline(elements, plainCode) {
  const out = [];
  for (const el of arr(elements).filter(isObj)) {
    let node;
    const style = obj(el.style);
    switch (el.type) {
      case 'text':
        node = document.createTextNode(str(el.text));
        break;
      case 'link':
        node = linkNode(el.url, str(el.text) || str(el.url));
        break;
      case 'user':
        node = h('span', { class: 'mention' }, `@${userName(el.user_id)}`);
        break;
      case 'usergroup': {
        const handle = str(own(S.data.groups, str(el.usergroup_id))) || str(el.usergroup_id);
        node = h('span', { class: 'mention' }, `@${handle.replace(/^@/, '')}`);
        break;
      }
      case 'channel':
        node = channelMention(str(el.channel_id), '');
        break;
      case 'broadcast':
        node = h('span', { class: 'mention' }, `@${str(el.range) || 'here'}`);
        break;
      case 'emoji':
        node = document.createTextNode(emojiChar(el));
        break;
      case 'date': {
        const text = formatSlackDate(Number(el.timestamp), str(el.format)) || str(el.fallback);
        node = h('time', { class: 'slack-date' }, text);
        break;
      }
      case 'color':
        node = document.createTextNode(str(el.value));
        break;
      default:
        node = h('span', { class: 'unsupported' }, `[unsupported element: ${str(el.type)}]`);
    }
    if (style.code && !plainCode) node = h('code', { class: 'inline-code' }, node);
    if (style.strike) node = h('s', null, node);
    if (style.italic) node = h('i', null, node);
    if (style.bold) node = h('b', null, node);
    out.push(node);
  }
  return out;
}

function emojiChar(el) {
  const code = str(el.unicode);
  if (/^[0-9a-f]{1,6}(-[0-9a-f]{1,6}){0,9}$/i.test(code)) {
    const points = code.split('-').map((p) => parseInt(p, 16));
    if (points.every((p) => p > 0x1f && p <= 0x10ffff && (p < 0xd800 || p > 0xdfff))) return String.fromCodePoint(...points);
  }
  const name = str(el.name);
  return own(EMOJI, name) || `:${name}:`;
}

/* ----- input blocks and their elements ----- */

function inputBlock(b, ctx, i) {
  const blockId = b.block_id != null ? str(b.block_id) : `input-${i}`;
  const el = obj(b.element);
  const actionId = el.action_id != null ? str(el.action_id) : `action-${i}`;
  const id = uid('input');
  const labelId = uid('label');
  const wrap = h('div', { class: 'blk blk-input', 'data-block-id': blockId });
  wrap.append(h('label', { class: 'input-label', id: labelId, for: id },
    emojify(plainOf(b.label)),
    b.optional ? h('span', { class: 'optional' }, ' (optional)') : null));
  let built = null;
  switch (el.type) {
    case 'plain_text_input': built = textInput(el, id); break;
    case 'checkboxes': built = checkboxesInput(el, labelId); break;
    case 'radio_buttons': built = radioInput(el, labelId); break;
    case 'static_select': built = selectInput(el, id); break;
    default: break;
  }
  if (built) {
    wrap.append(built.node);
    if (ctx.inputs) ctx.inputs.push({ block_id: blockId, action_id: actionId, get: built.get, set: built.set });
  } else {
    wrap.append(h('div', { class: 'unsupported' }, `[unsupported element: ${str(el.type)}]`));
  }
  if (b.hint) wrap.append(h('div', { class: 'input-hint' }, textObj(b.hint)));
  wrap.append(h('div', { class: 'input-error', role: 'alert' }));
  return wrap;
}

function textInput(el, id) {
  const multiline = el.multiline === true;
  const input = multiline ? h('textarea', { id, class: 'bk-input', rows: 4 }) : h('input', { id, class: 'bk-input', type: 'text' });
  const placeholder = plainOf(el.placeholder);
  if (placeholder) input.placeholder = placeholder;
  const max = Number(el.max_length);
  if (Number.isInteger(max) && max > 0) input.maxLength = max;
  if (el.initial_value != null) input.value = str(el.initial_value);
  return {
    node: input,
    get: () => ({ type: 'plain_text_input', value: input.value === '' ? null : input.value }),
    set: (s) => { if (isObj(s) && s.type === 'plain_text_input') input.value = str(s.value); },
  };
}

function sameOption(a, b) {
  if (!isObj(a) || !isObj(b)) return false;
  if (a.value != null || b.value != null) return str(a.value) === str(b.value);
  return JSON.stringify(a) === JSON.stringify(b);
}

function optionLabel(opt) {
  const o = obj(opt);
  return h('span', { class: 'option-text' }, textObj(o.text),
    o.description ? h('span', { class: 'option-desc' }, textObj(o.description)) : null);
}

function checkboxesInput(el, labelId) {
  const options = arr(el.options).filter(isObj);
  const initial = arr(el.initial_options);
  const group = h('div', { class: 'bk-choices', role: 'group', 'aria-labelledby': labelId });
  const boxes = options.map((opt) => {
    const box = h('input', { type: 'checkbox' });
    box.checked = initial.some((o) => sameOption(o, opt));
    box.bkOption = opt;
    group.append(h('label', { class: 'bk-option' }, box, optionLabel(opt)));
    return box;
  });
  return {
    node: group,
    get: () => ({ type: 'checkboxes', selected_options: options.filter((o, i) => boxes[i].checked) }),
    set: (s) => {
      if (!isObj(s) || s.type !== 'checkboxes') return;
      const chosen = arr(s.selected_options);
      options.forEach((o, i) => { boxes[i].checked = chosen.some((c) => sameOption(c, o)); });
    },
  };
}

function radioInput(el, labelId) {
  const options = arr(el.options).filter(isObj);
  const name = uid('radio');
  const group = h('div', { class: 'bk-choices', role: 'radiogroup', 'aria-labelledby': labelId });
  const radios = options.map((opt) => {
    const radio = h('input', { type: 'radio', name });
    radio.checked = sameOption(el.initial_option, opt);
    radio.bkOption = opt;
    group.append(h('label', { class: 'bk-option' }, radio, optionLabel(opt)));
    return radio;
  });
  return {
    node: group,
    get: () => {
      const i = radios.findIndex((r) => r.checked);
      return { type: 'radio_buttons', selected_option: i >= 0 ? options[i] : null };
    },
    set: (s) => {
      if (!isObj(s) || s.type !== 'radio_buttons') return;
      options.forEach((o, i) => { radios[i].checked = sameOption(s.selected_option, o); });
    },
  };
}

function selectInput(el, id) {
  const flat = [];
  const select = h('select', { id, class: 'bk-select' });
  const placeholder = plainOf(el.placeholder) || 'Select an option';
  select.append(h('option', { value: '' }, placeholder));
  const addOption = (parent, opt) => {
    parent.append(h('option', { value: String(flat.length) }, emojify(plainOf(opt.text))));
    flat.push(opt);
  };
  const groups = arr(el.option_groups).filter(isObj);
  if (groups.length) {
    for (const g of groups) {
      const og = h('optgroup', { label: plainOf(g.label) });
      for (const opt of arr(g.options).filter(isObj)) addOption(og, opt);
      select.append(og);
    }
  } else {
    for (const opt of arr(el.options).filter(isObj)) addOption(select, opt);
  }
  const choose = (opt) => {
    const i = flat.findIndex((o) => sameOption(o, opt));
    select.value = i >= 0 ? String(i) : '';
  };
  if (isObj(el.initial_option)) choose(el.initial_option);
  return {
    node: select,
    get: () => ({ type: 'static_select', selected_option: select.value === '' ? null : (flat[Number(select.value)] || null) }),
    set: (s) => { if (isObj(s) && s.type === 'static_select') choose(s.selected_option); },
  };
}

function collectValues(ctx) {
  const values = Object.create(null);
  for (const inp of ctx.inputs || []) {
    if (!values[inp.block_id]) values[inp.block_id] = Object.create(null);
    values[inp.block_id][inp.action_id] = inp.get();
  }
  return values;
}

/* ========================================================================
 * mrkdwn renderer
 * ===================================================================== */

const decodeEntities = (s) => s.replace(/&(amp|lt|gt);/g, (m, n) => (n === 'amp' ? '&' : n === 'lt' ? '<' : '>'));
const TOKEN_RE = /<([^<>\n]*)>/g;
const MARKS = { '*': 'b', _: 'i', '~': 's' };
const WORD_CHAR = /[\p{L}\p{N}]/u;
const SPACE_CHAR = /\s/u;
const QUOTE_RE = /^(?:&gt;|>) ?/;
const BLOCK_QUOTE_RE = /^(?:&gt;|>){3} ?/;

function mrkdwn(src) {
  const root = h('span', { class: 'mrkdwn' });
  const text = str(src);
  const fence = /```([\s\S]+?)```/g;
  let last = 0;
  let afterBlock = false;
  let m;
  while ((m = fence.exec(text))) {
    renderLines(root, text.slice(last, m.index), afterBlock);
    const code = m[1].replace(/^\n/, '').replace(/\n$/, '');
    root.append(h('pre', { class: 'code-block' }, mrkdwnPlain(code)));
    last = fence.lastIndex;
    afterBlock = true;
  }
  renderLines(root, text.slice(last), afterBlock);
  return root;
}

function renderLines(root, text, afterBlock) {
  const body = afterBlock && text.startsWith('\n') ? text.slice(1) : text;
  if (!body) return;
  const lines = body.split('\n');
  let plain = [];
  const flush = () => {
    plain.forEach((line, i) => {
      if (i) root.append('\n');
      addKids(root, inlineNodes(line));
    });
    plain = [];
  };
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    const multi = BLOCK_QUOTE_RE.exec(line);
    if (multi) {
      flush();
      root.append(quoteNode([line.slice(multi[0].length), ...lines.slice(i + 1)]));
      return;
    }
    if (QUOTE_RE.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && QUOTE_RE.test(lines[i]) && !BLOCK_QUOTE_RE.test(lines[i])) {
        quoted.push(lines[i].replace(QUOTE_RE, ''));
        i += 1;
      }
      i -= 1;
      root.append(quoteNode(quoted));
      continue;
    }
    plain.push(line);
  }
  flush();
}

function quoteNode(lines) {
  const q = h('span', { class: 'quote' });
  lines.forEach((line, i) => {
    if (i) q.append('\n');
    addKids(q, inlineNodes(line));
  });
  return q;
}

// One line as atoms: single characters (entities decoded) and {tok} for <…> tokens, so
// formatting markers and tokens are parsed in one pass without touching URLs.
function lexLine(line) {
  const atoms = [];
  const pushText = (s) => { for (const ch of decodeEntities(s)) atoms.push(ch); };
  TOKEN_RE.lastIndex = 0;
  let last = 0;
  let m;
  while ((m = TOKEN_RE.exec(line))) {
    pushText(line.slice(last, m.index));
    atoms.push({ tok: m[1] });
    last = TOKEN_RE.lastIndex;
  }
  pushText(line.slice(last));
  return atoms;
}

const isSpaceAtom = (a) => typeof a === 'string' && SPACE_CHAR.test(a);
const isWordAtom = (a) => typeof a === 'string' && WORD_CHAR.test(a);

// Slack applies *_~ only at word boundaries: "a*b*c" stays as typed.
// A run of the same marker ("****" in a masked key) is text, not an empty emphasis.
function canOpen(atoms, i) {
  const prev = atoms[i - 1];
  const next = atoms[i + 1];
  if (next === undefined || isSpaceAtom(next) || prev === atoms[i] || next === atoms[i]) return false;
  return prev === undefined || !isWordAtom(prev);
}
function canClose(atoms, j) {
  const prev = atoms[j - 1];
  const next = atoms[j + 1];
  if (prev === undefined || isSpaceAtom(prev) || prev === atoms[j] || next === atoms[j]) return false;
  return next === undefined || !isWordAtom(next);
}

function inlineNodes(line) {
  const atoms = lexLine(line);
  const n = atoms.length;
  // Code spans first: markers inside them are literal.
  const codeEnd = new Map();
  const inCode = new Uint8Array(n);
  for (let i = 0; i < n; i += 1) {
    if (atoms[i] !== '`') continue;
    let j = i + 1;
    while (j < n && atoms[j] !== '`') j += 1;
    if (j >= n) break;
    if (j > i + 1) {
      codeEnd.set(i, j);
      inCode.fill(1, i, j + 1);
      i = j;
    }
  }
  const closers = { '*': [], _: [], '~': [] };
  for (let j = 0; j < n; j += 1) {
    const a = atoms[j];
    if (typeof a === 'string' && Object.prototype.hasOwnProperty.call(closers, a) && !inCode[j] && canClose(atoms, j)) closers[a].push(j);
  }
  return parseRange({ atoms, codeEnd, closers }, 0, n, 0);
}

function firstCloser(list, from, end) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid] < from) lo = mid + 1; else hi = mid;
  }
  return lo < list.length && list[lo] < end ? list[lo] : -1;
}

function parseRange(p, start, end, depth) {
  const { atoms, codeEnd, closers } = p;
  const out = [];
  let buf = '';
  const flush = () => { if (buf) { out.push(emojify(buf)); buf = ''; } };
  for (let i = start; i < end;) {
    const a = atoms[i];
    if (typeof a !== 'string') {
      flush();
      out.push(tokenNode(a.tok));
      i += 1;
      continue;
    }
    const ce = a === '`' ? codeEnd.get(i) : undefined;
    if (ce !== undefined && ce < end) {
      flush();
      out.push(h('code', { class: 'inline-code' }, atomsPlain(atoms, i + 1, ce)));
      i = ce + 1;
      continue;
    }
    const tag = Object.prototype.hasOwnProperty.call(MARKS, a) ? MARKS[a] : null;
    if (tag && depth < 8 && canOpen(atoms, i)) {
      const j = firstCloser(closers[a], i + 2, end);
      if (j >= 0) {
        flush();
        const node = h(tag, null);
        addKids(node, parseRange(p, i + 1, j, depth + 1));
        out.push(node);
        i = j + 1;
        continue;
      }
    }
    buf += a;
    i += 1;
  }
  flush();
  return out;
}

function atomsPlain(atoms, start, end) {
  let s = '';
  for (let i = start; i < end; i += 1) {
    const a = atoms[i];
    s += typeof a === 'string' ? a : parseToken(a.tok).text;
  }
  return s;
}

// Text with tokens resolved and entities decoded, no formatting: code blocks, toasts.
function mrkdwnPlain(src) {
  const s = str(src);
  const re = /<([^<>\n]*)>/g;
  let out = '';
  let last = 0;
  let m;
  while ((m = re.exec(s))) {
    out += decodeEntities(s.slice(last, m.index)) + parseToken(m[1]).text;
    last = re.lastIndex;
  }
  return out + decodeEntities(s.slice(last));
}

function parseToken(inner) {
  const bar = inner.indexOf('|');
  const head = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? '' : decodeEntities(inner.slice(bar + 1));
  if (head.startsWith('@')) {
    const id = head.slice(1);
    const name = str(own(S.data.users, id)) || label.replace(/^@/, '') || id;
    return { kind: 'user', text: `@${name}` };
  }
  if (head.startsWith('#')) {
    const id = head.slice(1);
    const ch = channelById(id);
    const name = ch ? (ch.is_dm ? botName() : str(ch.name)) : (label.replace(/^#/, '') || id);
    return { kind: 'channel', text: `#${name}`, channelId: ch ? id : null };
  }
  if (head.startsWith('!subteam^')) {
    const id = head.slice('!subteam^'.length);
    const handle = str(own(S.data.groups, id)) || label || id;
    return { kind: 'group', text: `@${handle.replace(/^@/, '')}` };
  }
  if (head === '!here' || head === '!channel' || head === '!everyone') return { kind: 'special', text: `@${head.slice(1)}` };
  if (head.startsWith('!date^')) return dateToken(head, label);
  if (head.startsWith('!')) return { kind: 'text', text: label || `<${decodeEntities(inner)}>` };
  // Only scheme:… is a link; anything else between brackets was never a token.
  if (!/^[a-z][a-z0-9+.-]*:/i.test(head)) return { kind: 'text', text: `<${decodeEntities(inner)}>` };
  const url = decodeEntities(head);
  const shown = label || (/^mailto:/i.test(url) ? url.slice(7) : url);
  return { kind: 'link', text: shown, url };
}

function tokenNode(inner) {
  const t = parseToken(inner);
  switch (t.kind) {
    case 'user':
    case 'group':
    case 'special':
      return h('span', { class: 'mention' }, t.text);
    case 'channel':
      return channelMention(t.channelId, t.text);
    case 'date': {
      const node = h('time', { class: 'slack-date', title: t.title || null }, t.text);
      return t.url ? linkNode(t.url, t.text) : node;
    }
    case 'link':
      return linkNode(t.url, t.text);
    default:
      return document.createTextNode(t.text);
  }
}

function channelMention(id, text) {
  const ch = id ? channelById(id) : null;
  const shown = text || (ch ? `#${ch.is_dm ? botName() : str(ch.name)}` : `#${id}`);
  const node = h('span', { class: 'mention channel-mention' }, shown);
  if (ch) {
    node.classList.add('clickable');
    node.setAttribute('role', 'link');
    node.tabIndex = 0;
    node.addEventListener('click', () => selectChannel(ch.id));
    node.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') selectChannel(ch.id); });
  }
  return node;
}

/* ----- <!date^…> ----- */

function dateToken(head, fallback) {
  const parts = head.split('^');
  const unix = parts[1] || '';
  const format = decodeEntities(parts[2] || '');
  const link = parts.length > 3 ? decodeEntities(parts.slice(3).join('^')) : '';
  let text = null;
  let title = null;
  if (/^-?\d{1,12}$/.test(unix) && format) {
    text = formatSlackDate(Number(unix), format);
    if (text != null) {
      try { title = new Date(Number(unix) * 1000).toLocaleString(); } catch (err) { title = null; }
    }
  }
  return { kind: 'date', text: text == null ? fallback : text, title, url: link && safeUrl(link) ? link : null };
}

const dtfCache = new Map();
function dtf(locale, options) {
  const key = `${locale || ''}|${JSON.stringify(options)}`;
  if (!dtfCache.has(key)) dtfCache.set(key, new Intl.DateTimeFormat(locale, options));
  return dtfCache.get(key);
}
const pad2 = (n) => String(n).padStart(2, '0');
function ordinal(n) {
  const r = n % 100;
  if (r >= 11 && r <= 13) return `${n}th`;
  return `${n}${{ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] || 'th'}`;
}
function dayNumber(d) {
  return Math.round(new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() / 86400000);
}

// Returns null when the format has an unknown token, so the caller shows the fallback.
function formatSlackDate(unix, format) {
  if (!Number.isFinite(unix)) return null;
  const d = new Date(unix * 1000);
  if (Number.isNaN(d.getTime())) return null;
  const now = new Date();
  let bad = false;
  let out;
  try {
    out = str(format).replace(/\{([^{}]*)\}/g, (m, tok) => {
      const v = dateWord(d, tok, now);
      if (v == null) bad = true;
      return v == null ? '' : v;
    });
  } catch (err) {
    return null;
  }
  return bad ? null : out;
}

// Slack writes a date token in the reader's Slack language: English as Slack's own
// English client does, any other locale through the browser's Intl for that locale.
function readerLocale() {
  const loc = S.data && typeof S.data.me.locale === 'string' ? S.data.me.locale : 'en-US';
  return /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(loc) ? loc : 'en-US';
}

function dateWord(d, tok, now) {
  const loc = readerLocale();
  if (!loc.toLowerCase().startsWith('en')) return localDateWord(d, tok, now, loc);
  const y = d.getFullYear();
  const day = d.getDate();
  const monthLong = () => dtf('en-US', { month: 'long' }).format(d);
  switch (tok) {
    case 'date_num':
      return `${y}-${pad2(d.getMonth() + 1)}-${pad2(day)}`;
    case 'date':
      return `${monthLong()} ${ordinal(day)}, ${y}`;
    case 'date_short':
      return `${dtf('en-US', { month: 'short' }).format(d)} ${day}, ${y}`;
    case 'date_long':
      return `${dtf('en-US', { weekday: 'long' }).format(d)}, ${monthLong()} ${ordinal(day)}, ${y}`;
    case 'date_pretty':
    case 'date_short_pretty':
    case 'date_long_pretty': {
      const rel = dayNumber(d) - dayNumber(now);
      if (rel === 0) return 'Today';
      if (rel === -1) return 'Yesterday';
      if (rel === 1) return 'Tomorrow';
      return dateWord(d, tok.replace('_pretty', ''), now);
    }
    case 'time':
      return dtf(undefined, { hour: 'numeric', minute: '2-digit' }).format(d);
    case 'time_secs':
      return dtf(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' }).format(d);
    case 'ago':
      return ago(d, now);
    default:
      return null;
  }
}

function localDateWord(d, tok, now, loc) {
  const rel = dayNumber(d) - dayNumber(now);
  switch (tok) {
    case 'date_num':
      return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
    case 'date':
      return dtf(loc, { year: 'numeric', month: 'long', day: 'numeric' }).format(d);
    case 'date_short':
      return dtf(loc, { year: 'numeric', month: 'short', day: 'numeric' }).format(d);
    case 'date_long':
      return dtf(loc, { year: 'numeric', month: 'long', day: 'numeric', weekday: 'long' }).format(d);
    case 'date_pretty':
    case 'date_short_pretty':
    case 'date_long_pretty':
      if (Math.abs(rel) <= 1) return new Intl.RelativeTimeFormat(loc, { numeric: 'auto' }).format(rel, 'day');
      return localDateWord(d, tok.replace('_pretty', ''), now, loc);
    case 'time':
      return dtf(loc, { hour: 'numeric', minute: '2-digit' }).format(d);
    case 'time_secs':
      return dtf(loc, { hour: 'numeric', minute: '2-digit', second: '2-digit' }).format(d);
    case 'ago': {
      const secs = Math.round((d.getTime() - now.getTime()) / 1000);
      const unit = AGO_UNITS.find(([, size]) => Math.abs(secs) >= size);
      const words = new Intl.RelativeTimeFormat(loc, { numeric: 'auto' });
      return unit ? words.format(Math.trunc(secs / unit[1]), unit[0]) : words.format(0, 'second');
    }
    default:
      return null;
  }
}

const AGO_UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
let rtf = null;
function ago(d, now) {
  const secs = Math.round((d.getTime() - now.getTime()) / 1000);
  if (Math.abs(secs) < 5) return 'just now';
  if (!rtf) rtf = new Intl.RelativeTimeFormat('en', { numeric: 'always' });
  for (const [unit, size] of AGO_UNITS) {
    if (Math.abs(secs) >= size) return rtf.format(Math.trunc(secs / size), unit);
  }
  return 'just now';
}

/* ========================================================================
 * Modal and confirm dialog
 * ===================================================================== */

let modalView = null; // {id, key, ctx, dialog, head, foot, general, submitting}

function renderModal() {
  const layer = $('#modal-layer');
  const m = S.data.modal;
  if (!m || m.id == null || str(m.id) === '') {
    if (modalView) {
      layer.replaceChildren();
      layer.hidden = true;
      modalView = null;
    }
    return;
  }
  const id = str(m.id);
  const key = `${id}\u0000${JSON.stringify(m.blocks === undefined ? null : m.blocks)}\u0000${S.epoch}`;
  if (!modalView || modalView.key !== key) {
    // Same view with new blocks: keep what was typed in inputs that are still there.
    const before = modalView && modalView.id === id ? collectValues(modalView.ctx) : null;
    const isNew = !modalView || modalView.id !== id;
    const ctx = { where: 'modal', view_id: id, inputs: [] };
    const blocksEl = renderBlocks(m.blocks, ctx);
    if (before) {
      for (const inp of ctx.inputs) {
        const prior = before[inp.block_id] && before[inp.block_id][inp.action_id];
        if (prior) try { inp.set(prior); } catch (err) { /* keep the initial value */ }
      }
    }
    const titleId = uid('modal-title');
    const head = h('header', { class: 'modal-head' });
    const general = h('div', { class: 'modal-errors', role: 'alert', hidden: true });
    const foot = h('footer', { class: 'modal-foot' });
    const dialog = h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, 'data-testid': 'modal' },
      head, h('div', { class: 'modal-body' }, general, blocksEl), foot);
    layer.replaceChildren(h('div', { class: 'overlay' }, dialog));
    layer.hidden = false;
    modalView = { id, key, ctx, dialog, head, foot, general, titleId, submitting: false };
    if (isNew) {
      const first = dialog.querySelector('.modal-body input, .modal-body textarea, .modal-body select');
      if (!first) dialog.tabIndex = -1;
      (first || dialog).focus({ preventScroll: true });
    }
  }
  modalChrome(modalView, m);
}

function modalChrome(v, m) {
  const closeLabel = plainOf(m.close) || 'Cancel';
  v.head.replaceChildren(
    h('h2', { class: 'modal-title', id: v.titleId }, emojify(plainOf(m.title))),
    h('button', { type: 'button', class: 'modal-x', 'aria-label': 'Close', onclick: closeModal }, '×'));
  const buttons = [h('button', { type: 'button', class: 'bk-btn', 'data-testid': 'modal-close', onclick: closeModal }, closeLabel)];
  if (isObj(m.submit)) {
    const submit = h('button', { type: 'button', class: 'bk-btn primary', 'data-testid': 'modal-submit', onclick: submitModal }, plainOf(m.submit) || 'Submit');
    submit.disabled = v.submitting;
    buttons.push(submit);
  }
  v.foot.replaceChildren(...buttons);

  // Errors go under their input block; any others are listed at the top.
  const errors = obj(m.errors);
  const placed = new Set();
  for (const wrap of v.dialog.querySelectorAll('.blk-input[data-block-id]')) {
    const blockId = wrap.getAttribute('data-block-id');
    const msg = own(errors, blockId);
    const slot = wrap.querySelector(':scope > .input-error');
    if (slot) slot.textContent = msg == null ? '' : str(msg);
    wrap.classList.toggle('has-error', msg != null && str(msg) !== '');
    if (msg != null) placed.add(blockId);
  }
  const others = Object.keys(errors).filter((k) => !placed.has(k) && str(errors[k]) !== '');
  v.general.replaceChildren(...others.map((k) => h('div', null, str(errors[k]))));
  v.general.hidden = others.length === 0;
}

async function submitModal() {
  const v = modalView;
  if (!v || v.submitting) return;
  v.submitting = true;
  const btn = v.foot.querySelector('[data-testid="modal-submit"]');
  if (btn) btn.disabled = true;
  try {
    await post('/local/api/submit', { view_id: v.id, values: collectValues(v.ctx) });
  } finally {
    v.submitting = false;
    const current = modalView === v ? v.foot.querySelector('[data-testid="modal-submit"]') : null;
    if (current) current.disabled = false;
  }
}

function closeModal() {
  if (!modalView) return;
  post('/local/api/close', { view_id: modalView.id });
}

let confirmResolve = null;

function confirmDialog(c) {
  if (confirmResolve) confirmResolve(false);
  return new Promise((resolve) => {
    const layer = $('#confirm-layer');
    const done = (answer) => {
      if (confirmResolve !== done) return;
      confirmResolve = null;
      layer.replaceChildren();
      layer.hidden = true;
      resolve(answer);
    };
    confirmResolve = done;
    const danger = c.style === 'danger';
    const yes = h('button', { type: 'button', class: `bk-btn ${danger ? 'danger' : 'primary'}`, 'data-testid': 'confirm-yes', onclick: () => done(true) }, plainOf(c.confirm) || 'Yes');
    const no = h('button', { type: 'button', class: 'bk-btn', 'data-testid': 'confirm-no', onclick: () => done(false) }, plainOf(c.deny) || 'Cancel');
    const titleId = uid('confirm-title');
    const dialog = h('div', { class: 'modal confirm', role: 'alertdialog', 'aria-modal': 'true', 'aria-labelledby': titleId, 'data-testid': 'confirm-dialog' },
      h('header', { class: 'modal-head' }, h('h2', { class: 'modal-title', id: titleId }, emojify(plainOf(c.title) || 'Are you sure?'))),
      h('div', { class: 'modal-body' }, c.text ? textObj(c.text) : null),
      h('footer', { class: 'modal-foot' }, no, yes));
    const overlay = h('div', { class: 'overlay' }, dialog);
    overlay.addEventListener('click', (ev) => { if (ev.target === overlay) done(false); });
    layer.replaceChildren(overlay);
    layer.hidden = false;
    no.focus();
  });
}

/* ========================================================================
 * Composers
 * ===================================================================== */

function autosize(box) {
  box.style.height = 'auto';
  box.style.height = `${Math.min(box.scrollHeight, 220)}px`;
}

async function sendFrom(box, thread) {
  const text = box.value.trim();
  if (!text) return;
  let channel;
  let threadTs = null;
  if (thread) {
    if (!S.thread) return;
    channel = S.thread.channel;
    threadTs = S.thread.ts;
    S.stickThread = true;
  } else {
    if (!S.view || S.view.kind !== 'channel') return;
    channel = S.view.id;
    S.stickMain = true;
    S.drafts.delete(channel);
  }
  box.value = '';
  autosize(box);
  const ok = await post('/local/api/say', { channel, text, thread_ts: threadTs });
  if (!ok && box.value === '') {
    box.value = text;
    autosize(box);
  }
}

function wireComposer(box, button, thread) {
  box.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      sendFrom(box, thread);
    }
  });
  box.addEventListener('input', () => autosize(box));
  button.addEventListener('click', () => sendFrom(box, thread));
}

/* ========================================================================
 * Emulator panel
 * ===================================================================== */

const EMU = { data: null, jobSig: null, statusSig: null, reasonSig: null, lastJob: null, collapsed: false };

async function emuRefresh() {
  try {
    const r = await fetch('/local/api/emulator', { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const d = await r.json();
    EMU.data = isObj(d) ? d : { available: false };
  } catch (err) {
    if (!EMU.data) EMU.data = { available: false };
  }
  emuRender();
}

function fillSelect(select, values, labelOf) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => h('option', { value: v }, labelOf ? labelOf(v) : v)));
  if (values.includes(keep)) select.value = keep;
}

function emuJobs() {
  return arr(EMU.data && EMU.data.jobs).filter((j) => isObj(j) && str(j.JobId) !== '');
}

function emuRender() {
  const panel = $('#emulator-panel');
  const d = EMU.data;
  panel.hidden = !(d && d.available === true);
  updateRight();
  if (panel.hidden) return;

  const jobs = emuJobs();
  const jobSel = $('#emu-job');
  const jobSig = JSON.stringify(jobs.map((j) => [j.JobId, j.FirmwareName, j.DestVersion, j.JobStatus]));
  if (jobSig !== EMU.jobSig) {
    EMU.jobSig = jobSig;
    const keep = jobSel.value;
    jobSel.replaceChildren(...(jobs.length
      ? jobs.map((j) => h('option', { value: str(j.JobId) }, emuJobLabel(j)))
      : [h('option', { value: '' }, 'No jobs')]));
    if (jobs.some((j) => str(j.JobId) === keep)) jobSel.value = keep;
  }
  const statuses = arr(d.statuses).map(str).filter(Boolean);
  const statusSig = JSON.stringify(statuses);
  if (statusSig !== EMU.statusSig) {
    EMU.statusSig = statusSig;
    fillSelect($('#emu-status'), statuses);
  }
  const reasons = arr(d.reasons).map(str).filter(Boolean);
  const reasonSig = JSON.stringify(reasons);
  if (reasonSig !== EMU.reasonSig) {
    EMU.reasonSig = reasonSig;
    fillSelect($('#emu-fail-reason'), reasons);
  }
  emuShowJob();
}

function emuJobLabel(j) {
  const fw = [str(j.FirmwareName), str(j.DestVersion) ? `→ ${str(j.DestVersion)}` : ''].filter(Boolean).join(' ');
  return `${str(j.JobId)}${fw ? ` · ${fw}` : ''}${j.JobStatus ? ` (${str(j.JobStatus)})` : ''}`;
}

function emuSelectedJob() {
  const id = $('#emu-job').value;
  return emuJobs().find((j) => str(j.JobId) === id) || null;
}

function emuShowJob() {
  const job = emuSelectedJob();
  const counts = $('#emu-counts');
  for (const id of ['#emu-set-status', '#emu-fail', '#emu-succeed']) $(id).disabled = !job;
  if (!job) {
    counts.replaceChildren(h('span', { class: 'muted' }, 'No emulated job.'));
    EMU.lastJob = null;
    return;
  }
  const jobId = str(job.JobId);
  if (EMU.lastJob !== jobId) {
    // A newly chosen job starts from its own status in the status picker.
    EMU.lastJob = jobId;
    const statusSel = $('#emu-status');
    if (Array.from(statusSel.options).some((o) => o.value === str(job.JobStatus))) statusSel.value = str(job.JobStatus);
  }
  const entries = Object.entries(obj(job.counts));
  const parts = [h('div', { class: 'emu-job-status' }, 'Status ', h('b', null, str(job.JobStatus) || '?'))];
  const chips = h('div', { class: 'emu-chips' });
  entries.forEach(([k, v], i) => {
    if (i) chips.append(' · ');
    chips.append(h('span', { class: `emu-chip s-${k.toLowerCase().replace(/[^a-z_]/g, '')}` }, `${k} ${str(v)}`));
  });
  if (!entries.length) chips.append(h('span', { class: 'muted' }, 'No devices yet.'));
  parts.push(chips);
  counts.replaceChildren(...parts);
}

function emuCount(selector) {
  const n = Number($(selector).value);
  if (!Number.isInteger(n) || n < 1) {
    showError('Enter a whole number of devices, 1 or more.');
    return null;
  }
  return n;
}

async function emuAction(button, path, body) {
  button.disabled = true;
  try {
    await post(path, body);
  } finally {
    button.disabled = false;
  }
  await emuRefresh();
}

function wireEmulator() {
  $('#emu-toggle').addEventListener('click', () => {
    EMU.collapsed = !EMU.collapsed;
    $('#emu-body').hidden = EMU.collapsed;
    $('#emu-toggle').setAttribute('aria-expanded', String(!EMU.collapsed));
    $('#emulator-panel').classList.toggle('collapsed', EMU.collapsed);
    if (!EMU.collapsed) emuRefresh();
  });
  $('#emu-job').addEventListener('change', emuShowJob);
  $('#emu-set-status').addEventListener('click', (ev) => {
    const job = emuSelectedJob();
    const status = $('#emu-status').value;
    if (!job || !status) return;
    emuAction(ev.currentTarget, '/local/api/emulator/status', { job_id: str(job.JobId), status });
  });
  $('#emu-fail').addEventListener('click', (ev) => {
    const job = emuSelectedJob();
    const count = emuCount('#emu-fail-count');
    if (!job || count == null) return;
    const reason = $('#emu-fail-custom').value.trim() || $('#emu-fail-reason').value;
    emuAction(ev.currentTarget, '/local/api/emulator/fail', { job_id: str(job.JobId), count, reason });
  });
  $('#emu-succeed').addEventListener('click', (ev) => {
    const job = emuSelectedJob();
    const count = emuCount('#emu-succeed-count');
    if (!job || count == null) return;
    emuAction(ev.currentTarget, '/local/api/emulator/succeed', { job_id: str(job.JobId), count });
  });
}

async function emuLoop() {
  await emuRefresh();
  for (;;) {
    const available = EMU.data && EMU.data.available === true;
    await sleep(available ? 4000 : 15000);
    if (document.hidden || (available && EMU.collapsed)) continue;
    await emuRefresh();
  }
}

/* ========================================================================
 * Start
 * ===================================================================== */

function start() {
  $('#home-tab').addEventListener('click', selectHome);
  $('#thread-close').addEventListener('click', closeThread);
  $('#error-dismiss').addEventListener('click', () => { $('#error-banner').hidden = true; });
  wireComposer($('#composer'), $('#composer-send'), false);
  wireComposer($('#thread-composer'), $('#thread-send'), true);
  wireEmulator();
  document.addEventListener('click', closeMenus);
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    if (confirmResolve) { confirmResolve(false); return; }
    if (document.querySelector('.overflow-menu:not([hidden])')) { closeMenus(); return; }
    if (modalView) closeModal();
  });
  pollLoop();
  emuLoop();
}

start();
