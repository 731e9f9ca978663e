/**
 * The console page's plumbing: elements by id, the activity log, the API client with its bearer
 * token (the login link's secret or a signed login's session token, kept for this tab only), and
 * table cells and action buttons.
 */
export const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
};

const login = /(?:^|[#&])login=([\w-]+)/.exec(location.hash)?.[1];
if (login) {
  sessionStorage.setItem('tessera-console-login', login);
  window.history.replaceState(null, '', location.pathname);
}
let secret = sessionStorage.getItem('tessera-console-login') ?? '';

/** Keeps a session token (from a signed login) for this tab. */
export function setSession(token: string): void {
  secret = token;
  sessionStorage.setItem('tessera-console-login', token);
}

let afterAction: () => Promise<void> = async () => {};
/** What runs after every action button (the page's refresh). */
export function onAction(fn: () => Promise<void>): void {
  afterAction = fn;
}

export function log(text: string): void {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $('log').prepend(li);
}

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const r = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${secret}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const j = (await r.json()) as T & { error?: { code: string; message: string } };
  if (r.status === 401) $('login-needed').hidden = false;
  else if (r.ok) $('login-needed').hidden = true;
  if (!r.ok) throw Object.assign(new Error(j.error?.message ?? `HTTP ${r.status}`), { code: j.error?.code });
  return j;
}

export function cell(text: string, data?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (data) td.dataset.field = data;
  return td;
}

export function button(label: string, run: () => Promise<void>, danger = false): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (danger) b.className = 'danger';
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await run();
      await afterAction();
    } catch (e) {
      log(`error ${(e as { code?: string }).code ?? ''}: ${(e as Error).message}`);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

export function row(tbody: HTMLElement, id: string, cells: HTMLElement[]): void {
  const tr = document.createElement('tr');
  tr.dataset.id = id;
  tr.append(...cells);
  tbody.append(tr);
}
