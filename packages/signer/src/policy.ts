/**
 * A signer's own policy: which requesters (identified by their Ed25519 keys) may have which keys
 * sign, and how fast. The signer evaluates it on the requester's signed intent before it touches
 * a nonce; the coordinator has no say.
 */
import { TesseraError, equalBytes, fromHex, toHex, type OpenedIntent } from '@tessera/core';

export interface RequesterRule {
  /** A name for logs and audits. */
  readonly id: string;
  /** Ed25519 public key, hex. */
  readonly publicKey: string;
  /** Key ids this requester may use; `*` = every key. */
  readonly keys: readonly string[];
  /** Signatures per minute allowed (token bucket); 0 = unlimited. */
  readonly perMinute?: number;
}

export interface Policy {
  readonly requesters: readonly RequesterRule[];
  /** Whether DKG sessions may create keys on this node. */
  readonly allowKeygen: boolean;
  /**
   * Known peers (participant id → Ed25519 key, hex). When set, this node joins a DKG only if
   * every other participant is one of them with exactly that key, so a coordinator cannot slip
   * a participant of its own into a key's roster.
   */
  readonly peers?: readonly { id: string; publicKey: string; encKey: string }[];
  /**
   * Development only: take part in DKG and lifecycle operations without pinned peers (any roster
   * the coordinator announces). Without it, and without `peers`, the node refuses them.
   */
  readonly allowUnpinnedPeers?: boolean;
  /**
   * Operator keys (Ed25519, hex) and how many must approve a refresh or reshare (M-of-N). Without
   * them this node takes part in no refresh or reshare.
   */
  readonly operators?: { readonly keys: readonly string[]; readonly approvals: number };
  /** How long the previous epoch's share is kept after a refresh or reshare commits, ms (default 24 h). */
  readonly epochRetentionMs?: number;
  /** Offline co-signing for devices (participants of a key that sign offline against reservations). */
  readonly devices?: DevicePolicy;
}

export interface DevicePolicy {
  /** Whether this node reserves nonces for, and completes packages of, devices at all (default true). */
  readonly allow?: boolean;
  /** Most unexpired, unused reservations one device may hold on this node, over all keys (default 64). */
  readonly maxReservations?: number;
  /** Longest reservation lifetime this node grants, ms (default 7 days). */
  readonly maxTtlMs?: number;
  /** Devices this node no longer co-signs for (a lost phone): no reservation, no completion. */
  readonly revoked?: readonly string[];
  /**
   * The most one allowance (the reservations of one reserve call) may let a device pay, per
   * asset, in base units (e.g. `{ BTC: "1000000" }`). Set: every reservation must carry caps
   * (allowance.ts) within these — also reservations made before it was set, at completion — and
   * a cap for an asset not listed is refused. What a device can pay in all is this times the
   * allowances it holds (at most `maxReservations` of them).
   */
  readonly maxCaps?: Readonly<Record<string, string>>;
  /**
   * Oldest operator-signed price snapshot this node values a fiat cap with, at reserve time, ms
   * (default a day). A fiat cap is limited like an asset's under `@fiat:<currency>` in `maxCaps`
   * and `maxDeviceCaps` (e.g. `{ "@fiat:USD": "50000" }`: $500.00).
   */
  readonly maxPriceAgeMs?: number;
  /**
   * Complete only packages whose device signed an integrity verdict of `pass` into them (the
   * app's attestation: Play Integrity, App Attest; core's device-claims.ts). A package without
   * one, with another verdict, or whose claims do not verify is refused POLICY_DENIED.
   */
  readonly requireIntegrity?: boolean;
  /**
   * The most one device may hold in unspent caps on this node, per asset, over all its allowances
   * that still have an unused, unexpired reservation here (each allowance's cap minus what this
   * node has counted against it), including the one being granted. Set: every reservation must
   * carry caps, and a cap for an asset not listed is refused. This bounds what a lost phone can
   * pay through this node whatever `maxReservations` is.
   */
  readonly maxDeviceCaps?: Readonly<Record<string, string>>;
  /**
   * Payees no device pays through this node (a sanctions list, a known scam address), matched
   * against the payees read from each completed package's transaction: refused POLICY_DENIED at
   * completion, nothing spent. Set (or `allowTo` set): bare-message packages are refused.
   */
  readonly denyTo?: readonly string[];
  /** The only payees devices pay through this node (e.g. a closed loop of merchants). */
  readonly allowTo?: readonly string[];
}

/**
 * Why a node with `policy` takes part in no DKG or lifecycle operation, or undefined. Without
 * pinned peers (and without an explicit `allowUnpinnedPeers`), a coordinator could put
 * participants of its own into a key; without pinned operators, nobody can authorise a refresh or
 * reshare.
 */
export function unpinnedReason(policy: Policy): string | undefined {
  if ((!policy.peers || policy.peers.length === 0) && !policy.allowUnpinnedPeers)
    return 'no peers are pinned (policy.peers): this node joins no key generation or reshare until they are (or policy.allowUnpinnedPeers is set, for development only)';
  return undefined;
}

export const DEVICE_POLICY_DEFAULTS = { allow: true, maxReservations: 64, maxTtlMs: 7 * 24 * 3600_000 } as const;

/** A policy's device rules with their defaults filled in. */
export function devicePolicyOf(p: Policy) {
  return { ...DEVICE_POLICY_DEFAULTS, ...(p.devices ?? {}) };
}

/** Why the policy refused, as a stable reason. */
export type Refusal = 'UNKNOWN_REQUESTER' | 'KEY_NOT_ALLOWED' | 'EXPIRED' | 'RATE_LIMITED';

export class PolicyRefusal extends TesseraError {
  constructor(
    readonly reason: Refusal,
    message: string,
  ) {
    super(reason === 'RATE_LIMITED' ? 'RATE_LIMITED' : 'POLICY_DENIED', message);
  }
}

/** Evaluates intents against a {@link Policy}; keeps per-requester rate buckets in memory. */
export class PolicyEngine {
  readonly #rules: { rule: RequesterRule; key: Uint8Array }[];
  readonly #buckets: Map<string, { tokens: number; at: number }>;
  constructor(
    readonly policy: Policy,
    private readonly clock: () => number = Date.now,
    buckets = new Map<string, { tokens: number; at: number }>(),
  ) {
    this.#rules = policy.requesters.map((rule) => ({ rule, key: fromHex(rule.publicKey, `requester ${rule.id} key`) }));
    this.#buckets = buckets;
  }

  /**
   * An engine for a reloaded `policy` (checked here: a bad requester key throws). Rate buckets
   * carry over by requester id, so a reload does not hand anyone a fresh minute of signatures.
   */
  with(policy: Policy): PolicyEngine {
    return new PolicyEngine(policy, this.clock, this.#buckets);
  }

  /**
   * The rule that authorises `intent` for `keyId`, or a {@link PolicyRefusal}. Does not spend a
   * rate token: call {@link spendRateToken} once the request is about to use a nonce.
   */
  authorise(intent: OpenedIntent, keyId: string): RequesterRule {
    const match = this.#rules.find((r) => equalBytes(r.key, intent.requester));
    if (!match)
      throw new PolicyRefusal(
        'UNKNOWN_REQUESTER',
        `requester ${toHex(intent.requester).slice(0, 16)}… is not in this signer's policy`,
      );
    const { rule } = match;
    if (!rule.keys.includes('*') && !rule.keys.includes(keyId))
      throw new PolicyRefusal('KEY_NOT_ALLOWED', `requester ${rule.id} may not use key ${keyId}`);
    if (intent.notAfter < this.clock()) throw new PolicyRefusal('EXPIRED', `intent of ${rule.id} expired`);
    return rule;
  }

  /** Takes one token from the rule's per-minute bucket, or refuses with RATE_LIMITED. */
  spendRateToken(rule: RequesterRule): void {
    if (!rule.perMinute || rule.perMinute <= 0) return;
    const now = this.clock();
    const b = this.#buckets.get(rule.id) ?? { tokens: rule.perMinute, at: now };
    b.tokens = Math.min(rule.perMinute, b.tokens + ((now - b.at) / 60_000) * rule.perMinute);
    b.at = now;
    this.#buckets.set(rule.id, b);
    if (b.tokens < 1)
      throw new PolicyRefusal('RATE_LIMITED', `requester ${rule.id} exceeded ${rule.perMinute} signatures per minute`);
    b.tokens -= 1;
  }
}
