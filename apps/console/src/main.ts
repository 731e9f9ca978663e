/**
 * The Tessera operator console: what the cluster holds and how offline payments go, refreshed
 * every two seconds from the console server's API (packages/cli/src/console-server.ts), and the
 * operator's actions — enrolment tokens, device admission and revocation, key refresh and
 * reshare — approved with the operator keys the server holds, or asked for and approved in the
 * operators' own pages (approvals.ts). The bearer token is the login link's secret or a signed
 * login's session token (operator-key.ts: the key file is read here, signs, and is dropped);
 * page.ts holds the plumbing.
 */
import { keyAddresses } from './addresses.js';
import qrcode from 'qrcode-generator';
import { ask, renderRequests, setApprovesItself, wireReshare, type PendingRequest } from './approvals.js';
import { signIn } from './operator-key.js';
import { $, api, button, cell, log, onAction, row } from './page.js';

const SVG = 'http://www.w3.org/2000/svg';
const series: { at: number; completed: number }[] = [];

interface Overview {
  at: number;
  packages: { packageId: string; device: string; keyId: string; state: string; code: string; at: string }[];
  signers: { id: string; healthy: boolean; keys: number; pooledCommitments: number }[];
  devices: { id: string; linked: boolean; keys: number; enrolled: boolean; admitted: boolean }[];
  keys: { keyId: string; suite: string; threshold: number; participants: string[]; publicKey: string; epoch: number }[];
  audit: { ok: boolean; processes: { id: string; ok: boolean; count: number; reason: string }[] };
  kpis: {
    completed: number;
    redelivered: number;
    refused: number;
    pendingOnDevices: number;
    reservationsIssued: number;
    syncLatencyMeanSeconds: number | null;
    devicesLinked: number;
    successRate: Record<string, number>;
    allowanceUtilisation: number;
    reconnectThroughputMean: number | null;
    compromiseIndicators: { reservationReuse: number; culprits: number; packagesPastCap: number };
  } | null;
  /** false: the server holds no operator key; actions become requests the operators approve here. */
  approvesItself: boolean;
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86_400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

function chart(): void {
  const w = 600;
  const h = 96;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1, ...series.map((p) => p.completed));
  const pts = series.map(
    (p, i) => `${(i / Math.max(1, series.length - 1)) * w},${h - 4 - (p.completed / max) * (h - 8)}`,
  );
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', pts.join(' '));
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', '#1f6feb');
  line.setAttribute('stroke-width', '2');
  svg.append(line);
  $('chart').replaceChildren(svg);
}

function render(o: Overview): void {
  const k = o.kpis;
  const kpis: [string, string, string][] = k
    ? [
        ['completed', 'Completed', String(k.completed)],
        ['redelivered', 'Re-deliveries (answered once)', String(k.redelivered)],
        ['refused', 'Refused', String(k.refused)],
        ['pending', 'Waiting on devices', String(k.pendingOnDevices)],
        ['reservations', 'Reservations issued', String(k.reservationsIssued)],
        [
          'latency',
          'Mean sync latency',
          k.syncLatencyMeanSeconds === null ? '—' : `${k.syncLatencyMeanSeconds.toFixed(1)} s`,
        ],
        ['linked', 'Devices linked', String(k.devicesLinked)],
        ['utilisation', 'Allowance used', `${(k.allowanceUtilisation * 100).toFixed(0)} %`],
        [
          'reconnect',
          'After reconnect',
          k.reconnectThroughputMean === null ? '—' : `${k.reconnectThroughputMean.toFixed(2)} /s`,
        ],
        ...Object.entries(k.successRate).map(([c, r]): [string, string, string] => [
          `success-${c}`,
          `Success (${c})`,
          `${(r * 100).toFixed(1)} %`,
        ]),
        ['reuse', 'Reservation reuse attempts', String(k.compromiseIndicators.reservationReuse)],
        ['culprits', 'Culprits named', String(k.compromiseIndicators.culprits)],
        ['past-cap', 'Packages past their cap', String(k.compromiseIndicators.packagesPastCap)],
      ]
    : [];
  $('kpis').replaceChildren(
    ...kpis.map(([id, label, value]) => {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = value;
      dd.dataset.kpi = id;
      div.append(dt, dd);
      return div;
    }),
  );
  if (k) series.push({ at: o.at, completed: k.completed });
  if (series.length > 6_000) series.shift();
  chart();

  const filter = $<HTMLSelectElement>('package-state').value;
  const pkgs = $('packages');
  pkgs.replaceChildren();
  for (const p of o.packages.filter((x) => !filter || x.state === filter))
    row(pkgs, p.packageId, [
      cell(p.packageId),
      cell(p.device, 'device'),
      cell(p.keyId, 'key'),
      cell(p.state === 'refused' ? `refused (${p.code})` : p.state, 'state'),
      cell(age(o.at - Date.parse(p.at)), 'age'),
    ]);
  $('packages-waiting').textContent = k
    ? `${k.pendingOnDevices} more waiting in devices' queues (signed offline, not delivered yet).`
    : '';

  const devices = $('devices');
  devices.replaceChildren();
  for (const d of o.devices) {
    const actions = document.createElement('td');
    // A console that collects approvals offers Admit again after a first approval: signers may
    // need more than one (M of their pinned operators), and each request adds the approvals it has.
    if (!d.admitted || !o.approvesItself)
      actions.append(
        button(`Admit ${d.id}`, async () => {
          if (!o.approvesItself) return ask(refresh, { operation: 'admit', device: d.id });
          await api('POST', '/api/devices/admit', { device: d.id });
          log(`${d.id} admitted`);
        }),
      );
    const others = o.devices.filter((x) => x.id !== d.id && x.admitted);
    if (d.keys > 0 && others.length) {
      const pick = document.createElement('select');
      pick.setAttribute('aria-label', `New device to replace ${d.id}`);
      for (const x of others) pick.append(new Option(x.id, x.id));
      actions.append(
        pick,
        button(`Replace ${d.id}`, async () => {
          const target = pick.value;
          if (!confirm(`Move every key of ${d.id} to ${target} and revoke ${d.id}?`)) return;
          if (!o.approvesItself) {
            // One request per key, the old device revoked with the last (nothing of it is needed then).
            const held = o.keys.filter((k) => k.participants.includes(d.id));
            for (const [i, k] of held.entries())
              await ask(refresh, {
                operation: 'replace',
                keyId: k.keyId,
                old: d.id,
                new: target,
                revoke: i === held.length - 1,
              });
            return;
          }
          log(`replacing ${d.id} by ${target}…`);
          const r = await api<{ keys: { keyId: string; epoch: number }[] }>('POST', '/api/devices/replace', {
            old: d.id,
            new: target,
          });
          log(
            `${d.id} replaced by ${target}: ${r.keys.map((k) => `${k.keyId} epoch ${k.epoch}`).join(', ')}; ${d.id} revoked`,
          );
        }),
      );
    }
    actions.append(
      button(
        `Revoke ${d.id}`,
        async () => {
          if (!confirm(`Revoke ${d.id} on every signer? It can no longer reserve or complete payments.`)) return;
          if (!o.approvesItself) return ask(refresh, { operation: 'revoke', device: d.id });
          const r = await api<{ signers: string[] }>('POST', '/api/devices/revoke', { device: d.id });
          log(`${d.id} revoked on ${r.signers.join(', ')}`);
        },
        true,
      ),
    );
    row(devices, d.id, [
      cell(d.id),
      cell(d.linked ? 'linked' : 'offline', 'link'),
      cell(String(d.keys), 'keys'),
      cell(d.admitted ? 'admitted' : 'waiting for admission', 'admission'),
      actions,
    ]);
  }

  const signers = $('signers');
  signers.replaceChildren();
  for (const s of o.signers)
    row(signers, s.id, [
      cell(s.id),
      cell(s.healthy ? 'healthy' : 'down', 'health'),
      cell(String(s.keys), 'keys'),
      cell(String(s.pooledCommitments), 'pool'),
    ]);

  const pickKey = $<HTMLSelectElement>('reshare-key');
  const picked = pickKey.value;
  pickKey.replaceChildren(
    ...o.keys.map((k) => {
      const opt = document.createElement('option');
      opt.value = k.keyId;
      opt.textContent = `${k.keyId} (${k.threshold} of ${k.participants.length})`;
      opt.dataset.participants = k.participants.join(',');
      return opt;
    }),
  );
  if (o.keys.some((k) => k.keyId === picked)) pickKey.value = picked;
  const others = $<HTMLInputElement>('reshare-participants');
  if (!others.value) others.value = pickKey.selectedOptions[0]?.dataset.participants ?? '';
  setApprovesItself(o.approvesItself);

  const keys = $('keys');
  keys.replaceChildren();
  for (const key of o.keys) {
    const actions = document.createElement('td');
    actions.append(
      button(`Refresh ${key.keyId}`, async () => {
        if (!o.approvesItself) return ask(refresh, { operation: 'refresh', keyId: key.keyId });
        log(`refreshing ${key.keyId}…`);
        const r = await api<{ epoch: number }>('POST', '/api/keys/refresh', { keyId: key.keyId });
        log(`${key.keyId} refreshed: epoch ${r.epoch}, same public key`);
      }),
    );
    row(keys, key.keyId, [
      cell(key.keyId),
      cell(`${key.suite}, ${key.threshold} of ${key.participants.length}`, 'scheme'),
      cell(key.participants.join(', '), 'participants'),
      cell(String(key.epoch), 'epoch'),
      cell(keyAddresses(key.suite, key.publicKey), 'address'),
      actions,
    ]);
  }

  const audit = $('audit-result');
  audit.textContent = o.audit.ok ? 'Every audit chain verifies.' : 'An audit chain does NOT verify.';
  audit.className = o.audit.ok ? 'ok' : 'bad';
  $('audit').replaceChildren(
    ...o.audit.processes.map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.id}: ${p.ok ? `${p.count} entries, verified` : `broken (${p.reason})`}`;
      li.className = p.ok ? 'ok' : 'bad';
      return li;
    }),
  );
  $('updated').textContent = `Updated ${new Date(o.at).toLocaleTimeString()}`;
  document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
}

let historyAt = 0;

async function refresh(): Promise<void> {
  const o = await api<Overview>('GET', '/api/overview');
  // The server's KPI history (24 h, sampled every 15 s), fetched again every 10 s; the live
  // points of the last seconds follow it.
  if (Date.now() - historyAt > 10_000) {
    historyAt = Date.now();
    const h = await api<{ samples: { at: number; completed: number }[] }>('GET', '/api/kpis/history').catch(
      () => undefined,
    );
    if (h) series.splice(0, series.length, ...h.samples.map((x) => ({ at: x.at, completed: x.completed })));
  }
  render(o);
  $('approvals').hidden = o.approvesItself;
  if (!o.approvesItself)
    renderRequests((await api<{ requests: PendingRequest[] }>('GET', '/api/requests')).requests, refresh);
}

$('package-state').addEventListener('change', () => void refresh().catch(() => {}));

$('issue-token').addEventListener('click', async () => {
  try {
    const r = await api<{ token: string; expiresAt: string }>('POST', '/api/token');
    $<HTMLInputElement>('token').value = r.token;
    const qr = qrcode(0, 'M');
    qr.addData(r.token, 'Byte');
    qr.make();
    $('token-qr').innerHTML = qr.createSvgTag({ cellSize: 4, margin: 16, scalable: true });
    $('token-qr').hidden = false;
    log(`enrolment token issued (valid until ${new Date(r.expiresAt).toLocaleTimeString()})`);
  } catch (e) {
    log(`error: ${(e as Error).message}`);
  }
});

onAction(refresh);
wireReshare(refresh);
$('sign-in').addEventListener('click', () => void signIn(refresh));

async function loop(): Promise<void> {
  try {
    await refresh();
  } catch (e) {
    $('updated').textContent = `Not updated: ${(e as Error).message}`;
  }
  setTimeout(loop, 2_000);
}
void loop();
