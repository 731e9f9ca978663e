export * from './coordinator.js';
export * from './server.js';
export * from './config.js';
export * from './gateway.js';
export * from './metrics.js';
export * from './reload.js';
export { offlineKpiMetrics, type OfflineKpiMetrics } from './offline-kpis.js';
export { DEVICE_CLASSES, type DeviceClass } from './devices.js';
