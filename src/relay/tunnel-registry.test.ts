import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session } from 'node:http2';
import { TunnelRegistry, type Tunnel } from './tunnel-registry.js';

const session = (state: { closed?: boolean } = {}) => ({ closed: state.closed ?? false, destroyed: false }) as unknown as ClientHttp2Session;
const tunnel = (id: string, connectorId: string, group = 'g', active = 0, closed = false, features: string[] = []): Tunnel => ({ id, connectorId, group, remoteAddress: '127.0.0.1:1', session: session({ closed }), features: new Set(features), active });

describe('TunnelRegistry.pick', () => {
  it('spreads idle load across connectors (round-robin among the least loaded)', () => {
    const registry = new TunnelRegistry();
    registry.add(tunnel('a1', 'A'));
    registry.add(tunnel('b1', 'B'));
    const seen = new Set(Array.from({ length: 10 }, () => registry.pick('g')!.connectorId));
    assert.deepEqual([...seen].sort(), ['A', 'B']);
  });

  it('prefers the least-loaded tunnel', () => {
    const registry = new TunnelRegistry();
    registry.add(tunnel('busy', 'A', 'g', 5));
    registry.add(tunnel('idle', 'B', 'g', 1));
    for (let i = 0; i < 5; i++) assert.equal(registry.pick('g')!.id, 'idle');
  });

  it('skips closed sessions, removed tunnels and other groups', () => {
    const registry = new TunnelRegistry();
    const gone = tunnel('gone', 'A');
    registry.add(gone);
    registry.add(tunnel('closed', 'B', 'g', 0, true));
    registry.add(tunnel('other', 'C', 'h'));
    registry.remove(gone);
    assert.equal(registry.pick('g'), undefined);
    assert.equal(registry.pick('h')!.id, 'other');
    assert.equal(registry.pick('nobody'), undefined);
  });

  it('with a feature, picks only tunnels whose connector announced it', () => {
    const registry = new TunnelRegistry();
    registry.add(tunnel('old', 'A', 'g', 0));
    registry.add(tunnel('new', 'B', 'g', 3, false, ['connection-streams']));
    for (let i = 0; i < 5; i++) assert.equal(registry.pick('g', 'connection-streams')?.id, 'new');
    assert.equal(registry.pick('g')?.id, 'old');
    assert.equal(registry.pick('other', 'connection-streams'), undefined);
  });
});
