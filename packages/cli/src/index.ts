export { runDemo, printDemo, type DemoResult } from './demo.js';
export { startDev, type DevOptions } from './dev.js';
export { openClient, resolveDir, CliError, type Client, type ClientFile } from './client.js';
export { keygen, keys, sign, status, auditVerify } from './commands.js';
export { admitDevice, devOperatorFiles } from './operators.js';
export { serveWallet, type WalletServer } from './wallet-server.js';
export { serveConsole, type ConsoleServer } from './console-server.js';
export { offlineKpis, fetchOfflineKpis, type OfflineKpis } from './kpis.js';
export { DEFAULT_APPS_DIR } from './web.js';
