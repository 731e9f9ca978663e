/**
 * The heavy parts of a backup — the password KDFs and the Shamir split of recovery pieces —
 * in one module that ./backup.ts imports when a backup is first made, opened, split or combined:
 * in a browser build it is one chunk, which a page that never backs up does not download.
 */
export { argon2idAsync } from '@noble/hashes/argon2.js';
export { scryptAsync } from '@noble/hashes/scrypt.js';
export { combine, split } from 'shamir-secret-sharing';
