/**
 * The wire messages as the codec speaks them (./codec.ts), derived from the types protobuf-es
 * generates from proto/tessera/v1/*.proto (./gen, `npm run proto`): nothing here spells a
 * message by hand. A message becomes a plain object: camelCase fields, every field present,
 * uint64 and enums as numbers, an absent sub-message as null (typed as present: decoders check
 * it), a oneof as its set member (the others absent), no `$typeName`.
 */
import type { DescMessage, Message, MessageShape } from '@bufbuild/protobuf';
import type * as Cluster from './gen/tessera/v1/cluster_pb.js';
import type * as Packages from './gen/tessera/v1/packages_pb.js';

/** `tessera.v1.PayloadKind` (what an envelope's payload is; part of the signed bytes). */
export { PayloadKind } from './gen/tessera/v1/packages_pb.js';

/** The plain form of a generated type. */
export type Plain<T> = T extends Uint8Array
  ? Uint8Array
  : T extends bigint | number
    ? number
    : T extends string | boolean
      ? T
      : T extends readonly (infer E)[]
        ? Plain<E>[]
        : T extends Message
          ? PlainMessage<T>
          : T;

type IsOneof<V> = V extends { case: string | undefined } ? true : false;
type OneofMembers<V> = V extends { case: infer C extends string; value: infer X } ? { [K in C]?: Plain<X> } : never;
type UnionToIntersection<U> = [U] extends [never]
  ? unknown
  : (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void
    ? I
    : never;

/** A message's fields (required, `$`-fields dropped), with each oneof's members as optional fields. */
export type PlainMessage<T> = {
  -readonly [K in keyof T as K extends `$${string}` ? never : IsOneof<T[K]> extends true ? never : K]-?: Plain<
    Exclude<T[K], undefined>
  >;
} & UnionToIntersection<{ [K in keyof T]-?: IsOneof<T[K]> extends true ? OneofMembers<T[K]> : never }[keyof T]>;

type Schemas = typeof Packages & typeof Cluster;
type SchemaName = {
  [K in keyof Schemas]: K extends `${infer N}Schema` ? (Schemas[K] extends DescMessage ? N : never) : never;
}[keyof Schemas];

/** Every message of the contract by name, in its plain form. */
export type WireTypes = { [N in SchemaName]: Plain<MessageShape<Schemas[`${N}Schema`]>> };
export type MessageName = keyof WireTypes;

export type WireHeader = WireTypes['Header'];
export type WireEnvelope = WireTypes['Envelope'];
export type WireParticipantInfo = WireTypes['ParticipantInfo'];
export type WireDkgParams = WireTypes['DkgParams'];
export type WireDkgRound1 = WireTypes['DkgRound1'];
export type WireSealedShare = WireTypes['SealedShare'];
export type WireDkgRound2 = WireTypes['DkgRound2'];
export type WireDkgConfirm = WireTypes['DkgConfirm'];
export type WireVerifyingShare = WireTypes['VerifyingShare'];
export type WireKeyPublic = WireTypes['KeyPublic'];
export type WireSignIntent = WireTypes['SignIntent'];
export type WireSigningCommitment = WireTypes['SigningCommitment'];
export type WireSignRequest = WireTypes['SignRequest'];
export type WireSignatureShare = WireTypes['SignatureShare'];
export type WireRefreshParams = WireTypes['RefreshParams'];
export type WireReshareParams = WireTypes['ReshareParams'];
export type WireLifecycleRound1 = WireTypes['LifecycleRound1'];
export type WireLifecycleAuthorisation = WireTypes['LifecycleAuthorisation'];
export type WirePendingLifecycle = WireTypes['PendingLifecycle'];
export type WireLifecycleOutcome = WireTypes['LifecycleOutcome'];
export type WireApprovedAuthorisation = WireTypes['ApprovedAuthorisation'];
export type WireLifecycleConfirm = WireTypes['LifecycleConfirm'];
export type WireKeyShareRecord = WireTypes['KeyShareRecord'];
export type WireKeyRecord = WireTypes['KeyRecord'];
export type WireIdentityRecord = WireTypes['IdentityRecord'];
export type WireSignResultRecord = WireTypes['SignResultRecord'];
export type WireReservation = WireTypes['Reservation'];
export type WireReservedCommitment = WireTypes['ReservedCommitment'];
export type WireOfflinePackage = WireTypes['OfflinePackage'];
export type WireCosignRequest = WireTypes['CosignRequest'];
export type WireCosignResponse = WireTypes['CosignResponse'];
export type WireDeviceCall = WireTypes['DeviceCall'];
export type WireErrorDetail = WireTypes['ErrorDetail'];
export type WireKeyInfo = WireTypes['KeyInfo'];
export type WireDeviceEnrol = WireTypes['DeviceEnrol'];
export type WireDeviceEnrolled = WireTypes['DeviceEnrolled'];
export type WireDevicePoll = WireTypes['DevicePoll'];
export type WireDeviceTasks = WireTypes['DeviceTasks'];
export type WireDeviceReserve = WireTypes['DeviceReserve'];
export type WireDeviceReserved = WireTypes['DeviceReserved'];
export type WireDeviceKeys = WireTypes['DeviceKeys'];
export type WireKeygenRequest = WireTypes['KeygenRequest'];
export type WireSubmitPackageRequest = WireTypes['SubmitPackageRequest'];
export type WireSubmitPackageResponse = WireTypes['SubmitPackageResponse'];
