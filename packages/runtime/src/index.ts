/**
 * @tessera/runtime: process plumbing shared by the daemons — gRPC server/client helpers over
 * the tessera.v1 services, error mapping, mTLS, metrics, logging, config and shutdown.
 */
export * from './grpc.js';
export * from './errors.js';
export * from './tls.js';
export * from './metrics.js';
export * from './log.js';
export * from './config.js';
export * from './process.js';
export * from './args.js';
export * from './reload.js';
