/**
 * Devices: enrolment with one-time tokens, the operators' admissions (which signers check
 * themselves before a device enters a key), and revocation — on the operators' word to every
 * signer node, and of the enrolment here.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  PayloadKind,
  admissionPayload,
  decodeApproved,
  decodeMessage,
  encodeMessage,
  equalBytes,
  fromHex,
  openEnvelope,
  participantFromWire,
  participantToWire,
  toHex,
  type ParticipantPublic as DevicePublic,
  type Rng,
} from '@tessera/core';
import { KeyedMutex, type AuditLog, type SealedKV } from '@tessera/store';
import type { KeyRegistry } from './key-registry.js';
import { layout } from './layout.js';
import type { Participants } from './participants.js';
import { CoordinatorError, codeOf, type CoordinatorEvent, type ParticipantHandle } from './types.js';

/** What the device service uses. */
export interface DeviceComponents {
  readonly store: SealedKV;
  readonly audit: AuditLog;
  readonly clock: () => number;
  readonly rng: Rng;
  /** Per-task deadline, ms. */
  readonly timeout: number;
  readonly participants: Participants;
  readonly registry: KeyRegistry;
  /** Ends a participant's link (a revoked device's). */
  unlink(id: string, handle: ParticipantHandle): void;
  onEvent(e: CoordinatorEvent): void;
}

/**
 * The device classes the offline KPIs are labelled with (a fixed list: a metric label never takes
 * a device's own words, so its cardinality stays bounded).
 */
export const DEVICE_CLASSES = ['ios', 'android', 'browser', 'desktop', 'cli', 'pos', 'other'] as const;
export type DeviceClass = (typeof DEVICE_CLASSES)[number];

/** '' is `other`; anything off the list is refused. */
export function deviceClassOf(v: string): DeviceClass {
  const c = v === '' ? 'other' : v;
  if (!(DEVICE_CLASSES as readonly string[]).includes(c))
    throw new CoordinatorError(
      'INVALID_ARGUMENT',
      `device class must be one of ${DEVICE_CLASSES.join(', ')} (got "${String(v).slice(0, 32)}")`,
    );
  return c as DeviceClass;
}

/** An enrolment token as stored (hashed key; JSON value). */
interface StoredToken {
  expiresAt: number;
  label: string;
  /** The device that used it ('' while unused). */
  used: string;
}

export class DeviceService {
  readonly #devices = new Map<string, DevicePublic>();
  readonly #classes = new Map<string, DeviceClass>();
  readonly #tokenLocks = new KeyedMutex();

  constructor(private readonly c: DeviceComponents) {}

  /** Loads the enrolled devices. */
  async load(): Promise<void> {
    for await (const [k, v] of this.c.store.iterate(layout.devices)) {
      const d = participantFromWire(decodeMessage('ParticipantInfo', v));
      if (layout.device(d.id) === k) {
        this.#devices.set(d.id, { ...d, device: true });
        this.c.participants.know(d.id);
      }
    }
    for await (const [k, v] of this.c.store.iterate(layout.deviceClasses)) {
      const c = new TextDecoder().decode(v);
      if ((DEVICE_CLASSES as readonly string[]).includes(c))
        this.#classes.set(k.slice(layout.deviceClasses.length), c as DeviceClass);
    }
  }

  /** The class device `id` enrolled as (`other` when it named none or is unknown). */
  classOf(id: string): DeviceClass {
    return this.#classes.get(id) ?? 'other';
  }

  /** The enrolled device `id`, if any. */
  get(id: string): DevicePublic | undefined {
    return this.#devices.get(id);
  }

  has(id: string): boolean {
    return this.#devices.has(id);
  }

  /** Ids of the enrolled devices, sorted. */
  list(): string[] {
    return [...this.#devices.keys()].sort();
  }

  /** Issues a one-time enrolment token (stored hashed; valid `ttlMs`). */
  async issueToken(ttlMs = 24 * 3600_000, label = ''): Promise<{ token: string; expiresAt: number }> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1000 || ttlMs > 30 * 24 * 3600_000)
      throw new CoordinatorError('INVALID_ARGUMENT', 'token lifetime must be 1 s .. 30 days');
    const token = `tet1_${toHex(this.c.rng(20))}`;
    const expiresAt = this.c.clock() + ttlMs;
    const stored: StoredToken = { expiresAt, label: String(label).slice(0, 100), used: '' };
    await this.c.store.put(layout.enrolToken(tokenHash(token)), json(stored), { sync: true });
    await this.c.audit.append({
      type: 'enrol-token',
      data: { token: tokenHash(token).slice(0, 16), expiresAt, label: stored.label },
    });
    return { token, expiresAt };
  }

  /**
   * Enrols a device with a one-time token: its identity becomes a known participant that may
   * link through the device gateway and join DKGs. The token is spent even if a later step fails.
   */
  async enrol(token: string, device: DevicePublic, cls = ''): Promise<void> {
    // Checked before the token is looked at: a refused class leaves the token unspent.
    const deviceClass = deviceClassOf(cls);
    const k = layout.enrolToken(tokenHash(String(token)));
    await this.#tokenLocks.run(k, async () => {
      const raw = await this.c.store.get(k);
      if (!raw) throw new CoordinatorError('UNAUTHENTICATED', 'unknown enrolment token');
      const t = JSON.parse(new TextDecoder().decode(raw)) as StoredToken;
      if (t.used) throw new CoordinatorError('UNAUTHENTICATED', 'enrolment token already used');
      if (t.expiresAt < this.c.clock()) throw new CoordinatorError('UNAUTHENTICATED', 'enrolment token expired');
      if (await this.c.store.get(layout.revoked(device.id)))
        throw new CoordinatorError(
          'INVALID_ARGUMENT',
          `device id ${device.id} was revoked; enrol the new device under a new id`,
        );
      if (this.c.participants.isKnown(device.id) && !this.#devices.has(device.id))
        throw new CoordinatorError('INVALID_ARGUMENT', `participant id ${device.id} is taken by a signer node`);
      const prior = this.#devices.get(device.id);
      if (prior && !equalBytes(prior.signKey, device.signKey))
        throw new CoordinatorError('INVALID_ARGUMENT', `device id ${device.id} is already enrolled with another key`);
      await this.c.store.batch(
        [
          { type: 'put', key: k, value: json({ ...t, used: device.id }) },
          {
            type: 'put',
            key: layout.device(device.id),
            value: encodeMessage('ParticipantInfo', participantToWire(device)),
          },
          { type: 'put', key: layout.deviceClass(device.id), value: new TextEncoder().encode(deviceClass) },
        ],
        { sync: true },
      );
      this.#devices.set(device.id, { ...device, device: true });
      this.#classes.set(device.id, deviceClass);
      this.c.participants.know(device.id);
      await this.c.audit.append({
        type: 'enrol',
        data: { device: device.id, signKey: toHex(device.signKey), label: t.label, class: deviceClass },
      });
      this.c.onEvent({ type: 'enrol', device: device.id });
    });
  }

  /** The operators' admissions stored for device `id`. */
  async admissions(id: string): Promise<Uint8Array[]> {
    const raw = await this.c.store.get(layout.admission(id));
    return raw ? (JSON.parse(new TextDecoder().decode(raw)) as string[]).map((x) => fromHex(x)) : [];
  }

  /** An enrolled device as operators admit it: the bytes an admission approves, and the approvals so far. */
  async admission(id: string): Promise<{ participant: Uint8Array; approvals: Uint8Array[] }> {
    const d = this.#enrolled(id);
    return { participant: admissionPayload(d), approvals: await this.admissions(id) };
  }

  /**
   * Stores operators' admissions of enrolled device `id` (OPERATOR_APPROVAL envelopes over its
   * admission payload). Whether they suffice is each signer's decision, by its own pinned operators.
   */
  async admit(
    id: string,
    approvals: readonly Uint8Array[],
  ): Promise<{ participant: Uint8Array; approvals: Uint8Array[] }> {
    const payload = admissionPayload(this.#enrolled(id));
    for (const a of approvals)
      if (!approves(a, payload))
        throw new CoordinatorError(
          'INVALID_ARGUMENT',
          `an approval that is not an operator's admission of device ${id} as enrolled`,
        );
    const all = [...new Set([...(await this.admissions(id)).map(toHex), ...approvals.map(toHex)])];
    await this.c.store.put(layout.admission(id), json(all), { sync: true });
    await this.c.audit.append({ type: 'device-admission', data: { device: id, approvals: all.length } });
    return { participant: payload, approvals: all.map((x) => fromHex(x)) };
  }

  /**
   * Revokes device `id` on every signer with the operators' approval (an ApprovedAuthorisation of
   * operation revoke naming it): each linked signer checks it itself; it is kept and handed to
   * signers that link later. The device's enrolment is removed. Returns who accepted and who refused.
   */
  async revokeWithOperators(id: string, authorisation: Uint8Array): Promise<{ signers: string[]; refused: string[] }> {
    let a: ReturnType<typeof decodeApproved>['decoded'];
    try {
      a = decodeApproved(authorisation).decoded;
    } catch (e) {
      throw new CoordinatorError('INVALID_ARGUMENT', `not an operator authorisation (${codeOf(e)})`);
    }
    if (a.operation !== 'revoke' || !a.revoke.includes(id))
      throw new CoordinatorError('INVALID_ARGUMENT', `the authorisation does not revoke ${String(id).slice(0, 64)}`);
    await this.c.store.put(layout.revocation(authorisation), authorisation, { sync: true });
    const nodes = this.c.participants.handles().filter((h) => !h.device);
    const answers = await Promise.allSettled(
      nodes.map((h) => h.call({ body: 'revoke', revoke: authorisation }, this.c.timeout)),
    );
    const signers: string[] = [];
    const refused: string[] = [];
    answers.forEach((r, i) =>
      (r.status === 'fulfilled' && r.value.body === 'ok' ? signers : refused).push(
        (nodes[i] as ParticipantHandle).info.id,
      ),
    );
    if (this.#devices.has(id)) await this.revoke(id);
    signers.sort();
    refused.sort();
    await this.c.audit.append({
      type: 'device-revoked-by-operators',
      data: { device: id, signers: signers.join(','), refused: refused.join(',') },
    });
    return { signers, refused };
  }

  /** Hands every stored revocation to a node that just linked (idempotent there; failures are retried at its next link). */
  async sendRevocations(h: ParticipantHandle): Promise<void> {
    for await (const [, v] of this.c.store.iterate(layout.revocations))
      await h.call({ body: 'revoke', revoke: v }, this.c.timeout).catch(() => undefined);
  }

  /**
   * Revokes an enrolled device (a lost phone): it can no longer call the gateway or link. Its
   * shares are already worthless once every key it held was reshared without it.
   */
  async revoke(id: string): Promise<void> {
    this.#enrolled(id);
    const still = this.c.registry.keysOf(id).map((k) => k.keyId);
    await this.c.store.batch(
      [
        { type: 'del', key: layout.device(id) },
        { type: 'put', key: layout.revoked(id), value: new TextEncoder().encode(String(this.c.clock())) },
      ],
      { sync: true },
    );
    this.#devices.delete(id);
    const h = this.c.participants.get(id);
    if (h) this.c.unlink(id, h);
    await this.c.audit.append({ type: 'device-revoked', data: { device: id, stillInKeys: still.join(',') } });
  }

  #enrolled(id: string): DevicePublic {
    const d = this.#devices.get(id);
    if (!d) throw new CoordinatorError('NOT_FOUND', `no enrolled device ${String(id).slice(0, 64)}`);
    return d;
  }
}

/** Whether envelope `a` is an operator's approval of exactly `payload` (who approved is the signers' check). */
function approves(a: Uint8Array, payload: Uint8Array): boolean {
  try {
    return equalBytes(openEnvelope(a, PayloadKind.OPERATOR_APPROVAL).payload, payload);
  } catch {
    return false;
  }
}

function tokenHash(token: string): string {
  return toHex(sha256(new TextEncoder().encode(`tessera/v1/enrol-token/${token}`)));
}

function json(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}
