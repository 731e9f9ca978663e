/**
 * Structured logging: pino JSON lines with secret-bearing fields redacted.
 */
import { pino, type Logger } from 'pino';
import { TesseraRuntimeError } from './errors.js';

/**
 * Paths pino replaces with '<redacted>'. `*.x` covers one level of nesting, so the top-level
 * names are listed too. Redaction is a safety net: never log secret material on purpose.
 */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  '*.share',
  '*.signingShare',
  '*.nonce',
  '*.nonces',
  '*.secret',
  '*.kek',
  '*.key',
  '*.privateKey',
  'share',
  'signingShare',
  'nonce',
  'nonces',
  'secret',
  'kek',
  'key',
  'privateKey',
]);

/**
 * A pino JSON logger writing to stderr (or `opts.destination`). Level: `opts.level`, else env
 * TESSERA_LOG_LEVEL, else 'info'; an unknown level throws CONFIG. Every line carries
 * `service: name` and `pid`.
 */
export function createLogger(name: string, opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.TESSERA_LOG_LEVEL ?? 'info';
  if (level !== 'silent' && !(level in pino.levels.values)) {
    throw new TesseraRuntimeError(
      'CONFIG',
      `invalid log level ${JSON.stringify(level)}: use one of ${Object.keys(pino.levels.values).join(', ')}, silent`,
    );
  }
  const destination = opts.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level,
      base: { service: name, pid: process.pid },
      redact: { paths: [...REDACT_PATHS], censor: '<redacted>' },
    },
    destination as pino.DestinationStream,
  );
}
