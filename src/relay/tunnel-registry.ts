// Live tunnels, by connector and group, and the choice of tunnel for each request: the least
// loaded live tunnel of the app's group, ties broken round-robin across connectors so load spreads
// even when every tunnel is idle. A tunnel leaves the registry the moment its session closes, so
// new requests go to the others at once.
import type { ClientHttp2Session } from 'node:http2';

export interface Tunnel {
  readonly id: string;
  readonly connectorId: string;
  readonly group: string;
  readonly remoteAddress: string;
  readonly session: ClientHttp2Session;
  /** What the connector announced in its hello (CONNECTOR_FEATURES). */
  readonly features: ReadonlySet<string>;
  /** Streams in flight on this tunnel (a connection stream counts once). */
  active: number;
}

export class TunnelRegistry {
  private readonly byGroup = new Map<string, Tunnel[]>();
  private turn = 0;

  add(tunnel: Tunnel): void {
    const list = this.byGroup.get(tunnel.group) ?? [];
    list.push(tunnel);
    this.byGroup.set(tunnel.group, list);
  }

  remove(tunnel: Tunnel): void {
    const list = this.byGroup.get(tunnel.group);
    if (!list) return;
    const index = list.indexOf(tunnel);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.byGroup.delete(tunnel.group);
  }

  /** The least loaded live tunnel of `group` (whose connector announced `feature`, when given). */
  pick(group: string, feature?: string): Tunnel | undefined {
    const list = this.byGroup.get(group);
    if (!list || list.length === 0) return undefined;
    const fits = (tunnel: Tunnel) => usable(tunnel) && (feature === undefined || tunnel.features.has(feature));
    let least = Infinity;
    for (const tunnel of list) if (fits(tunnel) && tunnel.active < least) least = tunnel.active;
    if (least === Infinity) return undefined;
    const candidates = list.filter((tunnel) => fits(tunnel) && tunnel.active === least);
    this.turn = (this.turn + 1) % 1_000_000;
    return candidates[this.turn % candidates.length];
  }

  ofConnector(connectorId: string): Tunnel[] {
    return this.all().filter((tunnel) => tunnel.connectorId === connectorId);
  }

  all(): Tunnel[] {
    return [...this.byGroup.values()].flat();
  }

  onlineConnectors(): Set<string> {
    return new Set(this.all().map((tunnel) => tunnel.connectorId));
  }
}

function usable(tunnel: Tunnel): boolean {
  return !tunnel.session.closed && !tunnel.session.destroyed;
}
