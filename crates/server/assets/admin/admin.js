// The admin page of secure-api: keys, their usage and the audit log, through the admin API.
//
// The admin token lives in this tab's sessionStorage and goes out only as the Authorization
// header of requests to this server; never in a URL or a cookie. Everything shown is written
// with textContent or as SVG attributes, never parsed as HTML.
'use strict';

const TOKEN_KEY = 'secure-api.admin-token';
const SCOPES = ['time:read', 'prime:check', 'weather:read', 'whoami:read'];
const CHART_DAYS = 30;
const RATE_PERIODS = ['second', 'minute', 'hour', 'day'];
const REFILL_INTERVALS = ['day', 'month'];

const $ = (id) => document.getElementById(id);

const state = {
  keys: [],
  selected: null,
  auditNext: null,
};

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.field = problem && problem.field;
  }
}

/**
 * Calls the admin API with the admin token; the parsed JSON answer, or an ApiError. `path` is
 * relative to this page (`keys` is `/admin/keys`), so a path prefix in front of the server works.
 */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new ApiError(response.status, data);
  }
  return data;
}

function say(text, isError) {
  const message = $('message');
  message.textContent = text;
  message.className = isError ? 'error' : '';
}

/** Runs an action; a refused admin token signs out, any other failure is shown. */
async function attempt(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut('The admin token was refused (revoked or expired): sign in again.');
    } else {
      say(error.message, true);
    }
  }
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function show(id, visible) {
  $(id).hidden = !visible;
}

// ---- signing in and out ----

async function signIn(event) {
  event.preventDefault();
  const given = $('token').value.trim();
  $('sign-in-error').textContent = '';
  if (!given) return;
  sessionStorage.setItem(TOKEN_KEY, given);
  $('token').value = '';
  try {
    await loadKeys();
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $('sign-in-error').textContent =
      error instanceof ApiError && error.status === 401 ? 'That admin token is not valid.' : error.message;
    return;
  }
  enter();
}

function enter() {
  show('sign-in', false);
  show('tabs', true);
  showTab('keys');
}

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.keys = [];
  state.selected = null;
  for (const id of ['tabs', 'keys-view', 'audit-view', 'detail', 'secret']) show(id, false);
  show('sign-in', true);
  $('secret-value').textContent = '';
  say(why || 'Signed out.', Boolean(why));
}

function showTab(name) {
  show('keys-view', name === 'keys');
  show('audit-view', name === 'audit');
  $('tab-keys').setAttribute('aria-pressed', String(name === 'keys'));
  $('tab-audit').setAttribute('aria-pressed', String(name === 'audit'));
  if (name === 'audit') attempt(() => loadAudit(false));
}

// ---- scopes ----

function scopeBoxes(fieldset, prefix) {
  for (const name of ['*', ...SCOPES]) {
    const label = element('label', null, 'scope');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = name;
    box.id = `${prefix}-${name === '*' ? 'all' : name.replace(':', '-')}`;
    label.append(box, ` ${name === '*' ? '* (every scope)' : name}`);
    fieldset.append(label);
  }
}

function checkedScopes(fieldset) {
  const names = [...fieldset.querySelectorAll('input:checked')].map((box) => box.value);
  return names.includes('*') ? ['*'] : names;
}

function setScopes(fieldset, scopes) {
  for (const box of fieldset.querySelectorAll('input')) box.checked = scopes.includes(box.value);
}

// ---- limits: rate limit, monthly quota, credits ----

function label(forId, text) {
  const node = element('label', text);
  node.htmlFor = forId;
  return node;
}

function numberInput(id, min, placeholder, max) {
  const node = document.createElement('input');
  node.type = 'number';
  node.id = id;
  node.min = String(min);
  if (max) node.max = String(max);
  node.placeholder = placeholder;
  return node;
}

function choice(id, options) {
  const node = document.createElement('select');
  node.id = id;
  for (const name of options) node.append(element('option', name));
  return node;
}

function group(...children) {
  const node = element('span', null, 'group');
  node.append(...children);
  return node;
}

/**
 * The inputs of a key's limits, ids prefixed with `prefix`: rate limit (calls, period, burst),
 * monthly quota, credits (balance, refill amount and interval). The edit form also gets a box
 * that takes the credits away.
 */
function limitFields(fieldset, prefix, editing) {
  const id = (name) => `${prefix}-${name}`;
  fieldset.append(
    group(label(id('rate-limit'), 'Rate limit'), numberInput(id('rate-limit'), 1, 'none'),
      label(id('rate-per'), 'per'), choice(id('rate-per'), RATE_PERIODS),
      label(id('rate-burst'), 'burst'), numberInput(id('rate-burst'), 1, 'the rate', 1000000)),
    group(label(id('monthly-quota'), 'Monthly quota'), numberInput(id('monthly-quota'), 1, 'none')),
    group(label(id('credits'), editing ? 'New credits' : 'Credits'),
      numberInput(id('credits'), 0, editing ? 'keep' : 'unlimited'),
      label(id('refill-amount'), 'refilled to'), numberInput(id('refill-amount'), 1, 'no refill'),
      label(id('refill-interval'), 'each'), choice(id('refill-interval'), REFILL_INTERVALS)),
  );
  if (editing) {
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.id = id('credits-clear');
    const clear = element('label', null, 'scope');
    clear.append(box, ' no credits (unlimited uses)');
    fieldset.append(group(clear));
  }
}

/** The number in the input `id`, or null when it is empty. */
function numberOrNull(id) {
  const text = $(id).value.trim();
  return text === '' ? null : Number(text);
}

/** The rate limit the form `prefix` gives, or null for none. */
function rateLimitOf(prefix) {
  const limit = numberOrNull(`${prefix}-rate-limit`);
  if (limit === null) return null;
  const rate = { limit, per: $(`${prefix}-rate-per`).value };
  const burst = numberOrNull(`${prefix}-rate-burst`);
  if (burst !== null) rate.burst = burst;
  return rate;
}

/** The refill the form `prefix` gives, or null for none. */
function refillOf(prefix) {
  const amount = numberOrNull(`${prefix}-refill-amount`);
  return amount === null ? null : { amount, interval: $(`${prefix}-refill-interval`).value };
}

/** The credits the form `prefix` gives, or null when it gives no balance. */
function creditsOf(prefix) {
  const remaining = numberOrNull(`${prefix}-credits`);
  if (remaining === null) {
    if (refillOf(prefix) && prefix === 'create') throw new Error('A refill needs credits: give the balance to start with.');
    return null;
  }
  const credits = { remaining };
  const refill = refillOf(prefix);
  if (refill) credits.refill = refill;
  return credits;
}

function sameRate(given, current) {
  if (!given || !current) return !given && !current;
  return given.limit === current.limit && given.per === current.per
    && (given.burst ?? given.limit) === current.burst;
}

function sameRefill(given, current) {
  if (!given || !current) return !given && !current;
  return given.amount === current.amount && given.interval === current.interval;
}

function rateText(rate) {
  return rate ? `${rate.limit.toLocaleString('en')}/${rate.per}, burst ${rate.burst.toLocaleString('en')}` : '–';
}

function creditsText(credits) {
  if (!credits) return '–';
  const refill = credits.refill ? ` (refill ${credits.refill.amount.toLocaleString('en')}/${credits.refill.interval})` : '';
  return `${credits.granted.toLocaleString('en')}${refill}`;
}

/** Shows a key's limits in the edit form. A new credits balance starts empty: one is sent only when typed. */
function fillLimits(key) {
  const rate = key.rate_limit;
  $('edit-rate-limit').value = rate ? rate.limit : '';
  $('edit-rate-per').value = rate ? rate.per : 'second';
  $('edit-rate-burst').value = rate ? rate.burst : '';
  $('edit-monthly-quota').value = key.monthly_quota ?? '';
  const credits = key.credits;
  $('edit-credits').value = '';
  $('edit-credits').placeholder = credits ? 'keep' : 'unlimited';
  $('edit-refill-amount').value = credits && credits.refill ? credits.refill.amount : '';
  $('edit-refill-interval').value = credits && credits.refill ? credits.refill.interval : 'day';
  $('edit-credits-clear').checked = false;
  $('edit-credits-clear').disabled = !credits;
}

/** The limits in `change` that differ from what `key` has: a PATCH names only those. */
function changedLimits(key, change) {
  const rate = rateLimitOf('edit');
  if (!sameRate(rate, key.rate_limit)) change.rate_limit = rate;
  const monthly = numberOrNull('edit-monthly-quota');
  if (monthly !== (key.monthly_quota ?? null)) change.monthly_quota = monthly;
  if ($('edit-credits-clear').checked) {
    change.credits = null;
    return;
  }
  const credits = creditsOf('edit');
  if (credits) {
    change.credits = credits;
  } else if (!sameRefill(refillOf('edit'), key.credits ? key.credits.refill || null : null)) {
    throw new Error('A new refill starts a new balance: give the new credits too.');
  }
}

// ---- keys ----

async function loadKeys() {
  state.keys = await api('GET', 'keys');
  renderKeys();
}

function renderKeys() {
  const body = $('keys').tBodies[0];
  body.replaceChildren();
  for (const key of state.keys) {
    const row = element('tr');
    row.dataset.id = key.id;
    row.tabIndex = 0;
    if (state.selected === key.id) row.className = 'selected';
    row.append(
      element('td', key.id, 'mono'),
      element('td', key.service),
      element('td', key.name || '–'),
      element('td', key.status, `status ${key.status}`),
      element('td', key.scopes.join(' ')),
      element('td', key.daily_quota.toLocaleString('en'), 'number'),
      element('td', rateText(key.rate_limit)),
      element('td', key.monthly_quota ? key.monthly_quota.toLocaleString('en') : '–', 'number'),
      element('td', creditsText(key.credits)),
    );
    row.addEventListener('click', () => attempt(() => select(key.id)));
    row.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') attempt(() => select(key.id));
    });
    body.append(row);
  }
}

async function select(id) {
  state.selected = id;
  renderKeys();
  const key = state.keys.find((k) => k.id === id);
  if (!key) {
    show('detail', false);
    return;
  }
  $('detail-title').textContent = `${key.name || key.service}: ${key.id}`;
  const facts = [`service ${key.service}`, `status ${key.status}`,
    `created ${new Date(key.created_at * 1000).toISOString().slice(0, 10)}`];
  if (key.owner) facts.push(`owner ${key.owner}`);
  if (key.expires_at) facts.push(`expires ${new Date(key.expires_at * 1000).toISOString().slice(0, 10)}`);
  if (key.signing) facts.push('signs its requests');
  if (key.credits) {
    const on = new Date(key.credits.granted_at * 1000).toISOString().slice(0, 10);
    facts.push(`${key.credits.granted.toLocaleString('en')} credits granted ${on}`);
  }
  $('detail-facts').textContent = facts.join(' · ');
  setScopes($('edit-scopes'), key.scopes);
  $('edit-quota').value = key.daily_quota;
  fillLimits(key);
  const active = key.status === 'active';
  for (const id of ['edit-save', 'rotate', 'revoke']) $(id).disabled = !active;
  show('detail', true);
  const usage = await api('GET', `keys/${encodeURIComponent(id)}/usage?days=${CHART_DAYS}`);
  drawChart(usage.history);
  // What is left of each limit now, from the same answer.
  const count = (n) => n.toLocaleString('en');
  const left = [`${count(usage.remaining)} of ${count(usage.limit)} left today`];
  if (usage.monthly_quota) {
    left.push(`${count(usage.monthly_quota.remaining)} of ${count(usage.monthly_quota.limit)} left this month`);
  }
  if (usage.credits) left.push(`${count(usage.credits.remaining)} credits left`);
  if (usage.rate_limit) {
    left.push(`${count(usage.rate_limit.remaining)} of a burst of ${count(usage.rate_limit.limit)} free`);
  }
  if (state.selected === id) $('detail-facts').textContent = [...facts, ...left].join(' · ');
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** One stacked bar per day: accepted below, refused above; the largest day fills the height. */
function drawChart(history) {
  const chart = $('chart');
  for (const old of chart.querySelectorAll('g, text.axis')) old.remove();
  const width = 640;
  const height = 200;
  const top = 16;
  const bottom = 20;
  const plot = height - top - bottom;
  const refusedOf = (d) => d.refused.quota + d.refused.scope + d.refused.rate + d.refused.credits;
  const totals = history.map((d) => d.accepted + refusedOf(d));
  const largest = Math.max(1, ...totals);
  const step = width / history.length;
  const bars = svg('g', { class: 'bars' });
  history.forEach((day, i) => {
    const refused = refusedOf(day);
    const acceptedHeight = (day.accepted / largest) * plot;
    const refusedHeight = (refused / largest) * plot;
    const x = i * step + 1;
    const bar = svg('g', { class: 'day', 'data-date': day.date });
    bar.append(
      svg('rect', {
        class: 'accepted', x, width: step - 2, height: acceptedHeight,
        y: top + plot - acceptedHeight,
      }),
      svg('rect', {
        class: 'refused', x, width: step - 2, height: refusedHeight,
        y: top + plot - acceptedHeight - refusedHeight,
      }),
      svg('title', {}, `${day.date}: ${day.accepted} accepted, ${day.refused.quota} over quota, ${day.refused.rate} rate limited, ${day.refused.credits} out of credits, ${day.refused.scope} out of scope`),
    );
    bars.append(bar);
  });
  chart.append(
    bars,
    svg('text', { class: 'axis', x: 0, y: 12 }, `${largest.toLocaleString('en')} calls`),
    svg('text', { class: 'axis', x: 0, y: height - 4 }, history[0].date),
    svg('text', { class: 'axis', x: width, y: height - 4, 'text-anchor': 'end' }, history[history.length - 1].date),
  );
}

function showSecret(title, value) {
  $('secret-title').textContent = title;
  $('secret-value').textContent = value;
  show('secret', true);
}

async function createKey(event) {
  event.preventDefault();
  const body = { service: $('create-service').value.trim() };
  const quota = $('create-quota').value;
  if (quota) body.daily_quota = Number(quota);
  const scopes = checkedScopes($('create-scopes'));
  if (scopes.length) body.scopes = scopes;
  for (const field of ['name', 'owner']) {
    const value = $(`create-${field}`).value.trim();
    if (value) body[field] = value;
  }
  const rate = rateLimitOf('create');
  if (rate) body.rate_limit = rate;
  const monthly = numberOrNull('create-monthly-quota');
  if (monthly !== null) body.monthly_quota = monthly;
  const credits = creditsOf('create');
  if (credits) body.credits = credits;
  const created = await api('POST', 'keys', body);
  $('create-form').reset();
  showSecret(`New key ${created.id}`, created.key);
  say(`Created ${created.id}.`);
  await loadKeys();
  await select(created.id);
}

// Only what the operator changed is sent: a key on the server's default daily quota keeps it
// (the box shows the quota in force), and the audit log names the fields that changed.
async function saveKey(event) {
  event.preventDefault();
  const id = state.selected;
  const key = state.keys.find((k) => k.id === id);
  const change = {};
  const scopes = checkedScopes($('edit-scopes'));
  if ([...scopes].sort().join(' ') !== [...key.scopes].sort().join(' ')) change.scopes = scopes;
  const quota = $('edit-quota').value;
  if (!quota) change.daily_quota = null;
  else if (Number(quota) !== key.daily_quota) change.daily_quota = Number(quota);
  changedLimits(key, change);
  await api('PATCH', `keys/${encodeURIComponent(id)}`, change);
  say(`Saved ${id}: every instance applies it within the key cache TTL.`);
  await loadKeys();
  await select(id);
}

async function rotateKey() {
  const id = state.selected;
  const created = await api('POST', `keys/${encodeURIComponent(id)}/rotate`, { grace_hours: 24 });
  showSecret(`Replacement for ${id} (the old key works for 24 h more)`, created.key);
  say(`Rotated ${id} into ${created.id}.`);
  await loadKeys();
  await select(created.id);
}

async function revokeKey() {
  const id = state.selected;
  await api('DELETE', `keys/${encodeURIComponent(id)}`);
  say(`Revoked ${id}.`);
  await loadKeys();
  await select(id);
}

// ---- audit log ----

async function loadAudit(older) {
  const query = older && state.auditNext ? `&before=${encodeURIComponent(state.auditNext)}` : '';
  const page = await api('GET', `audit?limit=50${query}`);
  const body = $('audit').tBodies[0];
  if (!older) body.replaceChildren();
  for (const entry of page.entries) {
    const row = element('tr');
    const outcome = entry.reason ? `${entry.outcome}: ${entry.reason}` : entry.outcome;
    row.append(
      element('td', new Date(entry.at * 1000).toISOString().replace('T', ' ').slice(0, 19)),
      element('td', entry.actor, 'mono'),
      element('td', entry.action),
      element('td', entry.target || '–', 'mono'),
      element('td', outcome, `outcome ${entry.outcome}`),
      element('td', entry.request_id || '–', 'mono'),
    );
    body.append(row);
  }
  state.auditNext = page.next || null;
  show('audit-older', Boolean(state.auditNext));
}

// ---- start ----

document.addEventListener('DOMContentLoaded', () => {
  scopeBoxes($('create-scopes'), 'create-scope');
  scopeBoxes($('edit-scopes'), 'edit-scope');
  limitFields($('create-limits'), 'create', false);
  limitFields($('edit-limits'), 'edit', true);
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => signOut());
  $('tab-keys').addEventListener('click', () => showTab('keys'));
  $('tab-audit').addEventListener('click', () => showTab('audit'));
  $('create-form').addEventListener('submit', (event) => attempt(() => createKey(event)));
  $('edit-form').addEventListener('submit', (event) => attempt(() => saveKey(event)));
  $('rotate').addEventListener('click', () => attempt(rotateKey));
  $('revoke').addEventListener('click', () => attempt(revokeKey));
  $('audit-older').addEventListener('click', () => attempt(() => loadAudit(true)));
  $('secret-dismiss').addEventListener('click', () => {
    $('secret-value').textContent = '';
    show('secret', false);
  });
  if (token()) {
    attempt(async () => {
      await loadKeys();
      enter();
    });
  }
  document.body.dataset.ready = 'true';
});
