export { buildApp, createServiceDeps, type AppOptions } from './app.ts';
export { startServer, openMigratedDatabase, type RunningServer } from './server.ts';
export { loadConfig, ConfigError, type KeywardConfig } from './config/config.ts';
export { currentKeyring, resolveKeyring, SECRETS_FILE } from './config/keyring-source.ts';
export { argon2Hasher } from './passwords/argon2-hasher.ts';
export { createMemoryEventBus } from './events/memory-event-bus.ts';
export { SERVER_VERSION } from './version.ts';
export { openDatabase, migrateToLatest, KyselyStore, type Database } from './storage/index.ts';
