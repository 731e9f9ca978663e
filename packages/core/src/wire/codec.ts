/**
 * The one binary encoding of Tessera: protobuf, as declared in proto/tessera/v1/*.proto. The
 * messages are known from a table generated from there (`npm run proto` → ./schema.gen.ts) and
 * encoded by ./table-codec.ts: no code is generated at run time, so pages that use the core run
 * under a strict Content-Security-Policy (no 'unsafe-eval'), and no reflection registry ships to
 * browsers. The bytes and objects are protobuf-es's (the typed schemas in ./gen, from which the
 * wire types come), which core/test/wire-table.test.ts holds the table codec to.
 *
 * `encodeMessage` / `decodeMessage` are the only way bytes enter or leave the core. They speak
 * plain objects ({@link WireTypes}: camelCase fields, every field present, uint64 as a
 * safe-integer number, an absent sub-message as null, a oneof as its one set member).
 * Decoding never throws anything but a {@link DecodeError} (typed, stable code `DECODE`),
 * whatever the input. Semantic checks (header version and suite, element and scalar lengths)
 * live in ./packages.ts on top of this.
 */
import { MAX_PACKAGE_BYTES } from './limits.js';
import { decodeTable, encodeTable } from './table-codec.js';
import type { MessageName, WireTypes } from './types.js';

export { MAX_PACKAGE_BYTES };

/** Encodes a wire object. Throws InvalidArgumentError if the object does not fit the schema. */
export function encodeMessage<N extends MessageName>(name: N, value: WireTypes[N]): Uint8Array {
  return encodeTable(name, value);
}

/** Decodes bytes into a wire object with every field present. Only ever throws DecodeError. */
export function decodeMessage<N extends MessageName>(name: N, bytes: Uint8Array): WireTypes[N] {
  return decodeTable(name, bytes) as WireTypes[N];
}
