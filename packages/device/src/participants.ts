/**
 * The key-making state machines a linked device runs — core's DKG and refresh/reshare
 * participants, the same as a signer node's — with the device's lifecycle store. `LinkTasks`
 * imports this module when the first such task arrives: in a browser build it is a chunk of its
 * own, which a wallet that only pays and syncs does not download.
 */
export { DkgParticipant, LifecycleParticipant } from '@tessera/core';
export { DeviceLifecycleStore } from './lifecycle-store.js';
