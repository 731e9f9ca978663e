import { describe, expect, it } from 'vitest';
import { DecodeError, InvalidStateError, ProtocolError } from '@tessera/core';
import {
  ERROR_DETAIL_KEY,
  RemoteError,
  TesseraRuntimeError,
  fromServiceError,
  grpc,
  toServiceError,
} from '@tessera/runtime';

const S = grpc.status;

describe('toServiceError', () => {
  const table: Array<[string, grpc.status]> = [
    ['INVALID_ARGUMENT', S.INVALID_ARGUMENT],
    ['DECODE', S.INVALID_ARGUMENT],
    ['WRONG_SUITE', S.INVALID_ARGUMENT],
    ['UNSUPPORTED_VERSION', S.INVALID_ARGUMENT],
    ['POLICY_DENIED', S.PERMISSION_DENIED],
    ['NOT_FOUND', S.NOT_FOUND],
    ['NO_QUORUM', S.UNAVAILABLE],
    ['UNAVAILABLE', S.UNAVAILABLE],
    ['RATE_LIMITED', S.RESOURCE_EXHAUSTED],
    ['OVERLOADED', S.RESOURCE_EXHAUSTED],
    ['BAD_SIGNATURE', S.ABORTED],
    ['BAD_SIGNATURE_SHARE', S.ABORTED],
    ['BAD_SHARE', S.ABORTED],
    ['BAD_PROOF_OF_KNOWLEDGE', S.ABORTED],
    ['EQUIVOCATION', S.ABORTED],
    ['CONFIRMATION_MISMATCH', S.ABORTED],
    ['UNEXPECTED_MESSAGE', S.ABORTED],
    ['NONCE_REUSED', S.ABORTED],
    ['DECRYPT', S.ABORTED],
    ['UNAUTHENTICATED', S.UNAUTHENTICATED],
    ['DEADLINE', S.DEADLINE_EXCEEDED],
    ['CONFIG', S.INTERNAL],
  ];
  it.each(table)('%s → status %i', (code, status) => {
    const se = toServiceError(new TesseraRuntimeError(code, `msg for ${code}`, { culprits: ['x'] }));
    expect(se.code).toBe(status);
    expect(se.details).toBe(`msg for ${code}`);
    const detail = JSON.parse((se.metadata.get(ERROR_DETAIL_KEY)[0] as Buffer).toString('utf8'));
    expect(detail).toEqual({ code, message: `msg for ${code}`, culprits: ['x'] });
  });

  it('a code outside the one list is sent as INTERNAL, message and culprits kept', () => {
    const se = toServiceError(new TesseraRuntimeError('SOMETHING_NEW', 'msg', { culprits: ['x'] }));
    expect(se.code).toBe(S.INTERNAL);
    const detail = JSON.parse((se.metadata.get(ERROR_DETAIL_KEY)[0] as Buffer).toString('utf8'));
    expect(detail).toEqual({ code: 'INTERNAL', message: 'msg', culprits: ['x'] });
  });

  it('maps core errors by code', () => {
    expect(toServiceError(new DecodeError('bad bytes')).code).toBe(S.INVALID_ARGUMENT);
    expect(toServiceError(new ProtocolError('EQUIVOCATION', 'p1 equivocated', ['p1'])).code).toBe(S.ABORTED);
    expect(toServiceError(new InvalidStateError('round 2 twice')).code).toBe(S.INTERNAL);
  });

  it('hides the message of anything that is not a Tessera error', () => {
    for (const e of [new Error('secret-1'), 'secret-2', { code: 'ENOENT', message: 'secret-3' }, null, undefined, 42]) {
      const se = toServiceError(e);
      expect(se.code).toBe(S.INTERNAL);
      expect(se.details).toBe('internal error');
      expect(se.message).not.toMatch(/secret/);
      expect((se.metadata.get(ERROR_DETAIL_KEY)[0] as Buffer).toString()).not.toMatch(/secret/);
    }
  });

  it('keeps a message on one line', () => {
    expect(toServiceError(new TesseraRuntimeError('NOT_FOUND', 'a\nb')).details).toBe('a b');
  });

  it('relays a RemoteError (code, status, culprits)', () => {
    const se = toServiceError(new RemoteError('BAD_SHARE', 'bad share from p3', S.ABORTED, ['p3']));
    expect(fromServiceError(se)).toMatchObject({ code: 'BAD_SHARE', status: S.ABORTED, culprits: ['p3'] });
  });
});

describe('fromServiceError', () => {
  it('round-trips toServiceError', () => {
    const r = fromServiceError(toServiceError(new ProtocolError('BAD_SIGNATURE_SHARE', 'bad', ['p2'])));
    expect(r).toBeInstanceOf(RemoteError);
    expect(r).toBeInstanceOf(Error);
    expect(r.toJSON()).toEqual({
      name: 'RemoteError',
      code: 'BAD_SIGNATURE_SHARE',
      status: S.ABORTED,
      message: 'bad',
      culprits: ['p2'],
    });
  });

  it('maps a bare status when there is no detail', () => {
    const bare = (code: grpc.status, details = 'x') =>
      Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
    expect(fromServiceError(bare(S.UNAVAILABLE)).code).toBe('UNAVAILABLE');
    expect(fromServiceError(bare(S.DEADLINE_EXCEEDED)).code).toBe('DEADLINE');
    expect(fromServiceError(bare(S.PERMISSION_DENIED)).code).toBe('POLICY_DENIED');
    expect(fromServiceError(bare(S.UNAUTHENTICATED)).code).toBe('UNAUTHENTICATED');
    expect(fromServiceError(bare(S.DATA_LOSS)).code).toBe('INTERNAL');
    const md = new grpc.Metadata();
    md.set(ERROR_DETAIL_KEY, Buffer.from('not json'));
    expect(
      fromServiceError(Object.assign(new Error('x'), { code: S.NOT_FOUND, details: 'gone', metadata: md })),
    ).toMatchObject({
      code: 'NOT_FOUND',
      message: 'gone',
    });
  });

  it('never exposes a non-grpc error message', () => {
    const r = fromServiceError(new Error('secret-4'));
    expect(r).toMatchObject({ code: 'INTERNAL', status: S.INTERNAL, message: 'internal error' });
    expect(JSON.stringify(r)).not.toContain('secret-4');
  });
});
