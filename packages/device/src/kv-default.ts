/**
 * The device's default store for a location string, on Node: LevelDB (classic-level through
 * `level`) in that directory. Browser bundles get ./kv-default-browser.ts instead (the package's
 * `browser` map), so they carry no `level`.
 */
import { Level } from 'level';
import { type KvStore, levelStore } from './kv.js';

export function defaultStore(location: string): KvStore {
  return levelStore(new Level<string, Uint8Array>(location, { keyEncoding: 'utf8', valueEncoding: 'view' }));
}
