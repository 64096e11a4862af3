// Operator actions on a relay's state (tokens, apps, connectors), used by `ferry relay …` commands
// and the demo. They work on the relay's SQLite file, so they apply to a running relay too: it
// notices the change within half a second (see Relay.refresh).
import { ensureRelayIdentity } from './identity.js';
import { RelayStore, type AppRow, type ConnectorRow } from './store.js';
import { relayDatabasePath } from './relay.js';
import type { RelayConfig } from './config.js';
import { encodeToken, hashSecret, newTokenSecret } from '../shared/token.js';

/** A connector counts as online while the relay refreshed its last-seen time recently. */
export const ONLINE_WINDOW_MS = 25_000;

export class RelayAdmin {
  private constructor(private readonly config: RelayConfig, readonly store: RelayStore) {}

  static open(config: RelayConfig): RelayAdmin {
    return new RelayAdmin(config, RelayStore.open(relayDatabasePath(config.stateDir)));
  }

  close(): void {
    this.store.close();
  }

  async createToken(options: { group: string; ttlMs: number }): Promise<{ token: string; expiresAt: Date }> {
    const identity = await ensureRelayIdentity(this.config.stateDir, this.config.hostnames, this.config.tls);
    const secret = newTokenSecret();
    const expiresAt = new Date(Date.now() + options.ttlMs);
    this.store.createToken({ secretHash: hashSecret(secret), group: options.group, expiresAt });
    return { token: encodeToken({ relayUrl: this.config.advertise.registrationUrl, caFingerprint: identity.caFingerprint, secret }), expiresAt };
  }

  addApp(input: Parameters<RelayStore['addApp']>[0]): AppRow {
    return this.store.addApp(input);
  }

  removeApp(name: string): boolean {
    return this.store.removeApp(name);
  }

  listApps(): AppRow[] {
    return this.store.listApps();
  }

  listConnectors(now = Date.now()): (ConnectorRow & { online: boolean })[] {
    return this.store.listConnectors().map((row) => ({
      ...row,
      online: !row.revokedAt && !!row.lastSeen && now - Date.parse(row.lastSeen) < ONLINE_WINDOW_MS,
    }));
  }

  removeConnector(idOrName: string): ConnectorRow | undefined {
    return this.store.revokeConnector(idOrName);
  }
}

/** Parses durations such as 90s, 15m, 1h, 7d (and plain milliseconds). */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms'];
  return Math.round(Number(match[1]) * unit);
}
