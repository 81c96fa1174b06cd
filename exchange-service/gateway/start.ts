/**
 * Assemble the deploy gateway for the service: the platform modules, the credential store (sealed with the
 * key-encryption key when configured), the core handler, and the start-up warnings. `route` sends
 * `/gateway/...` to the gateway and everything else to the service's Express app.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { credentialStore } from '../credentials/store.js';
import type { KeyRing } from '../keys/key-ring.js';
import { readKeyEncryptionKey } from '../keys/key-encryption.js';
import type { PolicySet } from '../policy/types.js';
import type { Storage } from '../storage/types.js';
import { GATEWAY_PREFIX, createGatewayHandler } from './handler.js';
import { netlifyPlatform } from './netlify/index.js';
import type { GatewayPlatform } from './platform.js';
import { requestDeadline } from './request-deadline.js';
import { gatewayWarnings } from './startup.js';

/** Every route but the gateway's must have its whole request within this time (slow-body protection). */
export const NON_GATEWAY_REQUEST_MS = 30_000;

export interface GatewayStartDeps {
  config: Config;
  storage: Storage;
  keys: KeyRing;
  issuer: string;
  policies(): PolicySet;
  logger: Logger;
}

export interface RunningGateway {
  platforms: readonly GatewayPlatform[];
  route(app: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void;
}

export async function startGateway(deps: GatewayStartDeps): Promise<RunningGateway> {
  const { config, storage, keys, logger } = deps;
  const kek = config.keyEncryptionKeyFile ? await readKeyEncryptionKey(config.keyEncryptionKeyFile) : undefined;
  const credentials = credentialStore(storage.gateway, kek);
  const platforms: GatewayPlatform[] = [netlifyPlatform(config.gateway.netlifyApiUrl)];
  const handler = createGatewayHandler({
    platforms,
    policies: deps.policies,
    storage: storage.gateway,
    credentials,
    issuer: deps.issuer,
    publicKey: (kid) => keys.all().find((k) => k.kid === kid)?.publicKeyObject,
    config: config.gateway,
    trustProxy: config.trustProxy,
    now: () => Math.floor(Date.now() / 1000),
    // Gateway lines carry fixed fields built in handler.ts, never a header, token or credential: no redaction pass
    // (as the service's request lines; it cost about as much as writing the line).
    log: ((plain) => (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => plain[level](fields, message))(logger.child({}, { redact: [] })),
  });
  try {
    for (const warning of await gatewayWarnings(deps.policies(), platforms, credentials)) logger.warn({ event: 'gateway_warning' }, warning);
  } catch (error) {
    logger.warn({ event: 'gateway_warning', error: (error as Error).message }, 'cannot check the credential store at start-up');
  }
  return {
    platforms,
    route(app) {
      const deadline = requestDeadline(NON_GATEWAY_REQUEST_MS);
      return (req, res) => {
        if (req.url?.startsWith(GATEWAY_PREFIX)) return handler(req, res);
        deadline.watch(req);
        app(req, res);
      };
    },
  };
}
