/**
 * Errors on the wire in gRPC's standard error model: a `google.rpc.Status` with one
 * `google.rpc.ErrorInfo`, the bytes a server puts in the `grpc-status-details-bin` trailer.
 * Tessera's stable code (docs/ERRORS.md) is the ErrorInfo's `reason`, its domain is
 * {@link ERROR_DOMAIN}, and the participants an error blames are its `culprits` metadata
 * (comma-separated; participant ids never contain a comma). Any gRPC client with standard
 * error-details support reads these without Tessera's code.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { anyPack, anyUnpack } from '@bufbuild/protobuf/wkt';
import { ErrorInfoSchema } from './gen/google/rpc/error_details_pb.js';
import { StatusSchema } from './gen/google/rpc/status_pb.js';

/** The `ErrorInfo.domain` of every Tessera error. */
export const ERROR_DOMAIN = 'tessera.v1';

/** What one error says: its gRPC status, stable code, one-line message and culprits. */
export interface ErrorStatus {
  status: number;
  code: string;
  message: string;
  culprits: string[];
}

/** Encodes `e` as a serialised `google.rpc.Status` carrying one `ErrorInfo`. */
export function encodeErrorStatus(e: ErrorStatus): Uint8Array {
  const metadata: Record<string, string> = e.culprits.length > 0 ? { culprits: e.culprits.join(',') } : {};
  const info = create(ErrorInfoSchema, { reason: e.code, domain: ERROR_DOMAIN, metadata });
  return toBinary(
    StatusSchema,
    create(StatusSchema, { code: e.status, message: e.message, details: [anyPack(ErrorInfoSchema, info)] }),
  );
}

/**
 * Reads a serialised `google.rpc.Status`. Returns undefined, never throws, when the bytes are not
 * one or carry no Tessera `ErrorInfo` (another domain, no reason): the caller then falls back to
 * the call's status alone.
 */
export function decodeErrorStatus(bytes: Uint8Array): ErrorStatus | undefined {
  try {
    const s = fromBinary(StatusSchema, bytes);
    for (const d of s.details) {
      const info = anyUnpack(d, ErrorInfoSchema);
      if (info === undefined || info.domain !== ERROR_DOMAIN || info.reason === '') continue;
      const c = info.metadata.culprits;
      return {
        status: s.code,
        code: info.reason,
        message: s.message,
        culprits: c ? c.split(',').filter((x) => x !== '') : [],
      };
    }
  } catch {
    // not a google.rpc.Status
  }
  return undefined;
}
