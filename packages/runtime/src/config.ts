/**
 * Daemon configuration: a JSON file, environment overrides and explicit overrides, validated
 * by a zod schema. Every failure is a TesseraRuntimeError with code 'CONFIG' and a one-line
 * message fit for a startup error.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { TesseraRuntimeError } from './errors.js';

type Obj = Record<string, unknown>;

function isPlainObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Recursively merges plain objects; anything else in `over` (arrays, scalars, null) replaces. */
export function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const cur = out[k];
    out[k] = isPlainObject(cur) && isPlainObject(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

/** fooBar → FOO_BAR, metricsURL → METRICS_URL, tls2Dir → TLS2_DIR. */
export function envName(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();
}

interface Def {
  type?: string;
  innerType?: unknown;
  in?: unknown;
  shape?: Obj;
}
function defOf(s: unknown): Def | undefined {
  return (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;
}

/** Strips optional/nullable/default/pipe/... wrappers (zod 4 internals). */
function unwrap(schema: unknown): unknown {
  let s = schema;
  for (let i = 0; i < 16; i++) {
    const def = defOf(s);
    if (def === undefined) return s;
    if (def.innerType !== undefined) s = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) s = def.in;
    else return s;
  }
  return s;
}

/** The top-level keys of an object schema (through wrappers), with their field schemas. */
function topLevelShape(schema: unknown): Obj {
  const def = defOf(unwrap(schema));
  if (def?.type !== 'object') return {};
  const shape = (def.shape ?? (unwrap(schema) as { shape?: Obj }).shape) as Obj | undefined;
  return shape ?? {};
}

function parseEnvValue(raw: string, field: unknown): unknown {
  // A string field takes the raw text (so "0123" or "true" stay strings).
  if (defOf(unwrap(field))?.type === 'string') return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function readConfigFile(file: string): Obj {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const why = code === 'ENOENT' ? 'not found' : `cannot be read (${typeof code === 'string' ? code : 'error'})`;
    throw new TesseraRuntimeError('CONFIG', `config file ${file} ${why}`, { cause: e });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    // V8's message quotes file content, which may hold secrets: report the position only.
    const pos = /position (\d+)/.exec(String((e as Error).message))?.[1];
    throw new TesseraRuntimeError(
      'CONFIG',
      `config file ${file} is not valid JSON${pos === undefined ? '' : ` (at position ${pos})`}`,
    );
  }
  if (!isPlainObject(v)) throw new TesseraRuntimeError('CONFIG', `config file ${file} must hold a JSON object`);
  return v;
}

/**
 * Loads a config: the JSON file `opts.file` (if given), deep-merged with environment overrides
 * (for a top-level schema key `fooBar`, env `${envPrefix}FOO_BAR`; the value is parsed as JSON
 * if it parses, else taken as a string — and always taken as a string for a string field),
 * deep-merged with `opts.overrides` (highest precedence; undefined values ignored). Validates
 * with `schema` and returns the parsed value (defaults applied).
 *
 * Errors (TesseraRuntimeError 'CONFIG', one line):
 * `invalid config <file>: <path>: <message>; <path>: <message>` (without a file,
 * `(env <prefix>*)` stands for it); `config file <file> not found`; `config file <file> is
 * not valid JSON`.
 */
export function loadConfig<T extends z.ZodTypeAny>(
  schema: T,
  opts: { file?: string; envPrefix: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> },
): z.infer<T> {
  const env = opts.env ?? process.env;
  let value: Obj = opts.file !== undefined ? readConfigFile(opts.file) : {};

  const fromEnv: Obj = {};
  for (const [key, field] of Object.entries(topLevelShape(schema))) {
    const raw = env[`${opts.envPrefix}${envName(key)}`];
    if (raw !== undefined) fromEnv[key] = parseEnvValue(raw, field);
  }
  value = deepMerge(value, fromEnv);
  if (opts.overrides !== undefined) value = deepMerge(value, opts.overrides);

  const res = schema.safeParse(value);
  if (res.success) return res.data as z.infer<T>;
  const where = opts.file ?? `(env ${opts.envPrefix}*)`;
  const issues = res.error.issues.map((i) => {
    const path = i.path.length === 0 ? '(root)' : i.path.map((p) => String(p)).join('.');
    return `${path}: ${oneLine(i.message)}`;
  });
  throw new TesseraRuntimeError('CONFIG', `invalid config ${where}: ${issues.join('; ')}`);
}
